"""The one door to Ultralytics' internals: YAML names, channel rules, scale choice, fusion, safe loading, callbacks.

Ultralytics has no plugin registry. ``register()`` extends the installed package in memory, never on disk:

- our block names join the namespace ``parse_model`` resolves YAML names in;
- ``parse_model`` is recompiled from its own source with our blocks added to its channel-bookkeeping sets (so they
  get ``(c1, c2, ...)`` with width scaling) and ``SpikeDetect`` to its head set; it runs inside the YAML's
  ``neuron:`` settings; a spiking YAML without a scale builds its first scale without a warning;
- ``model=cfg/ibra-spikeyolo-s.yaml`` loads ``cfg/ibra-spikeyolo.yaml`` at scale ``s``;
- ``fuse()`` also merges our re-parameterisable chains;
- ``SpikeConv`` shows its synapse's ``conv`` and ``in_channels``, which Ultralytics' weight transfer reads from the
  first and last layer of each head branch (``DetectionModel.load``: fine-tuning from and resuming a checkpoint);
- a block that cannot be built from its YAML row fails with the layer index, the row and the block's YAML arguments;
- ONNX export of our models without the ``export`` extra fails with one sentence instead of a pip install;
- our classes are allowed under ``ULTRALYTICS_SAFE_LOAD=1``; the pycocotools callback joins the defaults, and
  Ultralytics' attempt to pip-install faster-coco-eval becomes a plain check (at the start of each validation:
  ``register()`` runs while ``ultralytics.engine.model`` is still importing, so the validators cannot be imported yet);
- a truncated or corrupt checkpoint fails with a sentence naming the file, like Ultralytics' other unreadable files;
- a local font stands in for the Arial.ttf Ultralytics would download;
- ``SPIKEYOLO_CPU_THREADS=N`` in the environment sets the torch threads of CPU training and validation (Ultralytics
  always takes ``min(8, cores - 1)``: one thread on a 2-core machine).

Stock models are untouched: every change is keyed on our classes or on the YAML's ``neuron:`` key (the opt-in
``SPIKEYOLO_CPU_THREADS`` aside, which applies to whatever the run trains or validates).
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import ultralytics
from ultralytics.engine import model as engine_model
from ultralytics.nn import tasks
from ultralytics.utils import USER_CONFIG_DIR
from ultralytics.utils.callbacks.base import default_callbacks

from . import blocks, head, neuron
from .coco import on_val_end

SUPPORTED = ">=8.4.190,<8.5"
_SCALED_NAME = re.compile(r"^(?P<stem>.+)-(?P<scale>[nslmx])$")

#: Blocks whose YAML args start with output channels, like Ultralytics' ``Conv``.
CHANNEL_BLOCKS = (
    blocks.SpikeDownsample,
    blocks.SpikeConv,
    blocks.SpikeConvBlock,
    blocks.SpikeAllConvBlock,
    blocks.SpikeSPPF,
)
YAML_NAMES = {cls.__name__: cls for cls in (*CHANNEL_BLOCKS, head.SpikeDetect)}
#: Modules ONNX export needs: always, and for ``simplify=True`` (Ultralytics' default).
EXPORT_MODULES = {"onnx": "always", "onnxruntime": "simplify", "onnxslim": "simplify"}
SAFE_GLOBALS = [
    *(getattr(blocks, name) for name in blocks.__all__),
    blocks.LinearChain,
    head.SpikeDetect,
    neuron.IBLIF,
    neuron.NeuronConfig,
]


class UnsupportedUltralytics(ImportError):
    """The installed Ultralytics cannot be extended by this version of spikeyolo_ibra."""


class ModelYAMLError(ValueError):
    """A row of a spiking model YAML that its block cannot be built from."""


class MissingExportExtra(ImportError):
    """ONNX export of a spiking model without the packages of the ``export`` extra."""


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def _unsupported(detail: str) -> UnsupportedUltralytics:
    return UnsupportedUltralytics(
        f"spikeyolo_ibra supports ultralytics{SUPPORTED} but found {ultralytics.__version__} ({detail}): "
        f"run pip install 'ultralytics{SUPPORTED}'."
    )


def _check_version() -> None:
    low, high = (_version_tuple(v) for v in re.findall(r"[\d.]+", SUPPORTED))
    if not low <= _version_tuple(ultralytics.__version__) < high:
        raise _unsupported("version outside the tested range")


def _extended_parse_model() -> Any:
    """``tasks.parse_model`` recompiled with our blocks in its channel sets, defined in the ``tasks`` namespace."""
    lines, first = inspect.getsourcelines(tasks.parse_model)
    source = "\n" * (first - 1) + "".join(lines)  # tracebacks then point at the right lines of tasks.py
    source = source.replace("def parse_model(", "def _spikeyolo_parse_model(", 1)
    source, n_base = re.subn(r"(base_modules = frozenset\(\s*\{)", r"\1*_SPIKEYOLO_CHANNEL_BLOCKS, ", source)
    source, n_head = re.subn(r"(elif m in frozenset\(\s*\{\s*)Detect,", r"\1Detect, _SpikeYOLODetect,", source)
    if (n_base, n_head) != (1, 1):
        raise _unsupported("parse_model has a layout this plugin does not know")
    namespace = vars(tasks)
    namespace["_SPIKEYOLO_CHANNEL_BLOCKS"] = CHANNEL_BLOCKS
    namespace["_SpikeYOLODetect"] = head.SpikeDetect
    exec(compile(source, inspect.getsourcefile(tasks), "exec"), namespace)
    return namespace.pop("_spikeyolo_parse_model")


def _resolve_scaled_args(d: dict) -> None:
    """Replace a block argument given per scale (a mapping such as ``{n: 1, s: 1, m: 2, l: 2}``) by its value."""
    scale = d.get("scale")
    for i, row in enumerate(d["backbone"] + d["head"]):
        for j, arg in enumerate(row[3]):
            if isinstance(arg, dict):
                if scale not in arg:
                    raise ValueError(f"layer {i} of the model YAML gives argument {j} per scale but not for '{scale}'.")
                row[3][j] = arg[scale]


def _yaml_args(cls: type) -> str:
    """The arguments a YAML row gives ``cls``: its constructor's, less what ``parse_model`` fills in."""
    params = inspect.signature(cls).parameters.values()
    return ", ".join(
        p.name if p.default is p.empty else f"{p.name}={p.default!r}" for p in params if p.name not in ("c1", "ch")
    )


