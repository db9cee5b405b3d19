"""Checkpoints of SpikeYOLO's own code (BICLab/SpikeYOLO, a fork of Ultralytics 8.0.197) as checkpoints of ours.

Their trainer saves ``{'model' | 'ema': DetectionModel, 'train_args', 'version', ...}`` with the model pickled as an
object of their fork (``ultralytics.nn.modules.yolo_spikformer.*``) in float16. :func:`import_spikeyolo` reads such a
file with :mod:`.safe_pickle` (nothing from it runs), checks that it is their ``snn_yolov8.yaml`` detector layer by
layer, infers scale and class count from tensor shapes, maps every tensor onto ``cfg/spikeyolo.yaml`` and writes an
ordinary Ultralytics checkpoint. Layer ``i`` of theirs is our layer ``i - 1``: their layer 0 is ``MS_GetT``, which
only repeats the image T times (our first ``SpikeDownsample`` does that after its conv).

Two things are not a renaming:

- their ``MS_DownSampling`` convs carry a bias b; our downsampling conv has none. It is folded into the BN that
  follows, exactly in eval and in train mode (batch statistics subtract any constant):
  ``BN(Wx + b; mu) = BN(Wx; mu - b)``, so ``running_mean <- running_mean - b`` (computed in float64, stored float32);
- the weights stay float32. Ultralytics' savers round to float16, which turns the folded means into other numbers and
  flips neurons at rounding boundaries (relative head difference 0.33 measured against their model).

Their I-LIF (``mem_update`` with ``MultiSpikeD``: s = round(clip(u, 0, D)), u[t] = 0.25 (u[t-1] - s[t-1]) + x[t],
reset detached) is our unary neuron with ``levels: D, scale: 1``; T comes from their ``MS_GetT.T``.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import ultralytics
from torch import nn
from ultralytics.cfg import DEFAULT_CFG_DICT
from ultralytics.nn import tasks
from ultralytics.nn.tasks import DetectionModel

from .. import __version__, blocks
from ..atomic import replacing
from ..errors import SpikeYoloError
from ..neuron import NeuronConfig
from .safe_pickle import Inert, SafeLoadError, load, origin, walk

__all__ = (
    "CONFIGS",
    "ImportReport",
    "Mapping",
    "SpikeYOLOImportError",
    "build_target",
    "import_spikeyolo",
    "read_source",
    "save_checkpoint",
)

CFG_DIR = Path(__file__).resolve().parents[1] / "cfg"
#: ``--neuron`` choices: the model YAML each one builds (same architecture, same state-dict keys).
CONFIGS = {"ilif": "spikeyolo.yaml", "ibra": "ibra-spikeyolo.yaml"}
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
#: Our top-level block -> theirs at the next layer index.
LAYER_CLASSES = {
    "SpikeDownsample": "MS_DownSampling",
    "SpikeAllConvBlock": "MS_AllConvBlock",
    "SpikeConvBlock": "MS_ConvBlock",
    "SpikeSPPF": "SpikeSPPF",
    "SpikeConv": "MS_StandardConv",
    "Upsample": "Upsample",
    "Concat": "Concat",
    "SpikeDetect": "SpikeDetect",
}
BN_TENSORS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
#: Their re-parameterisable convs as (sub-path, class, index in our LinearChain [ZeroPad2d, ..., BN]).
SEPREP_STEPS = (("body.0", "BNAndPadLayer", 1), ("body.1.0", "Conv2d", 2), ("body.1.1", "Conv2d", 3))
REP_STEPS = (
    ("body.0", "Conv2d", 1),
    ("body.1", "BNAndPadLayer", 2),
    ("body.2.0", "Conv2d", 3),
    ("body.2.1", "Conv2d", 4),
    ("body.2.2", "BatchNorm2d", 5),
)
RATIO_LAYER = 24  # our P5 output block; their YAML comments tell m and l users to change its mixer ratio
DEPTHS = (0.33, 0.5, 0.67, 1.0)  # depth multiples tried for a width that is none of n/s/m/l


class SpikeYOLOImportError(SpikeYoloError, ValueError):
    """A file that cannot be imported; the message is one sentence naming what was found and what is supported."""


# --- reading their file ----------------------------------------------------------------------------------------------
@dataclass
class Source:
    """What :func:`read_source` found in their checkpoint."""

    path: Path
    sha256: str
    entry: str  # "ema" or "model"
    model: Inert
    layers: list[Inert]
    ckpt: dict


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _fail(path: Path, what: str) -> SpikeYOLOImportError:
    return SpikeYOLOImportError(f"{path.name} {what}; supported: {SUPPORTED}.")


def _classes(tree: Inert) -> set[str]:
    return {m.origin for _, m in walk(tree)}


def _is_theirs(path: str) -> bool:
    module, _, name = path.rpartition(".")
    return module.rsplit(".", 1)[-1] == THEIR_MODULE and name in THEIR_CLASSES


def _is_known(path: str) -> bool:
    return _is_theirs(path) or path in TORCH_CLASSES or (path.startswith("ultralytics.") and path.endswith(".Concat"))


def read_source(path: str | Path) -> Source:
    """Read their checkpoint safely and check it holds their COCO detector; SpikeYOLOImportError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise SpikeYOLOImportError(
            f"{path} does not exist or is not a file: pass the .pt file SpikeYOLO's trainer saved."
        )
    try:
        ckpt = load(path)
    except SafeLoadError as e:
        raise _fail(path, str(e)) from e
    if not isinstance(ckpt, dict):
        kind = origin(ckpt) or type(ckpt).__name__
        raise _fail(path, f"holds a {kind}, not the checkpoint dict a trainer saves")
    if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        raise _fail(path, "holds a bare state dict (tensors only), not the checkpoint dict a trainer saves")
    entry = "ema" if ckpt.get("ema") is not None else "model"
    model = ckpt.get(entry)
    if model is None:
        raise _fail(path, f"is a dict without a model (keys: {', '.join(map(str, list(ckpt)[:8]))})")
    if not isinstance(model, Inert) or model.class_name != "DetectionModel":
        raise _fail(path, f"holds a {origin(model) or type(model).__name__} under '{entry}', not a detection model")
    net = _child(model, "model")
    classes = _classes(net) if isinstance(net, Inert) else set()
    if any(c.startswith("spikeyolo_ibra.") for c in classes):
        raise SpikeYOLOImportError(
            f"{path.name} is already a spikeyolo_ibra checkpoint: use it directly (yolo val model={path.name}), "
            f"or start IBRA training from it with yolo train model=cfg/ibra-spikeyolo.yaml pretrained={path.name}."
        )
    if any("spikingjelly" in c for c in classes):
        found = sorted({c.rsplit(".", 1)[-1] for c in classes if "spikingjelly" in c})
        raise _fail(path, f"is SpikeYOLO's GEN1 event-camera variant (SpikingJelly neurons: {', '.join(found)})")
    if not any(_is_theirs(c) for c in classes):
        if any(c.startswith("ultralytics.nn.modules.") for c in classes):
            blocks_found = sorted({c.rsplit(".", 1)[-1] for c in classes if c.startswith("ultralytics.")})[:4]
            raise _fail(path, f"holds a stock Ultralytics model ({', '.join(blocks_found)}), not SpikeYOLO's")
        raise _fail(path, "holds no SpikeYOLO model (none of the yolo_spikformer blocks)")
    unknown = sorted({c.rsplit(".", 1)[-1] for c in classes if not _is_known(c)})
    if unknown:
        raise _fail(path, f"holds a SpikeYOLO model built from other blocks ({', '.join(unknown[:4])})")
    layers = _blocks(net)
    return Source(path, _sha256(path), entry, model, layers, ckpt)


