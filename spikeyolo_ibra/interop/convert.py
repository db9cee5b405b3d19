"""SpikeYOLO's checkpoint as a checkpoint of ours: read, build our model of the same shape, map, write.

:func:`import_spikeyolo` reads their file (:mod:`.read`), builds ``spikeyolo.yaml`` (their I-LIF neuron: outputs equal
to theirs) or ``ibra-spikeyolo.yaml`` (initialised from their weights, to fine-tune) at the scale, classes, T and D
their tensors show, maps every tensor (:mod:`.map`) and writes an ordinary Ultralytics checkpoint (:mod:`.write`).
The weights stay float32: Ultralytics' savers round to float16, which turns the folded means into other numbers and
flips neurons at rounding boundaries (relative head difference 0.33 measured against their model).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from ultralytics.nn import tasks
from ultralytics.nn.tasks import DetectionModel

from .. import __version__
from ..neuron import NeuronConfig
from ..plugin import PACKAGE, packaged_yaml
from .map import StateMapper
from .read import RATIO_LAYER, Shape, SpikeYOLOImportError, fail, infer_shape, read_checkpoint
from .write import plain, save_checkpoint

__all__ = (
    "CONFIGS",
    "ImportReport",
    "build_target",
    "ilif_config",
    "import_spikeyolo",
    "model_yaml",
    "same_neuron",
    "target_yaml",
)

#: ``--neuron`` choices: the model YAML each one builds (same architecture, same state-dict keys).
CONFIGS = {"ilif": "spikeyolo.yaml", "ibra": "ibra-spikeyolo.yaml"}


def model_yaml(neuron: str, cfg: str | Path | None = None) -> Path:
    """The model YAML to build: ``cfg`` (a path, or one of our YAMLs by name), else the package's for ``neuron``."""
    if cfg is not None:
        path = Path(cfg)
        return path if path.is_file() else Path(packaged_yaml(cfg) or path)
    if neuron not in CONFIGS:
        raise SpikeYOLOImportError(f"--neuron {neuron!r} is not known: use one of {', '.join(CONFIGS)}.")
    return PACKAGE / "cfg" / CONFIGS[neuron]


def ilif_config(T: int, levels: int) -> NeuronConfig:
    """SpikeYOLO's I-LIF in our terms: unary, D = ``levels``, no range alignment, leak 0.25, reset detached."""
    return NeuronConfig(T=T, coding="unary", levels=levels, scale=1, beta=0.25, detach_reset=True)


def same_neuron(a: NeuronConfig, b: NeuronConfig) -> bool:
    """Equal in every setting that shapes the unary neuron's output (``bits`` is unused by unary coding)."""
    keys = ("T", "coding", "levels", "scale", "beta", "detach_reset", "type")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


def target_yaml(cfg: str | Path, shape: Shape) -> dict:
    """The model YAML ``cfg`` at the scale, class count, T (and D for unary neurons) of ``shape``."""
    path = Path(cfg)
    if not path.is_file():
        raise SpikeYOLOImportError(f"model YAML {path} does not exist: pass --cfg with a spikeyolo_ibra model YAML.")
    d = copy.deepcopy(tasks.yaml_model_load(path))
    if "neuron" not in d or len(d.get("backbone", [])) + len(d.get("head", [])) <= RATIO_LAYER:
        raise SpikeYOLOImportError(f"{path.name} is not a spikeyolo_ibra model YAML (no neuron: key or too few rows).")
    neuron = dict(d["neuron"] or {})
    neuron["T"] = shape.T
    if neuron.get("coding") == "unary":
        neuron["levels"] = shape.levels
    config = NeuronConfig.from_mapping(neuron)
    # N as a float: with the integer 1, ONNX export's peephole pass drops ``u * 1`` and the neuron's in-place clamp
    # then writes into its input ("Argument passed to at() was not in the map"); 1.0 exports and computes the same.
    d["neuron"] = {**config.to_mapping(), "scale": float(config.scale)}
    d["nc"] = shape.nc
    d["scales"] = {**(d.get("scales") or {}), shape.scale: [shape.depth, shape.width, 1024]}
    d["scale"] = shape.scale
    row = (d["backbone"] + d["head"])[RATIO_LAYER]
    row[3][1] = shape.ratio
    d["yaml_file"] = f"{path.stem}-{shape.scale}{path.suffix}" if shape.scale != "custom" else path.name
    return d


