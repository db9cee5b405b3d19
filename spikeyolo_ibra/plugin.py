"""The door to Ultralytics: what :func:`register` changes in the installed package, in memory, never on disk.

Ultralytics has no plugin registry. Each change below is keyed on our models (a YAML with a ``neuron:`` mapping, or a
model that holds our modules); stock models, YAMLs and checkpoints behave exactly as without this package:

- ``tasks.parse_model``: YAMLs with ``neuron:`` are built by our own parser (:mod:`spikeyolo_ibra.parser`), every
  other YAML by Ultralytics' own function, untouched;
- ``check_file`` (in ``ultralytics.utils.checks`` and ``ultralytics.data.utils``): a YAML name Ultralytics finds
  nowhere may be one of ours, looked up in this package as Ultralytics looks in its own (:func:`packaged_yaml`), so
  ``model=ibra-spikeyolo.yaml data=shapes.yaml cfg=shapes-cpu.yaml`` work from any directory, as ``yolov8n.yaml`` and
  ``coco8.yaml`` do; a name Ultralytics resolves never reaches that lookup;
- ``yaml_model_load``: ``ibra-spikeyolo-s.yaml`` is ``ibra-spikeyolo.yaml`` at scale ``s`` when no such file
  exists, and a spiking YAML without ``scale:`` takes its first scale without Ultralytics' warning;
- ``BaseModel.fuse``: first fuses our modules for integer-mode speed (:mod:`spikeyolo_ibra.fusion`: chains in their
  factored form, or one dense conv each inside ``with fusion.chains("dense")`` or with ``SPIKEYOLO_CHAINS=dense`` on
  the command line; the alignment scale folded into the weights); it touches only modules of ours;
- safe loading: our registered classes are allowed under ``ULTRALYTICS_SAFE_LOAD=1``;
- callbacks: pycocotools mAP for ``save_json=True`` validations (``on_val_end``: adds numbers and a JSON file, changes
  none of Ultralytics'); ONNX export of a spiking model without the ``export`` extra is one sentence, not a pip install
  (``on_export_start``, our models only);
- CPU training of our models runs in channels-last layout (``on_pretrain_routine_end``): the same arithmetic, a step
  of IBRA-SpikeYOLO-t 1.23x faster on 2 cores (n: 0.99-1.03x); GPU runs and stock models keep their layout;
- offline use: building a spiking model from its YAML puts matplotlib's DejaVuSans where Ultralytics looks for
  Arial.ttf, so plotting never tries a download.

Explicit opt-ins, documented in docs/troubleshooting.md: ``SPIKEYOLO_CPU_THREADS=N`` sets the torch threads of CPU
training and validation of our models (stock models keep Ultralytics' thread count); the ``spikeyolo`` command
(:mod:`spikeyolo_ibra.cli`) also turns a damaged checkpoint into one sentence. Ultralytics' own
``YOLO_AUTOINSTALL=False`` stops its pip installs (faster-coco-eval for ``save_json=True``).
"""

from __future__ import annotations

import functools
import glob
import importlib.metadata
import importlib.util
import os
import re
import shutil
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import ultralytics
from packaging.requirements import Requirement
from packaging.version import Version
from ultralytics.nn import tasks
from ultralytics.utils import LOGGER, USER_CONFIG_DIR, checks
from ultralytics.utils.callbacks.base import default_callbacks

from . import blocks, fusion, head, neuron, registry  # noqa: F401 (the imports register our classes)
from .atomic import replacing
from .coco import on_val_end
from .errors import SpikeYoloError
from .events import training as events_training
from .parser import ModelYAMLError, is_spiking_yaml, parse_spiking_model
from .precision import keep_float32, skip_amp_check

__all__ = (
    "CPU_THREADS_ENV",
    "CpuThreadsError",
    "MissingExportExtra",
    "ModelYAMLError",
    "UnsupportedUltralytics",
    "packaged_yaml",
    "register",
)

