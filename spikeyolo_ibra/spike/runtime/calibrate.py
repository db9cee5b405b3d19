"""BN calibration: give a randomly initialised network realistic BN statistics so that its neurons fire."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def calibrate_bn(model: nn.Module, images: torch.Tensor) -> nn.Module:
    """Replace every BN's running statistics by the cumulative batch statistics of ``images``; return it in eval mode.

    A fresh network in eval mode normalises with mean 0 / variance 1, which leaves most neurons silent and makes an
    equivalence check vacuous; one train-mode pass with ``momentum=None`` sets the statistics the data actually has.
    Each BN's momentum is restored afterwards, so later training behaves as before.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration pass
    model.train()
    try:
        model(images)
    finally:
        for m, momentum in zip(bns, momenta, strict=True):
            m.momentum = momentum
    return model.eval()
