"""Per-layer spike statistics kept as running sums and a code histogram (no stored activations).

For a spike-fed layer with codes q over ``images`` images, T logical and P virtual steps, n neurons per image and
logical step (C * H * W of the layer input):

- mean code            = sum(q) / (n * T * images)
- spikes per neuron    = spikes / (n * images)                 (over all T logical and P virtual steps)
- firing rate          = spikes / (n * T * P * images)         (per virtual step: a share in [0, 1])
- level utilisation    = distinct codes seen / (Q + 1)
- SOPs                 = fan-out-weighted spikes, counted twice: from the binary planes that reached the conv and
                         from the integer codes (spike-count map through an all-ones conv); they must agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..energy import conv_macs, sops_from_counts
from ..neuron import NeuronConfig
from .encoding import spike_counts

__all__ = ("EncoderStats", "LayerStats")


@dataclass
class EncoderStats:
    """MACs of the real-valued image-encoding conv (the one layer charged as MACs in the SNN)."""

    name: str
    macs_per_step: int = 0
    macs: int = 0
    images: int = 0

    def update(self, conv: nn.Conv2d, y: torch.Tensor) -> None:
        """Count one batch of outputs y (B, C_out, H, W): computed once per image, then repeated T times."""
        per_image = conv_macs(conv, (y.shape[-2], y.shape[-1]))
        self.macs_per_step = per_image
        self.macs += per_image * y.shape[0]
        self.images += y.shape[0]

    def row(self) -> dict:
        """The report row (per-image averages)."""
        n = max(self.images, 1)
        return {"name": self.name, "kind": "encoder", "macs": self.macs / n, "macs_per_step": self.macs_per_step}


@dataclass
class LayerStats:
    """Running sums for one spike-fed synapse."""

    name: str
    config: NeuronConfig
    neurons: int = 0
    images: int = 0
    code_sum: float = 0.0
    spikes: float = 0.0
    sops_planes: float = 0.0
    sops_codes: float = 0.0
    macs_per_step: int = 0
    histogram: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))

    def update_codes(self, q: torch.Tensor, conv: nn.Conv2d, out_hw: tuple[int, int]) -> None:
        """Add one batch of codes q (T * B, C, H, W) entering ``conv``."""
        c = self.config
        self.neurons = q[0].numel()
        self.images += q.shape[0] // c.T
        self.code_sum += float(q.sum(dtype=torch.float64))
        counts = spike_counts(q, c)
        self.spikes += float(counts.sum(dtype=torch.float64))
        self.sops_codes += sops_from_counts(counts, conv)
        self.macs_per_step = conv_macs(conv, out_hw)
        hist = torch.bincount(q.flatten().long().cpu(), minlength=c.max_code + 1)
        self.histogram = hist if self.histogram.numel() == 0 else self.histogram + hist

    def update_plane(self, b: torch.Tensor, conv: nn.Conv2d) -> None:
        """Add the SOPs of binary planes b (any number of planes folded into the batch) as they reach ``conv``."""
        self.sops_planes += sops_from_counts(b, conv)

    def row(self) -> dict:
        """The report row (per-image averages)."""
        c, n = self.config, max(self.images, 1)
        per_image = max(self.neurons, 1) * n
        seen = self.histogram.nonzero().flatten()
        return {
            "name": self.name,
            "kind": "spiking",
            "neurons": self.neurons,
            "mean_code": self.code_sum / (per_image * c.T),
            "firing_rate": self.spikes / (per_image * c.T * c.virtual_steps),
            "spikes_per_neuron": self.spikes / per_image,
            "nonzero_share": 1 - int(self.histogram[0]) / max(int(self.histogram.sum()), 1) if seen.numel() else 0.0,
            "max_code_seen": int(seen[-1]) if seen.numel() else 0,
            "levels_used": seen.numel(),
            "levels_possible": c.max_code + 1,
            "level_utilisation": seen.numel() / (c.max_code + 1),
            "sops": self.sops_planes / n,
            "sops_from_codes": self.sops_codes / n,
            "macs": self.macs_per_step * c.T,
            "macs_per_step": self.macs_per_step,
        }
