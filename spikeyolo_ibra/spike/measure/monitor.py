"""Attach per-layer statistics to a spike-driven model for a run, and read them back as report rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ...energy import DEFAULT_MEMORY, MEMORY, CostTable, LayerTraffic, MemoryTable, totals_from_counts
from ...events.blocks import EventEncoder
from ..runtime import SpikeDrivenSynapse, synapse_conv
from .maps import SopMaps, to_image
from .pricing import neurobench
from .stats import EncoderStats, LayerStats

__all__ = ("Monitor",)


class Monitor:
    """Running statistics of every spike-fed layer and MACs of the encoding layer, while attached.

    The encoding layer is the image model's first ``SpikeDownsample`` (one real-valued image, repeated over T) or an
    event model's ``EventEncoder`` (T real-valued bins folded into its batch, each through the conv: T times the
    MACs of one bin).

    ``sample`` holds the codes (C, H, W) of the first image at the first spike-fed layer, for the bit-plane figure.
    With ``maps=True``, ``maps`` (:class:`~.maps.SopMaps`) holds where each image's SOPs went in the last forward pass.

    Example:
        >>> with Monitor(spike_model) as monitor:
        ...     spike_model(images)
        >>> rows = monitor.rows()

    """

    def __init__(self, model: nn.Module, maps: bool = False) -> None:
        """Attach to ``model`` (a result of :func:`~spikeyolo_ibra.spike.runtime.graph.to_spike_driven`)."""
        self.layers: list[EncoderStats | LayerStats] = []
        self.sample: torch.Tensor | None = None
        self.sample_layer = ""
        self.maps = SopMaps() if maps else None
        self._hooks: list[Any] = []
        if self.maps is not None:
            self._hooks.append(model.register_forward_pre_hook(lambda _m, args: self.maps.start(args[0])))
        for name, m in model.named_modules():
            if getattr(m, "encodes", False):  # the image or event encoder: real-valued input
                stats = EncoderStats(name)
                conv = synapse_conv(m.conv)
                bins = m.T if isinstance(m, EventEncoder) else 1  # event bins are folded into its batch, time outermost
                self._hooks.append(
                    m.conv.register_forward_hook(lambda _m, a, y, s=stats, c=conv, t=bins: s.update(c, a[0], y, t))
                )
                self.layers.append(stats)
            elif isinstance(m, SpikeDrivenSynapse):
                m.stats = LayerStats(name, m.neuron.config, maps=self.maps)
                self.layers.append(m.stats)
                if not self.sample_layer:
                    self.sample_layer = name
                    self._hooks.append(m.register_forward_pre_hook(self._keep_sample))
        self._model = model

    def _keep_sample(self, module: SpikeDrivenSynapse, args: tuple[torch.Tensor, ...]) -> None:
        if self.sample is None:
            self.sample = module.neuron.codes(args[0])[0].cpu()

    def rows(self) -> list[dict]:
        """One row per layer in model order (per-image averages); :func:`~.pricing.price` adds their energy."""
        return [s.row() for s in self.layers]

    def macs_per_image(self) -> tuple[int, int]:
        """(MACs of the encoding layer, MACs of the ANN twin) per image, known after the first forward pass."""
        encoder = sum(s.macs_per_image for s in self.layers if isinstance(s, EncoderStats))
        return encoder, sum(s.macs_per_step for s in self.layers)

    def image_figures(
        self, costs: CostTable, image_hw: tuple[int, int], memory: MemoryTable = MEMORY[DEFAULT_MEMORY]
    ) -> tuple[dict, np.ndarray]:
        """The first image of the last forward pass: its figures and its SOP map in original image coordinates.

        Figures: ``sops`` and ``spikes`` (spike-fed layers), ``firing_rate`` = spikes / (neurons x T x P), the
        energy totals of :func:`~spikeyolo_ibra.energy.totals_from_counts` for this image, compute-only (``snn_mJ``,
        ``ann_mJ``, ...) and with memory at ``memory`` (``snn_total_mJ``, ``snn_mem_mJ``, ...), NeuroBench's
        ``activation_sparsity`` and ``synaptic_operations``, and ``sops_in_padding``, the share of SOPs that fell on
        the letterbox padding. Needs ``maps=True``; reads the device back twice (maps, per-layer counts).
        """
        if self.maps is None:
            raise RuntimeError("image_figures needs a Monitor made with maps=True.")
        sops, spikes = self.maps.read()
        image_map, padding = to_image(sops[0], image_hw)
        layers = self.image_traffic(0)
        encoder, ann = self.macs_per_image()
        passes = max((s.bins for s in self.layers if isinstance(s, EncoderStats)), default=1)  # event bins
        totals = totals_from_counts(encoder, float(sops[0].sum()), ann, costs, layers, memory, passes)
        del totals["costs"], totals["memory"]
        figures = {
            "spikes": float(spikes[0]),
            "firing_rate": float(spikes[0]) / max(self.maps.slots, 1),
            **totals,
            **neurobench(layers),
            "sops_in_padding": padding,
        }
        return figures, image_map

    def image_traffic(self, b: int) -> list[LayerTraffic]:
        """What each layer moved and computed for image ``b`` of the last forward pass (needs ``maps=True``)."""
        counts = self.maps.read_layers()
        return [
            s.traffic(s.last_effective_ops[b]) if isinstance(s, EncoderStats) else s.traffic(*counts[s.name][:, b])
            for s in self.layers
        ]

    def levels(self) -> dict[str, list[int]]:
        """Per spike-fed layer, how many codes of each value 0..Q its neurons emitted over all images."""
        return {s.name: s.levels() for s in self.layers if isinstance(s, LayerStats)}

    def close(self) -> None:
        """Detach hooks and statistics from the model."""
        for h in self._hooks:
            h.remove()
        for m in self._model.modules():
            if isinstance(m, SpikeDrivenSynapse):
                m.stats = None

    def __enter__(self) -> Monitor:
        """Use as a context manager."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Detach on exit."""
        self.close()