DISTRIBUTION = "spikeyolo-ibra"
#: The package folder: its ``cfg/`` holds the model YAMLs, ``cfg/datasets/`` and ``cfg/train/``.
PACKAGE = Path(__file__).resolve().parent
YAML_SUFFIXES = (".yaml", ".yml")
CPU_THREADS_ENV = "SPIKEYOLO_CPU_THREADS"
_SCALED_NAME = re.compile(r"^(?P<stem>.+)-(?P<scale>[nslmxt])$")
#: Modules ONNX export needs: always, and for ``simplify=True`` (Ultralytics' default).
EXPORT_MODULES = {"onnx": "always", "onnxruntime": "simplify", "onnxslim": "simplify"}


class UnsupportedUltralytics(SpikeYoloError, ImportError):
    """The installed Ultralytics is older than the oldest release this version of spikeyolo_ibra works with."""


class CpuThreadsError(SpikeYoloError, ValueError):
    """``SPIKEYOLO_CPU_THREADS`` is not a whole number of threads."""


class MissingExportExtra(SpikeYoloError, ImportError):
    """ONNX export of a spiking model without the packages of the ``export`` extra."""


def supported_ultralytics() -> str | None:
    """The Ultralytics range this package declares (pyproject.toml, the one place it is written); None uninstalled."""
    try:
        requirements = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:  # run from a source tree (PYTHONPATH): nothing declared
        return None
    for line in requirements:
        requirement = Requirement(line)
        if requirement.name == "ultralytics" and requirement.marker is None:
            return str(requirement.specifier)
    return None


def _check_version() -> None:
    """Older than the range: refuse (its detection head lacks what ours builds on). Newer: warn, untested."""
    spec = supported_ultralytics()
    if spec is None:
        return
    installed = Version(ultralytics.__version__)
    if installed in Requirement(f"ultralytics{spec}").specifier:
        return
    lower = [Version(s.version) for s in Requirement(f"ultralytics{spec}").specifier if s.operator in (">=", ">")]
    if lower and installed < max(lower):
        raise UnsupportedUltralytics(
            f"spikeyolo_ibra needs ultralytics{spec} but found {installed}: run pip install 'ultralytics{spec}'."
        )
    LOGGER.warning(f"spikeyolo_ibra is tested with ultralytics{spec}, not {installed}: report what breaks.")


def packaged_yaml(name: str | Path) -> str | None:
    """The YAML under ``spikeyolo_ibra/cfg/`` that ``name`` names, found as Ultralytics finds its own (``ROOT/**/x``).

    ``shapes.yaml``, ``datasets/shapes.yaml`` and the repository path ``cfg/datasets/shapes.yaml`` all name
    ``spikeyolo_ibra/cfg/datasets/shapes.yaml``. None for an absolute path, a URL, a file that is no YAML, or no match.
    """
    name = str(name).strip()
    if "://" in name or Path(name).is_absolute() or ".." in Path(name).parts or Path(name).suffix not in YAML_SUFFIXES:
        return None
    cfg = PACKAGE / "cfg"
    found = sorted(p for p in glob.glob(str(PACKAGE / "**" / glob.escape(name)), recursive=True) if Path(p).is_file())
    found = [p for p in found if Path(p).is_relative_to(cfg)]
    return found[0] if found else None


def scale_base(path: str | Path) -> Path | None:
    """``ibra-spikeyolo.yaml`` for ``ibra-spikeyolo-t.yaml`` (a scale letter after the stem), else None."""
    path = Path(path)
    match = _SCALED_NAME.match(path.stem)
    return path.with_name(match["stem"] + path.suffix) if match else None