# --- what the shapes say ---------------------------------------------------------------------------------------------
def _tensors(module: Inert) -> dict[str, torch.Tensor]:
    """A stand-in module's own parameters and persistent buffers."""
    skip = module.get("_non_persistent_buffers_set") or set()
    own = {**(module.get("_parameters") or {}), **(module.get("_buffers") or {})}
    return {k: v for k, v in own.items() if v is not None and k not in skip}


def _state_keys(tree: Inert, prefix: str) -> set[str]:
    return {f"{prefix}.{name}.{k}".replace("..", ".").strip(".") for name, m in walk(tree) for k in _tensors(m)}


def _blocks(layer: Inert) -> list[Inert]:
    """The blocks of one layer: the layer itself, or the children of a repeat ``Sequential``."""
    children = layer.get("_modules")
    if layer.class_name == "Sequential":
        return [m for m in children.values() if isinstance(m, Inert)] if isinstance(children, dict) else []
    return [layer]


def _layer_class(layer: Inert) -> str:
    inner = _blocks(layer)
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


def infer_shape(src: Source, cfg: dict) -> Shape:
    """Scale (width from the first conv, depth from the repeats), classes, T, D and the P5 mixer ratio."""
    layers = src.layers
    first = next(iter(_blocks(layers[1])), None) if len(layers) > 1 else None
    conv = _child(first, "encode_conv")
    weight = _tensors(conv).get("weight") if conv is not None else None
    if weight is None or weight.ndim != 4:
        raise _fail(src.path, "has no MS_DownSampling conv at layer 1, where snn_yolov8.yaml encodes the image")
    if weight.shape[1] != 3:
        raise _fail(src.path, f"expects {weight.shape[1]}-channel input (event frames?), not RGB images")
    width = weight.shape[0] / 128
    repeats = tuple(len(_blocks(layers[i])) for i in (2, 4, 6, 8)) if len(layers) > 8 else ()
    scale = next(
        (k for k, (d, w, _) in _their_scales(cfg).items() if math.isclose(w, width) and _repeats(d) == repeats),
        None,
    )
    if scale is not None:
        depth = _their_scales(cfg)[scale][0]
    else:  # a width none of n/s/m/l has (e.g. a reduced test model): keep the architecture, name the scale "custom"
        depth = next((d for d in DEPTHS if _repeats(d) == repeats), None)
        if depth is None:
            raise _fail(src.path, f"repeats its blocks {repeats} times, which no depth multiple of the YAML gives")
        scale = "custom"
    head = layers[-1]
    cls_conv = _child(_child(head, "cv3", "ModuleList", "0", "Sequential", "2"), "conv")
    nc = int(_tensors(cls_conv)["weight"].shape[0]) if cls_conv is not None and _tensors(cls_conv) else 0
    if nc < 1:
        raise _fail(src.path, "has no class branch (SpikeDetect.cv3) to count the classes from")
    T = layers[0].get("T")
    if type(T) is not int or T < 1:
        raise _fail(src.path, f"has MS_GetT.T = {T!r} at layer 0 instead of a whole number of timesteps")
    levels = _levels(src)
    p5 = next(iter(_blocks(layers[RATIO_LAYER + 1])), None) if len(layers) > RATIO_LAYER + 1 else None
    mixer = [_child(p5, "conv1", "RepConv", "body", "Sequential", "2", "Sequential", str(i)) for i in (0, 1)]
    sizes = [_tensors(m).get("weight") if m is not None else None for m in mixer]
    if any(w is None or w.ndim != 4 or not w.shape[0] for w in sizes):
        raise _fail(src.path, f"has no re-parameterisable mixer in its P5 block (layer {RATIO_LAYER + 1})")
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


