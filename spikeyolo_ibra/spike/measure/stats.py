"""Per-layer spike statistics kept as running sums and a code histogram (no stored activations).

For a spike-fed layer with codes q over ``images`` images, T logical and P virtual steps, n neurons per image and
logical step (C * H * W of the layer input):

- mean code            = sum(q) / (n * T * images)
- spikes per neuron    = spikes / (n * images)                 (over all T logical and P virtual steps)
- firing rate          = spikes / (n * T * P * images)         (per virtual step: a share in [0, 1])
- level utilisation    = distinct codes seen / (Q + 1)
- SOPs                 = fan-out-weighted spikes, counted twice: from the binary planes that reached the conv and
                         from the integer codes (spike-count map through an all-ones conv); they must agree.

Each row also carries the fields of the energy model's :class:`~spikeyolo_ibra.energy.LayerTraffic` (``weights``,
``inputs``, ``outputs``, ``timesteps``, ``virtual_steps``, ``spikes``, ``effective_ops``, ``dense_ops``): the fused
conv's parameters, elements in and out per logical step, and the measured spikes and effective operations per image.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import nn

from ...energy import LayerTraffic, conv_macs, effective_synops, sops_from_counts
from ...neuron import NeuronConfig
from ..runtime import batch_size, spike_counts
from .levels import summary
from .maps import SopMaps

__all__ = ("EncoderStats", "LayerStats", "firing_summary")


def _geometry(
    known: LayerTraffic | None, name: str, kind: str, conv: nn.Conv2d, in_hw: tuple, out_hw: tuple, T: int, P: int
) -> LayerTraffic:
    """The layer's traffic with no spikes or operations yet: worked out once per input size (its Dense is a conv)."""
    if known is not None and known.inputs == conv.in_channels * in_hw[0] * in_hw[1]:
        return known
    return LayerTraffic.of_conv(name, kind, conv, tuple(in_hw), tuple(out_hw), T, P)


@dataclass
class EncoderStats:
    """MACs of the real-valued encoding conv (the one layer charged as MACs in the SNN).

    An image model's encoder runs once per image (its output is repeated over T); an event model's runs once per
    time bin, the T bins folded into its batch time outermost (x[t * B + b]): per image it computes T bins,

        MACs = T * C_in C_out k^2 H_out W_out / groups,      effective MACs = sum over its T bins,

    and reads and writes T bins (``inputs``, ``outputs`` and ``dense_ops`` of its traffic cover all of them).
    """

    name: str
    macs_per_step: int = 0  # one application of the conv (one image, or one bin)
    bins: int = 1  # applications per image: 1, or T for an event model
    macs: int = 0
    images: int = 0
    effective_ops: float = 0.0  # NeuroBench's effective MACs, summed over images
    last_effective_ops: list[float] = field(default_factory=list)  # per image of the last batch
    geometry: LayerTraffic | None = None

    @property
    def macs_per_image(self) -> int:
        """MACs of one image: ``macs_per_step`` times its bins."""
        return self.macs_per_step * self.bins

    def update(self, conv: nn.Conv2d, x: torch.Tensor, y: torch.Tensor, bins: int = 1) -> None:
        """Count one batch: inputs x (bins * B, C_in, H, W), outputs y (bins * B, C_out, H', W'), time outermost."""
        per_step = conv_macs(conv, (y.shape[-2], y.shape[-1]))
        b = y.shape[0] // bins
        self.macs_per_step, self.bins = per_step, bins
        self.macs += per_step * y.shape[0]
        self.images += b
        if self.geometry is None or self.geometry.inputs != conv.in_channels * x.shape[-2] * x.shape[-1] * bins:
            one = LayerTraffic.of_conv(self.name, "encoder", conv, tuple(x.shape[-2:]), tuple(y.shape[-2:]))
            scaled = {k: getattr(one, k) * bins for k in ("inputs", "outputs", "dense_ops")}
            self.geometry = dataclasses.replace(one, **scaled, timesteps=bins)
        per_bin = [effective_synops(x[i : i + 1], conv) for i in range(x.shape[0])]
        self.last_effective_ops = [sum(per_bin[t * b + i] for t in range(bins)) for i in range(b)]
        self.effective_ops += sum(self.last_effective_ops)

    def traffic(self, effective_ops: float) -> LayerTraffic:
        """What the layer moves and computes for one image with ``effective_ops`` effective MACs."""
        return dataclasses.replace(self.geometry, effective_ops=effective_ops)

    def row(self) -> dict:
        """The report row (per-image averages)."""
        n = max(self.images, 1)
        traffic = dataclasses.asdict(self.traffic(self.effective_ops / n)) if self.geometry else {}
        return {
            **traffic,
            "name": self.name,
            "kind": "encoder",
            "macs": self.macs / n,
            "macs_per_step": self.macs_per_step,
            "bins": self.bins,
        }