def _layer_error(error: Exception, code: Any, rows: list) -> ModelYAMLError | None:
    """Name the layer, its YAML row and the block's YAML arguments for an error raised building one of our blocks."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code is not code:
        tb = tb.tb_next
    if tb is None or tb.tb_frame.f_locals.get("m") not in YAML_NAMES.values():
        return None
    i, m = tb.tb_frame.f_locals["i"], tb.tb_frame.f_locals["m"]
    f, n, name, args = rows[i]
    return ModelYAMLError(
        f"layer {i} of the model YAML, [{f}, {n}, {name}, {args}], cannot be built ({str(error).rstrip('.')}): "
        f"give {name} the args [{_yaml_args(m)}], channels before width scaling."
    )


def _wrap_parse_model(extended: Any) -> Any:
    def parse_model(d: dict, ch: int, verbose: bool = True) -> Any:
        """Ultralytics' parse_model, with our blocks known and the YAML's ``neuron:`` settings active."""
        if "neuron" not in d:
            return extended(d, ch, verbose)
        if d.get("scales") and not d.get("scale"):
            d["scale"] = next(iter(d["scales"]))
        _resolve_scaled_args(d)
        rows = copy.deepcopy(d["backbone"] + d["head"])  # parse_model rewrites the args in place
        with neuron.neuron_context(neuron.NeuronConfig.from_mapping(d["neuron"])):
            try:
                return extended(d, ch, verbose)
            except (TypeError, ValueError) as error:
                if (wrapped := _layer_error(error, extended.__code__, rows)) is None:
                    raise
                raise wrapped from error

    parse_model.spikeyolo = True
    return parse_model


def _wrap_yaml_model_load(stock: Any) -> Any:
    def yaml_model_load(path: str | Path) -> dict:
        """Ultralytics' yaml_model_load; a spiking ``<name>-<scale>.yaml`` is ``<name>.yaml`` at that scale."""
        path = Path(path)
        match = _SCALED_NAME.match(path.stem)
        if match and not path.exists() and not tasks.check_yaml(path, hard=False):
            base = path.with_name(match["stem"] + path.suffix)
            if base.exists() or tasks.check_yaml(base, hard=False):
                d = stock(base)
                if "neuron" in d and match["scale"] in (d.get("scales") or {}):
                    d["scale"], d["yaml_file"] = match["scale"], str(path)
                    return d
        d = stock(path)
        if "neuron" in d and d.get("scales") and not d.get("scale"):
            d["scale"] = next(iter(d["scales"]))  # a spiking YAML names no scale: its first, without a warning
        return d

    yaml_model_load.spikeyolo = True
    return yaml_model_load


def _wrap_torch_safe_load(stock: Any) -> Any:
    def torch_safe_load(weight: Any, *args: Any, **kwargs: Any) -> Any:
        """Ultralytics' torch_safe_load; a damaged file names itself instead of a bare ``OSError``/zip error."""
        try:
            return stock(weight, *args, **kwargs)
        except FileNotFoundError:
            raise
        except (OSError, RuntimeError, EOFError) as e:
            raise TypeError(
                f"{weight} is not a loadable checkpoint: the file is truncated or corrupt ({e}). "
                "Copy it again or re-save it from training."
            ) from e

    torch_safe_load.spikeyolo = True
    return torch_safe_load


def _wrap_fuse(stock: Any) -> Any:
    def fuse(self: tasks.BaseModel, verbose: bool = True, imgsz: int = 640) -> tasks.BaseModel:
        """Merge our re-parameterisable chains into single convs, then Ultralytics' BN folding."""
        for m in list(self.modules()):
            if isinstance(m, blocks.SpikingSynapse):
                m.fuse_synapse()
        return stock(self, verbose=verbose, imgsz=imgsz)

    fuse.spikeyolo = True
    return fuse


