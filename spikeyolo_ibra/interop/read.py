"""Reading SpikeYOLO's checkpoints (BICLab/SpikeYOLO, a fork of Ultralytics 8.0.197) without running their code.

Their trainer saves ``{'model' | 'ema': DetectionModel, 'train_args', 'version', ...}`` with the model pickled as an
object of their fork (``ultralytics.nn.modules.yolo_spikformer.*``) in float16. :func:`read_checkpoint` reads such a
file with :mod:`.safe_pickle` (nothing from it runs) and checks that it is their ``snn_yolov8.yaml`` detector;
:func:`infer_shape` reads scale, class count, T and D from tensor shapes.

Their I-LIF (``mem_update`` with ``MultiSpikeD``: s = round(clip(u, 0, D)), u[t] = 0.25 (u[t-1] - s[t-1]) + x[t],
reset detached) is our unary neuron with ``levels: D, scale: 1``; T comes from their ``MS_GetT.T``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import SpikeYoloError
from .safe_pickle import Inert, SafeLoadError, load, origin, walk

__all__ = (
    "Shape",
    "SpikeYOLOImportError",
    "TheirCheckpoint",
    "fail",
    "infer_shape",
    "layer_blocks",
    "layer_class",
    "own_tensors",
    "read_checkpoint",
    "state_keys",
    "submodule",
)

SUPPORTED = "checkpoints of SpikeYOLO's COCO detector (snn_yolov8.yaml, scales n/s/m/l, I-LIF mem_update neurons)"

THEIR_MODULE = "yolo_spikformer"  # last part of their module path: ultralytics.nn.modules.yolo_spikformer
THEIR_CLASSES = frozenset(
    {
        "BNAndPadLayer",
        "MS_AllConvBlock",
        "MS_ConvBlock",
        "MS_DownSampling",
        "MS_GetT",
        "MS_StandardConv",
        "RepConv",
        "SepConv",
        "SepRepConv",
        "SpikeConv",
        "SpikeConvWithoutBN",
        "SpikeDFL",
        "SpikeDetect",
        "SpikeSPPF",
        "mem_update",
        *(f"MultiSpike{d}" for d in (1, 2, 4, 8)),
    }
)
TORCH_CLASSES = frozenset(
    f"torch.nn.modules.{m}"
    for m in (
        "conv.Conv2d",
        "batchnorm.BatchNorm2d",
        "container.Sequential",
        "container.ModuleList",
        "pooling.MaxPool2d",
        "upsampling.Upsample",
    )
)
RATIO_LAYER = 24  # our P5 output block; their YAML comments tell m and l users to change its mixer ratio
DEPTHS = (0.33, 0.5, 0.67, 1.0)  # depth multiples tried for a width that is none of n/s/m/l


class SpikeYOLOImportError(SpikeYoloError, ValueError):
    """A file that cannot be imported; the message is one sentence naming what was found and what is supported."""


@dataclass
class TheirCheckpoint:
    """What :func:`read_checkpoint` found in their checkpoint."""

    path: Path
    sha256: str
    entry: str  # "ema" or "model"
    model: Inert
    layers: list[Inert]
    ckpt: dict


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def fail(path: Path, what: str) -> SpikeYOLOImportError:
    """The error for their file ``path``: what it holds, then what is supported."""
    return SpikeYOLOImportError(f"{path.name} {what}; supported: {SUPPORTED}.")


def _classes(tree: Inert) -> set[str]:
    return {m.origin for _, m in walk(tree)}


def _is_theirs(path: str) -> bool:
    module, _, name = path.rpartition(".")
    return module.rsplit(".", 1)[-1] == THEIR_MODULE and name in THEIR_CLASSES


def _is_known(path: str) -> bool:
    return _is_theirs(path) or path in TORCH_CLASSES or (path.startswith("ultralytics.") and path.endswith(".Concat"))


def read_checkpoint(path: str | Path) -> TheirCheckpoint:
    """Read their checkpoint safely and check it holds their COCO detector; SpikeYOLOImportError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise SpikeYOLOImportError(
            f"{path} does not exist or is not a file: pass the .pt file SpikeYOLO's trainer saved."
        )
    try:
        ckpt = load(path)
    except SafeLoadError as e:
        raise fail(path, str(e)) from e
    if not isinstance(ckpt, dict):
        kind = origin(ckpt) or type(ckpt).__name__
        raise fail(path, f"holds a {kind}, not the checkpoint dict a trainer saves")
    if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        raise fail(path, "holds a bare state dict (tensors only), not the checkpoint dict a trainer saves")
    entry = "ema" if ckpt.get("ema") is not None else "model"
    model = ckpt.get(entry)
    if model is None:
        raise fail(path, f"is a dict without a model (keys: {', '.join(map(str, list(ckpt)[:8]))})")
    if not isinstance(model, Inert) or model.class_name != "DetectionModel":
        raise fail(path, f"holds a {origin(model) or type(model).__name__} under '{entry}', not a detection model")
    net = submodule(model, "model")
    classes = _classes(net) if isinstance(net, Inert) else set()
    if any(c.startswith("spikeyolo_ibra.") for c in classes):
        raise SpikeYOLOImportError(
            f"{path.name} is already a spikeyolo_ibra checkpoint: use it directly (yolo val model={path.name}), "
            f"or start IBRA training from it with yolo train model=ibra-spikeyolo.yaml pretrained={path.name}."
        )
    if any("spikingjelly" in c for c in classes):
        found = sorted({c.rsplit(".", 1)[-1] for c in classes if "spikingjelly" in c})
        raise fail(path, f"is SpikeYOLO's GEN1 event-camera variant (SpikingJelly neurons: {', '.join(found)})")
    if not any(_is_theirs(c) for c in classes):
        if any(c.startswith("ultralytics.nn.modules.") for c in classes):
            blocks_found = sorted({c.rsplit(".", 1)[-1] for c in classes if c.startswith("ultralytics.")})[:4]
            raise fail(path, f"holds a stock Ultralytics model ({', '.join(blocks_found)}), not SpikeYOLO's")
        raise fail(path, "holds no SpikeYOLO model (none of the yolo_spikformer blocks)")
    unknown = sorted({c.rsplit(".", 1)[-1] for c in classes if not _is_known(c)})
    if unknown:
        raise fail(path, f"holds a SpikeYOLO model built from other blocks ({', '.join(unknown[:4])})")
    layers = layer_blocks(net)
    return TheirCheckpoint(path, _sha256(path), entry, model, layers, ckpt)


