"""The spike-driven runtime: every neuron -> synapse pair of a fused model runs on binary planes.

A :class:`SpikeDrivenSynapse` replaces each :class:`~spikeyolo_ibra.blocks.SpikingSynapse`. It keeps the same neuron
(so leak and reset between logical steps are unchanged), expands its integer codes q into P binary planes b_k with
weights w_k (:mod:`.encoding`), checks that only 0/1 reaches the conv, and integrates:

    W * (q / N) + c  =  sum_k w_k * (W * b_k)  +  c

with the bias c (conv bias and folded BN shift) added once per logical step. ``batched`` folds the P planes into the
batch (one conv call); ``sequential`` sends one plane at a time, most significant first (v <- 2 v + W * b_k, then
v / N; unary: v <- v + W * b_j, then v / N), so only one plane is alive at a time. An ``accumulator`` dtype (e.g.
float64 for a float32 model) runs the plane convs and the sum in that dtype and casts the result back once.
"""

from __future__ import annotations

import copy
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn
from ultralytics.nn.modules import Conv

from ...blocks import FactoredChain, LinearChain, SpikingSynapse, fold_conv_bn
from ...errors import SpikeYoloError
from ...neuron import IBLIF
from .encoding import encode, plane, plane_weights

__all__ = (
    "ACCUMULATE",
    "NotSpikingModelError",
    "SpikeDrivenSynapse",
    "SynapseObserver",
    "require_binary",
    "synapse_conv",
    "to_spike_driven",
)

ACCUMULATE = ("batched", "sequential")
PARSE_ATTRS = ("f", "i", "type", "np")  # what parse_model attaches to each top-level layer


class NotSpikingModelError(SpikeYoloError, ValueError):
    """The model holds no spiking neuron -> synapse pair to unroll."""


def synapse_conv(synapse: nn.Module) -> nn.Conv2d:
    """The single biased conv a synapse equals in eval mode: what its binary planes are integrated through.

    A re-parameterisable chain (training or factored form) becomes its dense k x k conv; an Ultralytics ``Conv`` has
    its BN folded (fused already or not); a plain conv gets a zero bias if it has none. The model is not changed.
    """
    if isinstance(synapse, (LinearChain, FactoredChain)):
        return synapse.dense()
    if isinstance(synapse, Conv) and isinstance(synapse.act, nn.Identity):
        return fold_conv_bn(synapse.conv, synapse.bn) if hasattr(synapse, "bn") else synapse_conv(synapse.conv)
    if isinstance(synapse, nn.Conv2d):
        if synapse.bias is not None:
            return synapse
        conv = copy.deepcopy(synapse)
        conv.bias = nn.Parameter(torch.zeros(conv.out_channels, dtype=conv.weight.dtype, device=conv.weight.device))
        return conv
    raise ValueError(f"{type(synapse).__name__} is not a conv, a Conv with BN or a re-parameterisable chain.")


BINARY_ONLY = "a non-binary tensor reached a synaptic layer in spike mode"


def require_binary(b: torch.Tensor) -> None:
    """Fail unless every element of b is 0 or 1 (the spike-driven contract of a synaptic layer).

    On the CPU: AssertionError at once. Elsewhere the check is queued on the device (``torch._assert_async``), so the
    contract is enforced without a host synchronisation per layer.
    """
    binary = ((b == 0) | (b == 1)).all()
    if b.device.type != "cpu":
        torch._assert_async(binary, BINARY_ONLY)
    elif not bool(binary):
        raise AssertionError(BINARY_ONLY)


class SynapseObserver(Protocol):
    """What a :class:`SpikeDrivenSynapse` tells an observer (its ``stats``): the codes it sent, the planes it fed."""

    def update_codes(self, q: torch.Tensor, conv: nn.Conv2d, out_hw: tuple[int, int]) -> None:
        """The codes q (T * B, C, H, W) of one call, entering ``conv``, whose output is ``out_hw``."""

    def update_plane(self, b: torch.Tensor, conv: nn.Conv2d) -> None:
        """Binary planes b (planes folded into the batch) as they reach ``conv``."""