@dataclass
class LayerStats:
    """Running sums for one spike-fed synapse, kept as tensors on the device of the data (read back in :meth:`row`)."""

    name: str
    config: NeuronConfig
    neurons: int = 0
    images: int = 0
    macs_per_step: int = 0
    sums: dict[str, torch.Tensor] = field(default_factory=dict)  # code_sum, spikes, sops_planes, sops_codes
    histogram: torch.Tensor | None = None  # codes 0..Q, on the data's device
    maps: SopMaps | None = None  # per-image SOP maps of the current forward pass, when a Monitor asks for them
    geometry: LayerTraffic | None = None

    def _add(self, key: str, value: torch.Tensor) -> None:
        self.sums[key] = value if key not in self.sums else self.sums[key] + value

    def update_codes(self, q: torch.Tensor, conv: nn.Conv2d, out_hw: tuple[int, int]) -> None:
        """Add one batch of codes q (T * B, C, H, W) entering ``conv``; no host synchronisation."""
        c = self.config
        self.neurons = q[0].numel()
        self.images += batch_size(q, c.T)
        counts = spike_counts(q, c)
        self._add("code_sum", q.sum(dtype=torch.float64))
        self._add("spikes", counts.sum(dtype=torch.float64))
        self._add("sops_codes", sops_from_counts(counts, conv))
        if self.maps is not None:
            self.maps.add(self.name, counts, conv, c.T, c.virtual_steps)
        self.macs_per_step = conv_macs(conv, out_hw)
        self.geometry = _geometry(self.geometry, self.name, "spiking", conv, q.shape[-2:], out_hw, c.T, c.virtual_steps)
        if self.histogram is None:
            self.histogram = torch.zeros(c.max_code + 1, dtype=torch.long, device=q.device)
        codes = q.flatten().long()  # a fixed-size scatter: no data-dependent output size, no synchronisation
        self.histogram.scatter_add_(0, codes, torch.ones((), dtype=torch.long, device=q.device).expand_as(codes))

    def update_plane(self, b: torch.Tensor, conv: nn.Conv2d) -> None:
        """Add the SOPs of binary planes b (any number of planes folded into the batch) as they reach ``conv``."""
        self._add("sops_planes", sops_from_counts(b, conv))

    def levels(self) -> list[int]:
        """How many codes of each value 0..Q the layer's neurons emitted, over all images (one read-back)."""
        return [0] * (self.config.max_code + 1) if self.histogram is None else self.histogram.tolist()

    def traffic(self, spikes: float, sops: float) -> LayerTraffic:
        """What the layer moves and computes for one image that sent it ``spikes`` spikes and cost ``sops`` SOPs."""
        return dataclasses.replace(self.geometry, spikes=spikes, effective_ops=sops)

    def row(self) -> dict:
        """The report row (per-image averages)."""
        c, n = self.config, max(self.images, 1)
        per_image = max(self.neurons, 1) * n
        total = {k: float(v) for k, v in self.sums.items()}
        levels = self.levels()
        use = summary(levels)
        spikes, sops = total.get("spikes", 0.0) / n, total.get("sops_planes", 0.0) / n
        return {
            **(dataclasses.asdict(self.traffic(spikes, sops)) if self.geometry else {}),
            "name": self.name,
            "kind": "spiking",
            "neurons": self.neurons,
            "mean_code": total.get("code_sum", 0.0) / (per_image * c.T),
            "firing_rate": total.get("spikes", 0.0) / (per_image * c.T * c.virtual_steps),
            "spikes_per_neuron": total.get("spikes", 0.0) / per_image,
            "nonzero_share": use["nonzero_share"],
            "max_code_seen": max((q for q, n in enumerate(levels) if n), default=0),
            "levels_used": use["levels_used"],
            "levels_possible": use["levels_possible"],
            "level_utilisation": use["levels_used"] / use["levels_possible"],
            "sops": sops,
            "sops_from_codes": total.get("sops_codes", 0.0) / n,
            "macs": self.macs_per_step * c.T,
            "macs_per_step": self.macs_per_step,
        }


def firing_summary(rows: list[dict], config: NeuronConfig) -> dict:
    """Whole-network totals of a report's spike-fed rows: neurons, spikes, spikes per neuron, firing rate, level use.

    Per-layer means are weighted by the layer's neurons (code, non-zero share); level utilisation is the plain mean
    over layers; ``silent_layers`` counts layers that sent no spike.
    """
    spiking = [r for r in rows if r["kind"] == "spiking"]
    neurons = sum(r["neurons"] for r in spiking)
    spikes = sum(r["spikes_per_neuron"] * r["neurons"] for r in spiking)
    slots = neurons * config.T * config.virtual_steps
    return {
        "virtual_steps": config.virtual_steps,
        "layers": len(spiking),
        "neurons": neurons,
        "spikes": spikes,
        "spikes_per_neuron": spikes / neurons if neurons else 0.0,
        "firing_rate_per_virtual_step": spikes / slots if slots else 0.0,
        "mean_code": sum(r["mean_code"] * r["neurons"] for r in spiking) / neurons if neurons else 0.0,
        "nonzero_share": sum(r["nonzero_share"] * r["neurons"] for r in spiking) / neurons if neurons else 0.0,
        "level_utilisation_mean": sum(r["level_utilisation"] for r in spiking) / len(spiking) if spiking else 0.0,
        "silent_layers": sum(r["spikes_per_neuron"] == 0 for r in spiking),
    }