def own_tensors(module: Inert) -> dict[str, torch.Tensor]:
    """A stand-in module's own parameters and persistent buffers."""
    skip = module.get("_non_persistent_buffers_set") or set()
    own = {**(module.get("_parameters") or {}), **(module.get("_buffers") or {})}
    return {k: v for k, v in own.items() if v is not None and k not in skip}


def state_keys(tree: Inert, prefix: str) -> set[str]:
    """Every state-dict key of the stand-in module tree ``tree``, below ``prefix``."""
    return {f"{prefix}.{name}.{k}".replace("..", ".").strip(".") for name, m in walk(tree) for k in own_tensors(m)}


def layer_blocks(layer: Inert) -> list[Inert]:
    """The blocks of one layer: the layer itself, or the children of a repeat ``Sequential``."""
    children = layer.get("_modules")
    if layer.class_name == "Sequential":
        return [m for m in children.values() if isinstance(m, Inert)] if isinstance(children, dict) else []
    return [layer]


def layer_class(layer: Inert) -> str:
    """The class of one layer's blocks (of the layer itself when it is no repeat ``Sequential``)."""
    inner = layer_blocks(layer)
    return inner[0].class_name if inner else layer.class_name


@dataclass
class Shape:
    """Scale and head of their model, read from tensor shapes."""

    scale: str
    depth: float
    width: float
    nc: int
    T: int
    levels: int
    ratio: float  # the mixer ratio of our layer 24 (their 25)
    names: dict[int, str]


def _their_scales(cfg: dict) -> dict[str, list]:
    return {k: list(v) for k, v in (cfg.get("scales") or {}).items()}