class SpikeDrivenSynapse(nn.Module):
    """Neuron -> binary planes -> bias-free conv per plane -> weighted accumulation -> bias once.

    ``stats``, when set (a :class:`SynapseObserver`, e.g. a measurement's per-layer statistics), sees every call.
    """

    def __init__(
        self, neuron: IBLIF, conv: nn.Conv2d, accumulate: str = "batched", accumulator: torch.dtype | None = None
    ) -> None:
        """Unroll ``neuron`` followed by the fused ``conv``; ``accumulator`` defaults to the conv's dtype."""
        super().__init__()
        if accumulate not in ACCUMULATE:
            raise ValueError(f"accumulate={accumulate!r} is not one of {', '.join(ACCUMULATE)}.")
        self.neuron, self.conv, self.accumulate, self.accumulator = neuron, conv, accumulate, accumulator
        self.stats: SynapseObserver | None = None

    def extra_repr(self) -> str:
        """Show the accumulation mode."""
        return f"accumulate={self.accumulate}, accumulator={self.accumulator}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spike-driven output sum_k w_k * (W * b_k) + c for the planes b_k of the neuron's codes of x."""
        q = self.neuron.codes(x)
        dtype = self.accumulator or x.dtype
        v = self._batched(q, dtype) if self.accumulate == "batched" else self._sequential(q, dtype)
        y = (v + self.conv.bias.to(dtype).view(1, -1, 1, 1)).to(x.dtype)
        if self.stats is not None:
            self.stats.update_codes(q, self.conv, (y.shape[-2], y.shape[-1]))
        return y

    def _plane_conv(self, b: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """W * b without bias, for binary planes b (planes folded into the batch)."""
        require_binary(b)
        if self.stats is not None:
            self.stats.update_plane(b, self.conv)
        c = self.conv
        return F.conv2d(b.to(dtype), c.weight.to(dtype), None, c.stride, c.padding, c.dilation, c.groups)

    def _batched(self, q: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """All P planes in one conv call, then sum_k w_k * (W * b_k)."""
        config = self.neuron.config
        planes = encode(q, config)
        y = self._plane_conv(planes.flatten(0, 1), dtype).unflatten(0, (config.virtual_steps, -1))
        weights = plane_weights(config, dtype, y.device, self.neuron.unit).view(-1, *([1] * (y.dim() - 1)))
        return (y * weights).sum(0)

    def _sequential(self, q: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """One plane at a time, most significant first: v <- 2 v + W * b_k (binary) or v <- v + W * b_j, then v / N."""
        config = self.neuron.config
        doubling = 2.0 if config.coding == "binary" else 1.0
        v = None
        for k in reversed(range(config.virtual_steps)):
            wb = self._plane_conv(plane(q, k, config), dtype)
            v = wb if v is None else doubling * v + wb
        return v / self.neuron.unit


def to_spike_driven(model: nn.Module, accumulate: str = "batched", accumulator: torch.dtype | None = None) -> nn.Module:
    """A copy of ``model`` in which every spiking neuron -> synapse pair runs spike-driven.

    The runtime builds the spike-driven graph itself, from a fused model (either chain form) or an unfused one: every
    synapse becomes the one dense conv it equals (:func:`synapse_conv`), because a synapse must receive binary planes
    and a re-parameterisable chain has no neuron inside. Energy and SOPs are counted on this graph.
    """
    spiking = copy.deepcopy(model)
    pairs = [
        name for name, m in spiking.named_modules() if isinstance(m, SpikingSynapse) and isinstance(m.neuron, IBLIF)
    ]
    if not pairs:
        raise NotSpikingModelError("the model has no spiking neurons (IBLIF) before its synapses.")
    for name in pairs:
        parent_name, _, child = name.rpartition(".")
        parent = spiking.get_submodule(parent_name)
        old = getattr(parent, child)
        new = SpikeDrivenSynapse(old.neuron, synapse_conv(old.synapse), accumulate, accumulator)
        for key in PARSE_ATTRS:  # a top-level layer keeps the bookkeeping Ultralytics' forward reads
            if hasattr(old, key):
                setattr(new, key, getattr(old, key))
        setattr(parent, child, new)
    return spiking
