"""Spiking models train in float32, whatever ``amp=`` says: half-precision membranes pick the wrong integer codes.

Ultralytics trains with AMP by default on a GPU (``amp=True``: float16 under a GradScaler; ``amp=bf16``: bfloat16).
Under autocast every synapse (conv, BN, residual sum) computes the membrane u in half precision, and the neuron's code
q = round(clip(N u, 0, 2^K - 1)) inherits u's rounding: near D = 5.11 a float16 u is a multiple of 2^-8, 0.39 of
N = 100's levels, a bfloat16 u a multiple of 2^-5, 3.1 levels. The neuron computes in float32, but what it rounds is
already off. Measured (docs/neuron.md, "Under mixed precision"): with random calibrated weights only 55 % (float16) and
50 % (bfloat16) of IBRA's codes equal float32's (``benchmarks/amp_codes.py``), and on an H200 IBRA-SpikeYOLO-n trained
with AMP ended at pycocotools mAP50 0.764 against 0.913 in float32 (one seed each, equal 3-minute budgets). So:

- a model with integer-coding neurons (IBRA-LIF, I-LIF) trains in float32: AMP asked for (the GPU default, or
  ``amp=bf16``) becomes float32 with one warning line saying so, and Ultralytics' AMP check (which downloads a model)
  is skipped for it;
- the ANN twin (ReLU) and stock models are untouched: they keep AMP.

To measure AMP on a spiking model anyway, remove :func:`keep_float32` from the model's callbacks
(``model.callbacks["on_pretrain_routine_end"].remove(keep_float32)``), as ``benchmarks/accuracy.py --force-amp`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from ultralytics.utils import LOGGER

from .neuron import IBLIF

__all__ = ("FLOAT32_NOTICE", "keep_float32", "needs_float32", "skip_amp_check")

FLOAT32_NOTICE = (
    "spikeyolo_ibra: AMP requested, training this spiking model in float32 instead: half-precision membranes "
    "round its integer codes to the wrong levels (docs/neuron.md, 'Under mixed precision')."
)


def needs_float32(model: Any) -> bool:
    """True for a model with integer-coding neurons (IBRA-LIF, I-LIF); False for the ANN twin and stock models."""
    model = getattr(model, "module", model)  # DDP wraps the model
    return isinstance(model, nn.Module) and any(isinstance(m, IBLIF) for m in model.modules())


def keep_float32(trainer: Any) -> None:
    """``on_pretrain_routine_end``: a spiking model whose trainer chose AMP (float16 or bfloat16) trains in float32.

    Runs in every process of a multi-GPU run (each decides from its own copy of the model, so all agree). It undoes
    what the trainer's setup derived from ``amp``: the autocast switch, the argument (read again for bfloat16 at each
    step and by the validator) and the GradScaler.
    """
    if not (trainer.amp or trainer.args.amp == "bf16") or not needs_float32(trainer.model):
        return
    LOGGER.warning(FLOAT32_NOTICE)
    trainer.amp = False
    trainer.args.amp = False
    trainer.scaler = torch.amp.GradScaler("cuda", enabled=False)


def skip_amp_check(stock: Callable[..., bool]) -> Callable[..., bool]:
    """Wrap Ultralytics' ``check_amp``: a spiking model answers False at once (no download, no half-precision trial)."""

    def check_amp(model: Any, *args: Any, **kwargs: Any) -> bool:
        if needs_float32(model):
            LOGGER.warning(FLOAT32_NOTICE)
            return False
        return stock(model, *args, **kwargs)

    check_amp.spikeyolo = True
    return check_amp
