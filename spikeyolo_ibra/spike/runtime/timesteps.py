"""Time folded into the batch: a spiking layer sees (T * B, ...) with time as the outer factor, x[t * B + b].

    unfold_time(x, T)[t, b] = x[t * B + b],      B = x.shape[0] / T

Every per-image quantity of a spiking layer (spikes, SOP maps, images seen) is read through this one unfold.
"""

from __future__ import annotations

import torch

from ...neuron import unfold_time  # the one definition, beside T's owner

__all__ = ("batch_size", "unfold_time")


def batch_size(x: torch.Tensor, T: int) -> int:  # noqa: N803
    """B, the images in a time-folded batch (T * B, ...)."""
    return x.shape[0] // T
