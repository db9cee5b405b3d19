"""What ``fuse()`` does to a spiking model for integer-mode speed: fewer, cheaper operations, equal in eval mode.

Ultralytics calls ``model.fuse()`` before ``yolo val``, ``predict`` and ``export``. For our models it runs, in order:

1. :func:`fuse_synapses`: every re-parameterisable chain (1x1 -> BN -> depthwise -> 1x1 -> BN -> BN) becomes its
   **factored** form, BN folded and one bias (:meth:`~spikeyolo_ibra.blocks.LinearChain.factored`), or one dense
   k x k conv: ``with chains("dense"): model.fuse()`` (or :func:`set_chains`; on the command line
   ``SPIKEYOLO_CHAINS=dense``, read only where nothing was set). At scale n factored has 13.2M parameters where dense
   has 34.5M (``benchmarks/model_sizes.py``, docs/architecture.md); it is the faster form on the CPU
   (docs/benchmarks.md).
2. :func:`fold_alignment_scale`: membranes are carried multiplied by the range-alignment scale N. The encoder's and
   every synapse's constant terms (BN shift, bias) are multiplied by N, the head's output convs divide their weights
   by N, and each neuron, now :attr:`~spikeyolo_ibra.neuron.IBLIF.prescaled`, computes q = round(clip(u', 0, Q)) and
   emits q: two elementwise passes instead of four (N u, clip, round, / N). Since W q + N b = N (W (q / N) + b), and
   max-pooling, upsampling, concatenation and residual sums commute with a positive scale, every code is the same.
3. Every BN of our synapses and of the encoder is folded into its conv (float64 composition, any dtype: Ultralytics'
   own helper changed between releases), then Ultralytics' ``fuse()`` runs and finds nothing of ours left to fold.

Spike-driven inference does not need any of this: :func:`spikeyolo_ibra.spike.to_spike_driven` builds its own graph
(every synapse one dense conv fed by binary planes) from a fused or an unfused model, so energy and SOP counts do not
depend on the form chosen here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from ultralytics.nn.modules import Conv

from .blocks import FactoredChain, SpikingSynapse, fold_conv_bn
from .errors import SpikeYoloError
from .head import SpikeDetect
from .neuron import IBLIF

__all__ = (
    "CHAINS_ENV",
    "CHAIN_FORMS",
    "ChainFormError",
    "chain_form",
    "chains",
    "fold_alignment_scale",
    "fuse_for_speed",
    "fuse_synapses",
    "set_chains",
)

CHAIN_FORMS = ("factored", "dense")
CHAINS_ENV = "SPIKEYOLO_CHAINS"
_chosen: str | None = None  # set_chains() / chains(); None: the command line's $SPIKEYOLO_CHAINS, else factored


class ChainFormError(SpikeYoloError, ValueError):
    """A chain form other than ``factored`` or ``dense``."""


def _checked(form: str, source: str) -> str:
    form = form.strip().lower()
    if form not in CHAIN_FORMS:
        raise ChainFormError(f"{source}={form!r} is invalid: use {' or '.join(CHAIN_FORMS)}.")
    return form


def set_chains(form: str | None) -> None:
    """Make ``fuse()`` build chains in ``form`` (``factored`` or ``dense``) from now on; None: back to the default."""
    global _chosen
    _chosen = None if form is None else _checked(form, "chains")


@contextmanager
def chains(form: str) -> Iterator[None]:
    """Use chain ``form`` inside a ``with`` block and the previous one after it.

    ``with chains("dense"): model.fuse()`` builds the one-conv chains the spike runtime unrolls.
    """
    previous = _chosen
    set_chains(form)
    try:
        yield
    finally:
        set_chains(previous)


def chain_form() -> str:
    """The chain form ``fuse()`` uses: the one set, else ``$SPIKEYOLO_CHAINS`` (the command line's), else factored."""
    if _chosen is not None:
        return _chosen
    return _checked(os.environ.get(CHAINS_ENV, "") or "factored", CHAINS_ENV)


def _fold_conv(conv: Conv) -> None:
    """Fold an Ultralytics ``Conv``'s BN into its conv in place, as Ultralytics' own ``fuse()`` leaves it."""
    if hasattr(conv, "bn"):
        conv.conv = fold_conv_bn(conv.conv, conv.bn)
        del conv.bn
        conv.forward = conv.forward_fuse


def fuse_synapses(model: nn.Module, chains: str | None = None) -> nn.Module:
    """Fuse our modules of ``model`` in place: chains into ``chains`` form (default :func:`chain_form`), BNs folded.

    The BN of each ``Conv`` in our synapses and the encoder is folded with :func:`~spikeyolo_ibra.blocks.fold_conv_bn`
    (float64 composition, any dtype), so Ultralytics' own folding finds nothing left of ours to fold.
    """
    chains = chains or chain_form()
    for m in list(model.modules()):
        if isinstance(m, SpikingSynapse):
            m.fuse_synapse(chains)
            if isinstance(m.synapse, Conv):
                _fold_conv(m.synapse)
        elif getattr(m, "encodes", False):
            _fold_conv(m.conv)
    return model


@torch.no_grad()
def _scale_constants(synapse: nn.Module, n: float) -> None:
    """Multiply what a synapse adds (BN shift, bias) by n: its output becomes n times larger for n times the input."""
    if isinstance(synapse, Conv):
        if hasattr(synapse, "bn"):  # BN(W x) with x -> n x: keep the scale, multiply mean and shift by n
            synapse.bn.running_mean.mul_(n)
            synapse.bn.bias.mul_(n)
            return
        synapse = synapse.conv
    if isinstance(synapse, FactoredChain):
        synapse = synapse[-1]  # the one bias sits on the last conv
    if not (isinstance(synapse, nn.Conv2d) and synapse.bias is not None):
        raise TypeError(f"cannot fold the alignment scale into {type(synapse).__name__}: fuse its chain first.")
    synapse.bias.mul_(n)


@torch.no_grad()
def _scale_output(conv: Conv, n: float) -> None:
    """Multiply a real-input ``Conv``'s output by n (the encoder: image in, membrane out)."""
    if hasattr(conv, "bn"):
        conv.bn.weight.mul_(n)
        conv.bn.bias.mul_(n)
    else:
        conv.conv.weight.mul_(n)
        conv.conv.bias.mul_(n)


def _head_outputs(model: nn.Module) -> set[int]:
    """The last spiking conv of every head branch: codes in, logits out (they must not carry N)."""
    ids = set()
    for head in (m for m in model.modules() if isinstance(m, SpikeDetect)):
        for branches in (head.cv2, head.cv3, getattr(head, "one2one_cv2", None), getattr(head, "one2one_cv3", None)):
            ids |= {id(branch[-1]) for branch in branches or ()}
    return ids


@torch.no_grad()
def fold_alignment_scale(model: nn.Module) -> nn.Module:
    """Carry membranes multiplied by N so that each neuron needs two elementwise passes (see the module docstring).

    Idempotent; models without IB-LIF neurons (the ANN twin, stock models) are returned unchanged.
    """
    neurons = [m for m in model.modules() if isinstance(m, IBLIF)]
    if not neurons or all(n.prescaled for n in neurons):
        return model
    scales = {float(n.config.scale) for n in neurons}
    if any(n.prescaled for n in neurons) or len(scales) != 1:
        raise ValueError("the model mixes neuron scales or prescaled neurons: fold from one unfused model.")
    n = scales.pop()
    outputs = _head_outputs(model)
    for m in model.modules():
        if getattr(m, "encodes", False):
            _scale_output(m.conv, n)
        elif isinstance(m, SpikingSynapse) and isinstance(m.neuron, IBLIF):
            if id(m) in outputs:
                m.synapse.weight.div_(n)  # logits: W (q / N) + b
            else:
                _scale_constants(m.synapse, n)
            m.neuron.prescaled = True
    return model


def fuse_for_speed(model: nn.Module, chains: str | None = None) -> nn.Module:
    """Steps 1 and 2 of the module docstring, in place; ``model.fuse()`` runs them before Ultralytics' BN folding."""
    return fold_alignment_scale(fuse_synapses(model, chains))