def _levels(src: Source) -> int:
    """D of their I-LIF, from the class of every neuron's quantiser (``MultiSpikeD``); one D for the whole model."""
    found = set()
    for _, m in walk(_child(src.model, "model")):
        if m.class_name == "mem_update":
            q = _child(m, "qtrick")
            found.add(q.class_name if q is not None else "none")
    levels = {int(c[len("MultiSpike") :]) for c in found if c.startswith("MultiSpike")}
    if not found:
        raise _fail(src.path, "has no I-LIF neurons (mem_update)")
    if len(found) != 1 or len(levels) != 1:
        raise _fail(src.path, f"mixes neuron quantisers ({', '.join(sorted(found)) or 'none'}); one D is supported")
    return levels.pop()


def _child(module: Inert | None, *path: str) -> Inert | None:
    """Follow ``name, class, name, class, ..., name`` through stand-in modules; None where the path breaks.

    ``_child(m, "conv1", "RepConv", "body")`` is ``m.conv1.body`` if ``m.conv1`` is a ``RepConv``.
    """
    for i, name in enumerate(path):
        if i % 2:
            if module is None or module.class_name != name:
                return None
            continue
        children = module.get("_modules") if isinstance(module, Inert) else None
        module = children.get(name) if isinstance(children, dict) else None
    return module if isinstance(module, Inert) else None


