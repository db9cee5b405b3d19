"""Mapping SpikeYOLO's tensors onto our model, block by block, with every detail checked.

Layer ``i`` of theirs is our layer ``i - 1``: their layer 0 is ``MS_GetT``, which only repeats the image T times (our
first ``SpikeDownsample`` does that after its conv). The table :data:`BLOCKS` pairs each of our blocks with theirs and
the function that maps it. Two things are not a renaming:

- their ``MS_DownSampling`` convs carry a bias b; our downsampling conv has none. It is folded into the BN that
  follows, exactly in eval and in train mode (batch statistics subtract any constant):
  ``BN(Wx + b; mu) = BN(Wx; mu - b)``, so ``running_mean <- running_mean - b`` (computed in float64, stored float32);
- their re-parameterisable convs (``RepConv``, ``SepRepConv``: a BN whose output is padded with BN(0)) become our
  ``LinearChain`` ``[ZeroPad2d, ..., BN]``, which pads zeros before that BN: equal in eval mode.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from ultralytics.nn.tasks import DetectionModel

from .. import blocks
from .read import (
    SpikeYOLOImportError,
    TheirCheckpoint,
    fail,
    layer_blocks,
    layer_class,
    own_tensors,
    state_keys,
    submodule,
)
from .safe_pickle import Inert

__all__ = ("BLOCKS", "StateMapper")

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


class StateMapper:
    """Their stand-in modules paired with ours; collects the state dict of our model and checks every detail.

    After :meth:`run`: ``state`` is our model's state dict (float32), ``sources`` maps each of our keys to the key of
    theirs it came from, ``bn_settings`` holds each BN's (eps, momentum), ``folded`` counts the folded biases.
    """

    def __init__(self, src: TheirCheckpoint, model: DetectionModel) -> None:
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
        cls = layer_class(self.src.layers[self.layer])
        return fail(self.src.path, f"differs from snn_yolov8.yaml at layer {self.layer} ({cls}): {what}")

    def child(self, module: Inert, name: str, cls: str, tpath: str) -> tuple[Inert, str]:
        """Submodule ``name`` of ``module``, which must be of class ``cls``, and its dotted path."""
        found = submodule(module, name)
        if found is None or found.class_name != cls:
            got = found.class_name if found is not None else "nothing"
            raise self.fail(f"{tpath}.{name} is {got}, expected {cls}")
        return found, f"{tpath}.{name}"

    def take(self, module: Inert, tpath: str, name: str) -> torch.Tensor | None:
        """Tensor ``name`` of a stand-in module (None if absent), marked as used."""
        tensor = own_tensors(module).get(name)
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

    # their building blocks, shared by several of the block functions below ------------------------------------------
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

    def run(self) -> None:
        """Map every layer, then check that every tensor of theirs was used and every tensor of ours was given."""
        layers, ours = self.src.layers, self.model.model
        if len(layers) != len(ours) + 1 or layer_class(layers[0]) != "MS_GetT":
            raise fail(self.src.path, f"has {len(layers)} layers; snn_yolov8.yaml has {len(ours) + 1}, MS_GetT first")
        for j, mine in enumerate(ours):
            self.layer = i = j + 1
            theirs = layers[i]
            kind, map_block = BLOCKS.get(mine.type.rsplit(".", 1)[-1], (None, None))
            if layer_class(theirs) != kind:
                raise self.fail(f"expected {kind}")
            want = mine.f if isinstance(mine.f, int) else list(mine.f)
            shifted = [x if x < 0 else x + 1 for x in ([want] if isinstance(want, int) else want)]
            got = theirs.get("f")
            if (got if isinstance(got, list) else [got]) != shifted:
                raise self.fail(f"its input comes from {got}, expected {shifted[0] if len(shifted) == 1 else shifted}")
            theirs_blocks, mine_blocks = (
                layer_blocks(theirs),
                (list(mine) if isinstance(mine, nn.Sequential) else [mine]),
            )
            if len(theirs_blocks) != len(mine_blocks):
                raise self.fail(f"{len(theirs_blocks)} blocks, ours {len(mine_blocks)}")
            for k, (t, o) in enumerate(zip(theirs_blocks, mine_blocks, strict=True)):
                suffix = f".{k}" if isinstance(mine, nn.Sequential) else ""
                if t.class_name != kind:
                    raise self.fail(f"model.{i}{suffix} is {t.class_name}")
                map_block(self, t, f"model.{i}{suffix}", o, f"model.{j}{suffix}")
        theirs_keys = state_keys(submodule(self.src.model, "model"), "model")
        if unused := sorted(theirs_keys - self.used):
            raise fail(self.src.path, f"has tensors snn_yolov8.yaml does not (e.g. {unused[0]})")
        if missing := sorted(set(self._ours) - set(self.state)):
            raise fail(self.src.path, f"gives no value for our {missing[0]}")


# --- one function per block of theirs (the table BLOCKS says which) ------------------------------------------------
def downsampling(m: StateMapper, theirs: Inert, tpath: str, ours: blocks.SpikeDownsample, opath: str) -> None:
    """``MS_DownSampling``: (neuron ->) conv with bias -> BN; the bias folds into the BN, our conv has none."""
    first = submodule(theirs, "encode_lif") is None
    if first != ours.first:
        raise m.fail("the image-encoding layer (no neuron) is not the first")
    if not first:
        m.neuron(theirs, "encode_lif", tpath)
    conv, bn = (ours.conv.conv, f"{opath}.conv.bn") if first else (ours.conv.synapse.conv, None)
    c, cp = m.child(theirs, "encode_conv", "Conv2d", tpath)
    cpath = f"{opath}.conv.conv" if first else f"{opath}.conv.synapse.conv"
    b = m.conv(c, cp, conv, cpath, bias="fold")
    n, np_ = m.child(theirs, "encode_bn", "BatchNorm2d", tpath)
    m.bn(n, np_, bn or f"{opath}.conv.synapse.bn", fold=b)


def all_conv_block(m: StateMapper, theirs: Inert, tpath: str, ours: blocks.SpikeAllConvBlock, opath: str) -> None:
    """``MS_AllConvBlock``: ``SepConv``, then two ``MS_StandardConv`` mixers."""
    s, sp = m.child(theirs, "Conv", "SepConv", tpath)
    m.sep(s, sp, ours.sep, f"{opath}.sep")
    for name, mine in (("conv1", "mix1"), ("conv2", "mix2")):
        c, cp = m.child(theirs, name, "MS_StandardConv", tpath)
        m.std_conv(c, cp, getattr(ours, mine), f"{opath}.{mine}")


def conv_block(m: StateMapper, theirs: Inert, tpath: str, ours: blocks.SpikeConvBlock, opath: str) -> None:
    """``MS_ConvBlock``: ``SepConv``, then two mixers of neuron -> ``RepConv`` -> BN."""
    s, sp = m.child(theirs, "Conv", "SepConv", tpath)
    m.sep(s, sp, ours.sep, f"{opath}.sep")
    for i, mine in (("1", "mix1"), ("2", "mix2")):
        m.neuron(theirs, f"lif{i}", tpath)
        r, rp = m.child(theirs, f"conv{i}", "RepConv", tpath)
        bn = m.child(theirs, f"bn{i}", "BatchNorm2d", tpath)
        m.chain(r, rp, REP_STEPS, bn, getattr(ours, mine).synapse, f"{opath}.{mine}.synapse")


def sppf(m: StateMapper, theirs: Inert, tpath: str, ours: blocks.SpikeSPPF, opath: str) -> None:
    """``SpikeSPPF``: two spiking convs around the same max-pooling."""
    pool, pp = m.child(theirs, "m", "MaxPool2d", tpath)
    for attr in ("kernel_size", "stride", "padding"):
        if pool.get(attr) != getattr(ours.pool, attr):
            raise m.fail(f"{pp} has {attr} {pool.get(attr)}, ours {getattr(ours.pool, attr)}")
    for name in ("cv1", "cv2"):
        c, cp = m.child(theirs, name, "SpikeConv", tpath)
        m.std_conv(c, cp, getattr(ours, name), f"{opath}.{name}")


def upsample(m: StateMapper, theirs: Inert, tpath: str, ours: nn.Upsample, opath: str) -> None:
    """``Upsample``: no tensors; the same mode and factor."""
    factor = theirs.get("scale_factor")
    factor = tuple(factor) if isinstance(factor, (list, tuple)) else (factor, factor)
    if theirs.get("mode") != ours.mode or tuple(map(float, factor[-2:])) != (float(ours.scale_factor),) * 2:
        raise m.fail(f"{tpath} upsamples by {factor} ({theirs.get('mode')}), ours by {ours.scale_factor}")


def concat(m: StateMapper, theirs: Inert, tpath: str, ours: nn.Module, opath: str) -> None:
    """``Concat``: no tensors, nothing to compare (its inputs are checked with the layer's ``f``)."""


def head(m: StateMapper, theirs: Inert, tpath: str, ours: nn.Module, opath: str) -> None:
    """``SpikeDetect``: per level two spiking 3x3 convs and a spiking 1x1 output conv with bias, box and class."""
    if theirs.get("reg_max") != ours.reg_max:
        raise m.fail(f"{tpath} has reg_max {theirs.get('reg_max')}, ours {ours.reg_max}")
    for name in ("cv2", "cv3"):
        levels, lp = m.child(theirs, name, "ModuleList", tpath)
        for i, branch in enumerate(getattr(ours, name)):
            seq, sp = m.child(levels, str(i), "Sequential", lp)
            for j in (0, 1):
                c, cp = m.child(seq, str(j), "SpikeConv", sp)
                m.std_conv(c, cp, branch[j], f"{opath}.{name}.{i}.{j}")
            c, cp = m.child(seq, "2", "SpikeConvWithoutBN", sp)
            m.out_conv(c, cp, branch[2], f"{opath}.{name}.{i}.2")
    dfl, dp = m.child(theirs, "dfl", "SpikeDFL", tpath)
    c, cp = m.child(dfl, "conv", "Conv2d", dp)
    m.conv(c, cp, ours.dfl.conv, f"{opath}.dfl.conv")


BlockMap = Callable[[StateMapper, Inert, str, nn.Module, str], None]
#: Our top-level block -> their class at the next layer index (their layer 0 is ``MS_GetT``), and the function that maps
#: one block of theirs onto ours.
BLOCKS: dict[str, tuple[str, BlockMap]] = {
    "SpikeDownsample": ("MS_DownSampling", downsampling),
    "SpikeAllConvBlock": ("MS_AllConvBlock", all_conv_block),
    "SpikeConvBlock": ("MS_ConvBlock", conv_block),
    "SpikeSPPF": ("SpikeSPPF", sppf),
    "SpikeConv": ("MS_StandardConv", StateMapper.std_conv),
    "Upsample": ("Upsample", upsample),
    "Concat": ("Concat", concat),
    "SpikeDetect": ("SpikeDetect", head),
}