def infer_shape(src: TheirCheckpoint, cfg: dict) -> Shape:
    """Scale (width from the first conv, depth from the repeats), classes, T, D and the P5 mixer ratio."""
    layers = src.layers
    first = next(iter(layer_blocks(layers[1])), None) if len(layers) > 1 else None
    conv = submodule(first, "encode_conv")
    weight = own_tensors(conv).get("weight") if conv is not None else None
    if weight is None or weight.ndim != 4:
        raise fail(src.path, "has no MS_DownSampling conv at layer 1, where snn_yolov8.yaml encodes the image")
    if weight.shape[1] != 3:
        raise fail(src.path, f"expects {weight.shape[1]}-channel input (event frames?), not RGB images")
    width = weight.shape[0] / 128
    repeats = tuple(len(layer_blocks(layers[i])) for i in (2, 4, 6, 8)) if len(layers) > 8 else ()
    scale = next(
        (k for k, (d, w, _) in _their_scales(cfg).items() if math.isclose(w, width) and _repeats(d) == repeats),
        None,
    )
    if scale is not None:
        depth = _their_scales(cfg)[scale][0]
    else:  # a width none of n/s/m/l has (e.g. a reduced test model): keep the architecture, name the scale "custom"
        depth = next((d for d in DEPTHS if _repeats(d) == repeats), None)
        if depth is None:
            raise fail(src.path, f"repeats its blocks {repeats} times, which no depth multiple of the YAML gives")
        scale = "custom"
    head = layers[-1]
    cls_conv = submodule(submodule(head, "cv3", "ModuleList", "0", "Sequential", "2"), "conv")
    nc = int(own_tensors(cls_conv)["weight"].shape[0]) if cls_conv is not None and own_tensors(cls_conv) else 0
    if nc < 1:
        raise fail(src.path, "has no class branch (SpikeDetect.cv3) to count the classes from")
    T = layers[0].get("T")
    if type(T) is not int or T < 1:
        raise fail(src.path, f"has MS_GetT.T = {T!r} at layer 0 instead of a whole number of timesteps")
    levels = _levels(src)
    p5 = next(iter(layer_blocks(layers[RATIO_LAYER + 1])), None) if len(layers) > RATIO_LAYER + 1 else None
    mixer = [submodule(p5, "conv1", "RepConv", "body", "Sequential", "2", "Sequential", str(i)) for i in (0, 1)]
    sizes = [own_tensors(m).get("weight") if m is not None else None for m in mixer]
    if any(w is None or w.ndim != 4 or not w.shape[0] for w in sizes):
        raise fail(src.path, f"has no re-parameterisable mixer in its P5 block (layer {RATIO_LAYER + 1})")
    ratio = sizes[1].shape[0] / sizes[0].shape[0]
    names = src.model.get("names")
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or sorted(names) != list(range(nc)):
        names = {i: str(i) for i in range(nc)}
    names = {int(k): str(v) for k, v in names.items()}
    return Shape(scale, depth, width, nc, T, levels, int(ratio) if ratio.is_integer() else ratio, names)


def _repeats(depth: float) -> tuple[int, ...]:
    """Blocks per repeated backbone layer (3, 6, 9, 3 before scaling), as Ultralytics rounds them."""
    return tuple(max(round(n * depth), 1) for n in (3, 6, 9, 3))


def _levels(src: TheirCheckpoint) -> int:
    """D of their I-LIF, from the class of every neuron's quantiser (``MultiSpikeD``); one D for the whole model."""
    found = set()
    for _, m in walk(submodule(src.model, "model")):
        if m.class_name == "mem_update":
            q = submodule(m, "qtrick")
            found.add(q.class_name if q is not None else "none")
    levels = {int(c[len("MultiSpike") :]) for c in found if c.startswith("MultiSpike")}
    if not found:
        raise fail(src.path, "has no I-LIF neurons (mem_update)")
    if len(found) != 1 or len(levels) != 1:
        raise fail(src.path, f"mixes neuron quantisers ({', '.join(sorted(found)) or 'none'}); one D is supported")
    return levels.pop()


def submodule(module: Inert | None, *path: str) -> Inert | None:
    """Follow ``name, class, name, class, ..., name`` through stand-in modules; None where the path breaks.

    ``submodule(m, "conv1", "RepConv", "body")`` is ``m.conv1.body`` if ``m.conv1`` is a ``RepConv``.
    """
    for i, name in enumerate(path):
        if i % 2:
            if module is None or module.class_name != name:
                return None
            continue
        children = module.get("_modules") if isinstance(module, Inert) else None
        module = children.get(name) if isinstance(children, dict) else None
    return module if isinstance(module, Inert) else None