def _wrap_check_file(stock: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(stock)
    def check_file(file: Any, *args: Any, **kwargs: Any) -> Any:
        """Ultralytics' ``check_file``; a YAML name it finds nowhere (``[]``, FileNotFoundError) may be ours."""
        try:
            found = stock(file, *args, **kwargs)
        except FileNotFoundError:
            if ours := packaged_yaml(file):
                return ours
            raise
        return found or packaged_yaml(file) or found

    check_file.spikeyolo = True
    return check_file


def _wrap_parse_model(stock: Callable[..., Any]) -> Callable[..., Any]:
    def parse_model(d: dict, ch: int, verbose: bool = True) -> Any:
        """Spiking YAMLs (with ``neuron:``) through our parser, every other YAML through Ultralytics' own."""
        if not is_spiking_yaml(d):
            return stock(d, ch, verbose)
        offline_font()
        return parse_spiking_model(d, ch, verbose)

    parse_model.spikeyolo = True
    return parse_model


def _wrap_yaml_model_load(stock: Callable[[str | Path], dict]) -> Callable[[str | Path], dict]:
    def yaml_model_load(path: str | Path) -> dict:
        """Ultralytics' yaml_model_load; a spiking ``<name>-<scale>.yaml`` is ``<name>.yaml`` at that scale."""
        path = Path(path)
        base = scale_base(path)
        if base and not path.exists() and not tasks.check_yaml(path, hard=False):
            if base.exists() or tasks.check_yaml(base, hard=False):
                d = stock(base)
                scale = path.stem.rpartition("-")[2]
                if is_spiking_yaml(d) and scale in (d.get("scales") or {}):
                    d["scale"], d["yaml_file"] = scale, str(path)
                    return d
        d = stock(path)
        if is_spiking_yaml(d) and d.get("scales") and not d.get("scale"):
            d["scale"] = next(iter(d["scales"]))  # a spiking YAML names no scale: its first, without a warning
        return d

    yaml_model_load.spikeyolo = True
    return yaml_model_load


def _wrap_fuse(stock: Callable[..., Any]) -> Callable[..., Any]:
    def fuse(self: tasks.BaseModel, *args: Any, **kwargs: Any) -> tasks.BaseModel:
        """Our speed fusion (:mod:`spikeyolo_ibra.fusion`: chains, alignment scale), then Ultralytics' BN folding.

        Takes whatever the installed Ultralytics' ``fuse`` takes (``verbose``; ``imgsz`` since 8.4.1xx).
        """
        fusion.fuse_for_speed(self)
        return stock(self, *args, **kwargs)

    fuse.spikeyolo = True
    return fuse


def is_spiking_model(model: Any) -> bool:
    """True for a model that holds our neuron -> synapse pairs (spiking or its ANN twin)."""
    return isinstance(model, torch.nn.Module) and any(isinstance(m, blocks.SpikingSynapse) for m in model.modules())


def _require_export_extra(exporter: Any) -> None:
    """``on_export_start``: ONNX export of our models without its packages is one sentence, not a pip install."""
    if exporter.args.format != "onnx" or not is_spiking_model(exporter.model):
        return
    needed = [name for name, when in EXPORT_MODULES.items() if when == "always" or exporter.args.simplify]
    if missing := [name for name in needed if importlib.util.find_spec(name) is None]:
        raise MissingExportExtra(
            f"format=onnx needs {', '.join(missing)}, not installed here: run pip install 'spikeyolo-ibra[export]' "
            "(or pip install onnx onnxruntime onnxslim)."
        )


def offline_font() -> None:
    """Put matplotlib's DejaVuSans where Ultralytics looks for Arial.ttf, so plotting never tries a download."""
    target = Path(USER_CONFIG_DIR) / "Arial.ttf"
    if target.exists():
        return
    import matplotlib

    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with replacing(target) as tmp:
            shutil.copyfile(source, tmp)
    except OSError:  # a read-only config dir: Ultralytics falls back to its own logic
        pass


def _names_our_model(model: Any) -> bool:
    """True for a model of ours, or the path of our checkpoint or spiking YAML (what a standalone validator holds).

    A checkpoint is recognised by our module paths in its pickle (``spikeyolo_ibra.``), read without unpickling.
    """
    if isinstance(model, torch.nn.Module):
        return is_spiking_model(model)
    path = Path(str(model))
    try:
        if path.suffix in YAML_SUFFIXES:
            return is_spiking_yaml(tasks.yaml_model_load(path))
        if path.suffix == ".pt" and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                pickle = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
                return b"spikeyolo_ibra." in archive.read(pickle)
    except (OSError, StopIteration, ValueError, zipfile.BadZipFile):
        pass
    return False


def _cpu_threads(worker: Any) -> None:
    """``on_pretrain_routine_end`` / ``on_val_start``: a CPU run of our model uses ``$SPIKEYOLO_CPU_THREADS`` threads.

    Opt-in: without the variable Ultralytics' own choice (``min(8, cores - 1)``) stands, and it always stands for stock
    models. ``make demo`` sets it to the idle core count, which trains IBRA-SpikeYOLO-n 1.66x faster per step on 2 cores
    (docs/quickstart.md). A trainer holds its model by then; a standalone validator, the path of the one it validates
    (validation during training keeps the trainer's threads).
    """
    value = os.environ.get(CPU_THREADS_ENV, "").strip()
    device = getattr(worker, "device", None)
    if not value or device is None or torch.device(device).type != "cpu":
        return
    if not value.isdigit() or int(value) < 1:
        raise CpuThreadsError(f"{CPU_THREADS_ENV}={value!r} is invalid: use a whole number of threads, 1 or more.")
    if _names_our_model(getattr(worker, "model", None) or getattr(getattr(worker, "args", None), "model", None)):
        torch.set_num_threads(int(value))


def _cpu_channels_last(trainer: Any) -> None:
    """``on_pretrain_routine_end``: our model and its EMA train on a CPU in channels-last (NHWC) layout.

    oneDNN's convolutions run faster on NHWC tensors: a training step of IBRA-SpikeYOLO-t at 96 px, batch 16, took
    0.182-0.188 s against 0.225-0.231 s on 2 cores (n: 0.688-0.703 s against 0.685-0.721 s; ``benchmarks/speed.py
    --mode train --channels-last on|off``, docs/quickstart.md). Only the memory layout changes, so
    checkpoints hold the same numbers; every consumer of a checkpoint (validator, predictor, exporter, spike
    inference) accepts either layout. GPU runs and stock models keep theirs.
    """
    if torch.device(trainer.device).type != "cpu" or not is_spiking_model(trainer.model):
        return
    for model in (trainer.model, getattr(trainer.ema, "ema", None)):
        if model is not None:
            model.to(memory_format=torch.channels_last)


def _rebind(stock: Callable[..., Any], wrap: Callable[..., Any], *importers: str) -> Callable[..., Any]:
    """``wrap(stock)``, also bound in each of ``importers`` that imported ``stock`` by name already.

    A module that imports the name later, or is partway through its import now (the import hook registers the moment
    ``ultralytics.nn.tasks`` has loaded, possibly in the middle of another Ultralytics module), binds the wrapper from
    the patched module. Importing those modules here instead would run into Ultralytics' own import cycles.
    """
    ours = wrap(stock)
    for name in importers:
        module = sys.modules.get(name)
        if getattr(module, stock.__name__, None) is stock:
            setattr(module, stock.__name__, ours)
    return ours


def _add_callback(event: str, fn: Callable[[Any], None]) -> None:
    if fn not in default_callbacks[event]:
        default_callbacks[event].append(fn)


def register() -> None:
    """Extend the installed Ultralytics in memory; idempotent."""
    if getattr(tasks.parse_model, "spikeyolo", False):
        return
    _check_version()
    checks.check_file = _rebind(checks.check_file, _wrap_check_file, "ultralytics.data.utils")  # model=, cfg=, data=
    tasks.yaml_model_load = _rebind(tasks.yaml_model_load, _wrap_yaml_model_load, "ultralytics.engine.model")
    tasks.BaseModel.fuse = _wrap_fuse(tasks.BaseModel.fuse)
    torch.serialization.add_safe_globals(registry.safe_classes())
    _add_callback("on_pretrain_routine_end", _cpu_threads)  # the model is built by then
    _add_callback("on_pretrain_routine_end", _cpu_channels_last)
    _add_callback("on_val_start", _cpu_threads)
    _add_callback("on_val_end", on_val_end)
    _add_callback("on_export_start", _require_export_extra)
    checks.check_amp = _rebind(checks.check_amp, skip_amp_check, "ultralytics.engine.trainer")  # no AMP trial for ours
    _add_callback("on_pretrain_routine_end", keep_float32)  # spiking models train in float32 (precision.py)
    events_training.register()  # event data (a data YAML with events:) in the trainer and validator; EventEncoder
    tasks.parse_model = _wrap_parse_model(tasks.parse_model)  # last: it marks the registration as done