# --- mapping tensors -------------------------------------------------------------------------------------------------
class Mapping:
    """Their stand-in modules paired with ours; collects the state dict of our model and checks every detail.

    After :meth:`run`: ``state`` is our model's state dict (float32), ``sources`` maps each of our keys to the key of
    theirs it came from, ``bn_settings`` holds each BN's (eps, momentum), ``folded`` counts the folded biases.
    """

    def __init__(self, src: Source, model: DetectionModel) -> None:
        self.src, self.model = src, model
        self._ours = model.state_dict()
        self.state: dict[str, torch.Tensor] = {}
        self.sources: dict[str, str] = {}
        self.used: set[str] = set()
        self.bn_settings: dict[str, tuple[float, float]] = {}
        self.folded = 0
        self.layer = 0

    def fail(self, what: str) -> SpikeYOLOImportError:
        """The error for a difference found in the layer being mapped."""
        cls = _layer_class(self.src.layers[self.layer])
        return _fail(self.src.path, f"differs from snn_yolov8.yaml at layer {self.layer} ({cls}): {what}")

    def child(self, module: Inert, name: str, cls: str, tpath: str) -> tuple[Inert, str]:
        """Submodule ``name`` of ``module``, which must be of class ``cls``, and its dotted path."""
        found = _child(module, name)
        if found is None or found.class_name != cls:
            got = found.class_name if found is not None else "nothing"
            raise self.fail(f"{tpath}.{name} is {got}, expected {cls}")
        return found, f"{tpath}.{name}"

    def take(self, module: Inert, tpath: str, name: str) -> torch.Tensor | None:
        """Tensor ``name`` of a stand-in module (None if absent), marked as used."""
        tensor = _tensors(module).get(name)
        if tensor is not None:
            self.used.add(f"{tpath}.{name}")
        return tensor

    def neuron(self, module: Inert, name: str, tpath: str) -> None:
        """Require their I-LIF ``mem_update`` as submodule ``name`` (where ours has a neuron)."""
        self.child(module, name, "mem_update", tpath)

    def conv(self, theirs: Inert, tpath: str, ours: nn.Conv2d, opath: str, bias: str = "none") -> torch.Tensor | None:
        """Copy a conv's weight (and bias: ``none``, ``keep``, or ``fold``, which returns it for the next BN)."""
        for attr in ("stride", "padding", "dilation", "groups"):
            want, got = getattr(ours, attr), theirs.get(attr)
            if (tuple(got) if isinstance(got, (list, tuple)) else got) != want:
                raise self.fail(f"{tpath} has {attr} {got}, ours {want}")
        self.put(f"{opath}.weight", self.take(theirs, tpath, "weight"), f"{tpath}.weight")
        b = self.take(theirs, tpath, "bias")
        if (b is not None) != (bias != "none"):
            raise self.fail(f"{tpath} {'has' if b is not None else 'lacks'} a bias")
        if bias == "keep":
            self.put(f"{opath}.bias", b, f"{tpath}.bias")
        return b if bias == "fold" else None

    def bn(self, theirs: Inert, tpath: str, opath: str, fold: torch.Tensor | None = None) -> None:
        """Copy a BN; ``fold`` is a preceding conv bias b: running_mean - b (float64, then float32)."""
        values = {k: self.take(theirs, tpath, k) for k in BN_TENSORS}
        if fold is not None and values["running_mean"] is not None:
            values["running_mean"] = values["running_mean"].double() - fold.double()
            self.folded += 1
        for k, v in values.items():
            self.put(f"{opath}.{k}", v, f"{tpath}.{k}")
        self.bn_settings[opath] = (float(theirs.get("eps", 1e-5)), float(theirs.get("momentum", 0.1) or 0.1))

    def put(self, key: str, tensor: torch.Tensor | None, tkey: str) -> None:
        """Our tensor ``key`` from their tensor ``tkey``: present, same shape, our dtype."""
        target = self._ours.get(key)
        if tensor is None or target is None:
            raise self.fail(f"{tkey} is missing (our {key})" if tensor is None else f"our model has no {key}")
        if tuple(tensor.shape) != tuple(target.shape):
            raise self.fail(f"{tkey} has shape {tuple(tensor.shape)}, ours {tuple(target.shape)}")
        self.state[key] = tensor.to(target.dtype)
        self.sources[key] = tkey

    # blocks ----------------------------------------------------------------------------------------------------------
    def std_conv(self, theirs: Inert, tpath: str, ours: blocks.SpikeConv, opath: str) -> None:
        """``MS_StandardConv`` / ``SpikeConv``: neuron -> conv -> BN."""
        self.neuron(theirs, "lif", tpath)
        c, cp = self.child(theirs, "conv", "Conv2d", tpath)
        self.conv(c, cp, ours.synapse.conv, f"{opath}.synapse.conv")
        b, bp = self.child(theirs, "bn", "BatchNorm2d", tpath)
        self.bn(b, bp, f"{opath}.synapse.bn")

    def out_conv(self, theirs: Inert, tpath: str, ours: blocks.SpikeConv, opath: str) -> None:
        """``SpikeConvWithoutBN``: neuron -> conv with bias (head outputs)."""
        self.neuron(theirs, "lif", tpath)
        c, cp = self.child(theirs, "conv", "Conv2d", tpath)
        self.conv(c, cp, ours.synapse, f"{opath}.synapse", bias="keep")

    def sep(self, theirs: Inert, tpath: str, ours: blocks.SpikeSepConv, opath: str) -> None:
        """``SepConv``: neuron -> 1x1 -> BN, neuron -> depthwise -> BN, neuron -> SepRepConv -> BN."""
        for name in ("lif1", "lif2", "lif3"):
            self.neuron(theirs, name, tpath)
        for conv, bn, name in (("pwconv1", "bn1", "pw1"), ("dwconv2", "bn2", "dw")):
            c, cp = self.child(theirs, conv, "Conv2d", tpath)
            self.conv(c, cp, getattr(ours, name).synapse.conv, f"{opath}.{name}.synapse.conv")
            b, bp = self.child(theirs, bn, "BatchNorm2d", tpath)
            self.bn(b, bp, f"{opath}.{name}.synapse.bn")
        rep, rp = self.child(theirs, "pwconv3", "SepRepConv", tpath)
        b, bp = self.child(theirs, "bn3", "BatchNorm2d", tpath)
        self.chain(rep, rp, SEPREP_STEPS, (b, bp), ours.pw2.synapse, f"{opath}.pw2.synapse")

    def pad(self, theirs: Inert, tpath: str, chain: blocks.LinearChain, opath: str) -> None:
        """``BNAndPadLayer``: a BN whose output is padded with BN(0); ours pads zeros before it (equal in eval)."""
        if theirs.get("pad_pixels") != chain.k // 2:
            raise self.fail(f"{tpath} pads {theirs.get('pad_pixels')} pixels, ours {chain.k // 2}")
        b, bp = self.child(theirs, "bn", "BatchNorm2d", tpath)
        self.bn(b, bp, opath)

    def chain(
        self,
        theirs: Inert,
        tpath: str,
        steps: tuple[tuple[str, str, int], ...],
        bn: tuple[Inert, str],
        ours: blocks.LinearChain,
        opath: str,
    ) -> None:
        """A re-parameterisable conv of theirs (``steps``: sub-path, class, index in our chain) and the BN after it.

        Our chain is ``[ZeroPad2d, *their layers in order, BN]``, so the BN that follows theirs is our chain's last.
        """
        for sub, cls, j in steps:
            module, mpath, *names = theirs, tpath, *sub.split(".")
            for k, name in enumerate(names):
                module, mpath = self.child(module, name, cls if k == len(names) - 1 else "Sequential", mpath)
            if cls == "Conv2d":
                self.conv(module, mpath, ours[j], f"{opath}.{j}")
            elif cls == "BNAndPadLayer":
                self.pad(module, mpath, ours, f"{opath}.{j}")
            else:
                self.bn(module, mpath, f"{opath}.{j}")
        self.bn(*bn, f"{opath}.{len(ours) - 1}")

    def block(self, theirs: Inert, tpath: str, ours: nn.Module, opath: str) -> None:
        """One block of theirs onto ours, by class."""
        kind = theirs.class_name
        if kind == "MS_DownSampling":
            first = _child(theirs, "encode_lif") is None
            if first != ours.first:
                raise self.fail("the image-encoding layer (no neuron) is not the first")
            if not first:
                self.neuron(theirs, "encode_lif", tpath)
            conv, bn = (ours.conv.conv, f"{opath}.conv.bn") if first else (ours.conv.synapse.conv, None)
            c, cp = self.child(theirs, "encode_conv", "Conv2d", tpath)
            cpath = f"{opath}.conv.conv" if first else f"{opath}.conv.synapse.conv"
            b = self.conv(c, cp, conv, cpath, bias="fold")
            n, np_ = self.child(theirs, "encode_bn", "BatchNorm2d", tpath)
            self.bn(n, np_, bn or f"{opath}.conv.synapse.bn", fold=b)
        elif kind in ("MS_AllConvBlock", "MS_ConvBlock"):
            s, sp = self.child(theirs, "Conv", "SepConv", tpath)
            self.sep(s, sp, ours.sep, f"{opath}.sep")
            if kind == "MS_AllConvBlock":
                for name, mine in (("conv1", "mix1"), ("conv2", "mix2")):
                    c, cp = self.child(theirs, name, "MS_StandardConv", tpath)
                    self.std_conv(c, cp, getattr(ours, mine), f"{opath}.{mine}")
            else:
                for i, mine in (("1", "mix1"), ("2", "mix2")):
                    self.neuron(theirs, f"lif{i}", tpath)
                    r, rp = self.child(theirs, f"conv{i}", "RepConv", tpath)
                    bn = self.child(theirs, f"bn{i}", "BatchNorm2d", tpath)
                    self.chain(r, rp, REP_STEPS, bn, getattr(ours, mine).synapse, f"{opath}.{mine}.synapse")
        elif kind == "SpikeSPPF":
            pool, pp = self.child(theirs, "m", "MaxPool2d", tpath)
            for attr in ("kernel_size", "stride", "padding"):
                if pool.get(attr) != getattr(ours.pool, attr):
                    raise self.fail(f"{pp} has {attr} {pool.get(attr)}, ours {getattr(ours.pool, attr)}")
            for name in ("cv1", "cv2"):
                c, cp = self.child(theirs, name, "SpikeConv", tpath)
                self.std_conv(c, cp, getattr(ours, name), f"{opath}.{name}")
        elif kind == "MS_StandardConv":
            self.std_conv(theirs, tpath, ours, opath)
        elif kind == "Upsample":
            factor = theirs.get("scale_factor")
            factor = tuple(factor) if isinstance(factor, (list, tuple)) else (factor, factor)
            if theirs.get("mode") != ours.mode or tuple(map(float, factor[-2:])) != (float(ours.scale_factor),) * 2:
                raise self.fail(f"{tpath} upsamples by {factor} ({theirs.get('mode')}), ours by {ours.scale_factor}")
        elif kind == "SpikeDetect":
            self.head(theirs, tpath, ours, opath)
        elif kind != "Concat":
            raise self.fail(f"{tpath} is {kind}")

    def head(self, theirs: Inert, tpath: str, ours: nn.Module, opath: str) -> None:
        """``SpikeDetect``: per level two spiking 3x3 convs and a spiking 1x1 output conv with bias, box and class."""
        if theirs.get("reg_max") != ours.reg_max:
            raise self.fail(f"{tpath} has reg_max {theirs.get('reg_max')}, ours {ours.reg_max}")
        for name in ("cv2", "cv3"):
            levels, lp = self.child(theirs, name, "ModuleList", tpath)
            for i, branch in enumerate(getattr(ours, name)):
                seq, sp = self.child(levels, str(i), "Sequential", lp)
                for j in (0, 1):
                    c, cp = self.child(seq, str(j), "SpikeConv", sp)
                    self.std_conv(c, cp, branch[j], f"{opath}.{name}.{i}.{j}")
                c, cp = self.child(seq, "2", "SpikeConvWithoutBN", sp)
                self.out_conv(c, cp, branch[2], f"{opath}.{name}.{i}.2")
        dfl, dp = self.child(theirs, "dfl", "SpikeDFL", tpath)
        c, cp = self.child(dfl, "conv", "Conv2d", dp)
        self.conv(c, cp, ours.dfl.conv, f"{opath}.dfl.conv")

    def run(self) -> None:
        """Map every layer, then check that every tensor of theirs was used and every tensor of ours was given."""
        layers, ours = self.src.layers, self.model.model
        if len(layers) != len(ours) + 1 or _layer_class(layers[0]) != "MS_GetT":
            raise _fail(self.src.path, f"has {len(layers)} layers; snn_yolov8.yaml has {len(ours) + 1}, MS_GetT first")
        for j, mine in enumerate(ours):
            self.layer = i = j + 1
            theirs, kind = layers[i], LAYER_CLASSES.get(mine.type.rsplit(".", 1)[-1])
            if _layer_class(theirs) != kind:
                raise self.fail(f"expected {kind}")
            want = mine.f if isinstance(mine.f, int) else list(mine.f)
            shifted = [x if x < 0 else x + 1 for x in ([want] if isinstance(want, int) else want)]
            got = theirs.get("f")
            if (got if isinstance(got, list) else [got]) != shifted:
                raise self.fail(f"its input comes from {got}, expected {shifted[0] if len(shifted) == 1 else shifted}")
            theirs_blocks, mine_blocks = _blocks(theirs), (list(mine) if isinstance(mine, nn.Sequential) else [mine])
            if len(theirs_blocks) != len(mine_blocks):
                raise self.fail(f"{len(theirs_blocks)} blocks, ours {len(mine_blocks)}")
            for k, (t, o) in enumerate(zip(theirs_blocks, mine_blocks, strict=True)):
                suffix = f".{k}" if isinstance(mine, nn.Sequential) else ""
                self.block(t, f"model.{i}{suffix}", o, f"model.{j}{suffix}")
        theirs_keys = _state_keys(_child(self.src.model, "model"), "model")
        if unused := sorted(theirs_keys - self.used):
            raise _fail(self.src.path, f"has tensors snn_yolov8.yaml does not (e.g. {unused[0]})")
        if missing := sorted(set(self._ours) - set(self.state)):
            raise _fail(self.src.path, f"gives no value for our {missing[0]}")