def build_target(d: dict) -> DetectionModel:
    """Our detector from the model YAML dict ``d`` (every argument resolved), verbose off."""
    return DetectionModel(copy.deepcopy(d), ch=3, verbose=False)


@dataclass
class ImportReport:
    """What :func:`import_spikeyolo` read and wrote."""

    source: str
    sha256: str
    source_version: str | None
    entry: str
    shape: Shape
    tensors: int
    folded_biases: int
    cfg: str
    neuron: dict
    equivalent: bool
    output: str

    def lines(self) -> Iterator[str]:
        """A short human summary."""
        yield f"read {self.source} ('{self.entry}', their code {self.source_version}, sha256 {self.sha256[:12]})"
        sh = self.shape
        yield (
            f"scale {sh.scale} (depth {sh.depth:g}, width {sh.width:g}), {sh.nc} classes, T = {sh.T}, "
            f"I-LIF D = {sh.levels}, P5 mixer ratio {sh.ratio:g}"
        )
        yield f"mapped {self.tensors} tensors, folded {self.folded_biases} downsampling biases into their BN"
        how = "outputs equal to the source in eval mode" if self.equivalent else "initialised from the source weights"
        yield f"wrote {self.output}: {self.cfg} ({how})"


def import_spikeyolo(
    src: str | Path, dst: str | Path, neuron: str = "ilif", cfg: str | Path | None = None
) -> ImportReport:
    """Convert SpikeYOLO's checkpoint ``src`` into our checkpoint ``dst`` of ``cfg`` (default: by ``neuron``).

    Raises SpikeYOLOImportError (one sentence) for anything it cannot convert; then nothing is written.
    """
    src, dst = Path(src), Path(dst)
    if dst.suffix != ".pt":
        raise SpikeYOLOImportError(f"--out {dst} does not end in .pt: Ultralytics loads checkpoints by that suffix.")
    if dst.exists() and src.exists() and os.path.samefile(src, dst):
        raise SpikeYOLOImportError(f"--out {dst} is the source file itself: pass a new name for the converted file.")
    cfg_path = model_yaml(neuron, cfg)
    theirs = read_checkpoint(src)
    try:
        template = tasks.yaml_model_load(cfg_path) if cfg_path.is_file() else {}
        shape = infer_shape(theirs, template)
        d = target_yaml(cfg_path, shape)
        model = build_target(d)
        mapper = StateMapper(theirs, model)
        mapper.run()
    except SpikeYOLOImportError:
        raise
    except (AttributeError, TypeError, KeyError, IndexError, ValueError) as e:  # a structure none of the checks foresaw
        raise fail(src, f"has an unexpected structure ({type(e).__name__}: {e})") from e
    model.load_state_dict(mapper.state, strict=True)
    for name, (eps, momentum) in mapper.bn_settings.items():
        bn = model.get_submodule(name)
        bn.eps, bn.momentum = eps, momentum
    stride = theirs.layers[-1].get("stride")
    if isinstance(stride, torch.Tensor) and not torch.equal(stride.float(), model.stride.float()):
        raise fail(src, f"has head strides {stride.tolist()}, ours {model.stride.tolist()}")
    model.names = shape.names
    config = NeuronConfig.from_mapping(d["neuron"])
    targs = theirs.ckpt.get("train_args") if isinstance(theirs.ckpt.get("train_args"), dict) else {}
    imgsz, data = targs.get("imgsz"), targs.get("data")
    train_args = {"task": "detect", "imgsz": imgsz if type(imgsz) is int else 640, "single_cls": False}
    if isinstance(data, str):  # what `yolo val model=DST.pt` uses when no data= is given, as for any checkpoint
        train_args["data"] = data
    report = ImportReport(
        source=src.name,
        sha256=theirs.sha256,
        source_version=str(theirs.ckpt.get("version")) if theirs.ckpt.get("version") is not None else None,
        entry=theirs.entry,
        shape=shape,
        tensors=len(mapper.used),
        folded_biases=mapper.folded,
        cfg=cfg_path.name,
        neuron=config.to_mapping(),
        equivalent=same_neuron(config, ilif_config(shape.T, shape.levels)),
        output=str(dst),
    )
    provenance = {
        **{k: v for k, v in asdict(report).items() if k != "output"},
        "importer": f"spikeyolo_ibra {__version__}",
        "source_date": plain(theirs.ckpt.get("date")),
        "source_epoch": plain(theirs.ckpt.get("epoch")),
        "source_train_args": plain(targs),
    }
    save_checkpoint(model, dst, train_args, {"spikeyolo_import": provenance})
    return report