def _is_ours(model: Any) -> bool:
    return isinstance(model, torch.nn.Module) and any(isinstance(m, blocks.SpikingSynapse) for m in model.modules())


def _require_export_extra(exporter: Any) -> None:
    """``on_export_start``: ONNX export of our models without its packages is one sentence, not a pip install."""
    if exporter.args.format != "onnx" or not _is_ours(exporter.model):
        return
    needed = [name for name, when in EXPORT_MODULES.items() if when == "always" or exporter.args.simplify]
    if missing := [name for name in needed if importlib.util.find_spec(name) is None]:
        raise MissingExportExtra(
            f"format=onnx needs {', '.join(missing)}, not installed here: run pip install 'spikeyolo-ibra[export]' "
            "(or pip install onnx onnxruntime onnxslim)."
        )


def _without_install(check: Callable[..., bool]) -> Callable[..., bool]:
    """Wrap Ultralytics' ``check_requirements`` so that it only checks, never installs, faster-coco-eval."""

    def check_requirements(*args: Any, **kwargs: Any) -> bool:
        if args and isinstance(args[0], str) and args[0].startswith("faster-coco-eval"):
            return check(args[0], install=False)
        return check(*args, **kwargs)

    check_requirements.without_install = True
    return check_requirements


def disable_faster_coco_eval_install() -> None:
    """Make Ultralytics use faster-coco-eval only if it is already installed, never pip-install it.

    Ultralytics 8.4.190 calls ``check_requirements("faster-coco-eval>=1.6.7")`` in ``DetectionValidator.coco_evaluate``
    for COCO, LVIS and, with ``save_json=True``, any detection data set (custom ground truth built in memory), every
    epoch when training; and in ``SegmentationValidator.init_metrics`` whenever ``save_json``. Online, that runs
    ``pip install``. This rebinds the name those two modules imported so the check runs with ``install=False``: without
    the package, Ultralytics logs "faster-coco-eval unable to run" and keeps its own metrics. Idempotent.
    """
    from ultralytics.models.yolo.detect import val as detect_val
    from ultralytics.models.yolo.segment import val as segment_val

    for module in detect_val, segment_val:
        if not getattr(module.check_requirements, "without_install", False):
            module.check_requirements = _without_install(module.check_requirements)


def _no_faster_coco_eval_install(validator: Any) -> None:
    """``on_val_start``: make sure Ultralytics will not pip-install faster-coco-eval in this validation."""
    disable_faster_coco_eval_install()


def _offline_font() -> None:
    """Put matplotlib's DejaVuSans where Ultralytics looks for Arial.ttf, so plotting never tries a download."""
    target = Path(USER_CONFIG_DIR) / "Arial.ttf"
    if target.exists():
        return
    import matplotlib

    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".Arial.", suffix=".tmp")  # own name per process
        os.close(fd)
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except OSError:  # a read-only config dir: Ultralytics falls back to its own logic
        if tmp:
            Path(tmp).unlink(missing_ok=True)


CPU_THREADS_ENV = "SPIKEYOLO_CPU_THREADS"


def _cpu_threads(worker: Any) -> None:
    """``on_pretrain_routine_start`` / ``on_val_start``: on the CPU, use ``$SPIKEYOLO_CPU_THREADS`` torch threads.

    Opt-in: without the variable Ultralytics' own choice stands. ``make demo`` sets it to the core count, which trains
    IBRA-SpikeYOLO-n 1.66x faster per step on 2 cores (docs/quickstart.md).
    """
    value = os.environ.get(CPU_THREADS_ENV, "").strip()
    device = getattr(worker, "device", None)
    if not value or device is None or torch.device(device).type != "cpu":
        return
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{CPU_THREADS_ENV}={value!r} is invalid: use a whole number of threads, 1 or more.")
    torch.set_num_threads(int(value))


def _add_callback(event: str, fn: Any) -> None:
    if fn not in default_callbacks[event]:
        default_callbacks[event].append(fn)


def register() -> None:
    """Extend the installed Ultralytics in memory; idempotent."""
    if getattr(tasks.parse_model, "spikeyolo", False):
        return
    _check_version()
    extended = _extended_parse_model()
    vars(tasks).update(YAML_NAMES)
    loader = _wrap_yaml_model_load(tasks.yaml_model_load)
    tasks.yaml_model_load = engine_model.yaml_model_load = loader
    tasks.BaseModel.fuse = _wrap_fuse(tasks.BaseModel.fuse)
    tasks.torch_safe_load = _wrap_torch_safe_load(tasks.torch_safe_load)
    torch.serialization.add_safe_globals(SAFE_GLOBALS)
    _offline_font()
    _add_callback("on_val_start", _no_faster_coco_eval_install)
    _add_callback("on_pretrain_routine_start", _cpu_threads)
    _add_callback("on_val_start", _cpu_threads)
    _add_callback("on_val_end", on_val_end)
    _add_callback("on_export_start", _require_export_extra)
    tasks.parse_model = _wrap_parse_model(extended)  # last: it marks the registration as done