# --- our side --------------------------------------------------------------------------------------------------------
def _cfg_path(neuron: str, cfg: str | Path | None) -> Path:
    if cfg is not None:
        return Path(cfg)
    if neuron not in CONFIGS:
        raise SpikeYOLOImportError(f"--neuron {neuron!r} is not known: use one of {', '.join(CONFIGS)}.")
    return CFG_DIR / CONFIGS[neuron]


def ilif_config(T: int, levels: int) -> NeuronConfig:
    """SpikeYOLO's I-LIF in our terms: unary, D = ``levels``, no range alignment, leak 0.25, reset detached."""
    return NeuronConfig(T=T, coding="unary", levels=levels, scale=1, beta=0.25, detach_reset=True)


def _same_neuron(a: NeuronConfig, b: NeuronConfig) -> bool:
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


# --- writing ---------------------------------------------------------------------------------------------------------
def _plain(value: Any, depth: int = 0) -> Any:
    """JSON-like data for metadata: stand-ins become their class path, tensors their values if short."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict) and depth < 3:
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and depth < 3:
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, torch.Tensor) and value.numel() <= 16:
        return value.tolist()
    return f"<{origin(value) or type(value).__name__}>"


def save_checkpoint(model: DetectionModel, dst: str | Path, train_args: dict, extra: dict) -> None:
    """Write ``model`` (float32) the way Ultralytics' ``Model.save`` does, plus ``extra`` keys, atomically.

    The file appears whole or not at all: written beside ``dst`` under a temporary name, then renamed over it.
    """
    dst = Path(dst)
    model.args = {**DEFAULT_CFG_DICT, **train_args}
    ckpt = {
        "date": datetime.now().astimezone().isoformat(),
        "version": ultralytics.__version__,
        "license": "AGPL-3.0 License (https://ultralytics.com/license)",
        "docs": "https://docs.ultralytics.com",
        "ema": None,
        "model": model.float().eval(),
        "modelopt": None,
        "train_args": train_args,
        **extra,
    }
    dst.parent.mkdir(parents=True, exist_ok=True)
    with replacing(dst) as tmp:
        torch.save(ckpt, tmp)


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
    cfg_path = _cfg_path(neuron, cfg)
    source = read_source(src)
    try:
        template = tasks.yaml_model_load(cfg_path) if cfg_path.is_file() else {}
        shape = infer_shape(source, template)
        d = target_yaml(cfg_path, shape)
        model = build_target(d)
        mapping = Mapping(source, model)
        mapping.run()
    except SpikeYOLOImportError:
        raise
    except (AttributeError, TypeError, KeyError, IndexError, ValueError) as e:  # a structure none of the checks foresaw
        raise _fail(src, f"has an unexpected structure ({type(e).__name__}: {e})") from e
    model.load_state_dict(mapping.state, strict=True)
    for name, (eps, momentum) in mapping.bn_settings.items():
        bn = model.get_submodule(name)
        bn.eps, bn.momentum = eps, momentum
    stride = source.layers[-1].get("stride")
    if isinstance(stride, torch.Tensor) and not torch.equal(stride.float(), model.stride.float()):
        raise _fail(src, f"has head strides {stride.tolist()}, ours {model.stride.tolist()}")
    model.names = shape.names
    config = NeuronConfig.from_mapping(d["neuron"])
    targs = source.ckpt.get("train_args") if isinstance(source.ckpt.get("train_args"), dict) else {}
    imgsz, data = targs.get("imgsz"), targs.get("data")
    train_args = {"task": "detect", "imgsz": imgsz if type(imgsz) is int else 640, "single_cls": False}
    if isinstance(data, str):  # what `yolo val model=DST.pt` uses when no data= is given, as for any checkpoint
        train_args["data"] = data
    report = ImportReport(
        source=src.name,
        sha256=source.sha256,
        source_version=str(source.ckpt.get("version")) if source.ckpt.get("version") is not None else None,
        entry=source.entry,
        shape=shape,
        tensors=len(mapping.used),
        folded_biases=mapping.folded,
        cfg=cfg_path.name,
        neuron=config.to_mapping(),
        equivalent=_same_neuron(config, ilif_config(shape.T, shape.levels)),
        output=str(dst),
    )
    provenance = {
        **{k: v for k, v in asdict(report).items() if k != "output"},
        "importer": f"spikeyolo_ibra {__version__}",
        "source_date": _plain(source.ckpt.get("date")),
        "source_epoch": _plain(source.ckpt.get("epoch")),
        "source_train_args": _plain(targs),
    }
    save_checkpoint(model, dst, train_args, {"spikeyolo_import": provenance})
    return report
