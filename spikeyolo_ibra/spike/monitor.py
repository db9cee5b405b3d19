"""Attach per-layer statistics to a spike-driven model for a run, and read them back as report rows."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..blocks import SpikeDownsample
from .runtime import SpikeDrivenSynapse, synapse_conv
from .stats import EncoderStats, LayerStats

__all__ = ("Monitor",)


class Monitor:
    """Running statistics of every spike-fed layer and MACs of the encoding layer, while attached.

    ``sample`` holds the codes (C, H, W) of the first image at the first spike-fed layer, for the bit-plane figure.

    Example:
        >>> with Monitor(spike_model) as monitor:
        ...     spike_model(images)
        >>> rows = monitor.rows()

    """

    def __init__(self, model: nn.Module) -> None:
        """Attach to ``model`` (a result of :func:`~spikeyolo_ibra.spike.runtime.to_spike_driven`)."""
        self.layers: list[EncoderStats | LayerStats] = []
        self.sample: torch.Tensor | None = None
        self.sample_layer = ""
        self._hooks: list[Any] = []
        for name, m in model.named_modules():
            if isinstance(m, SpikeDownsample) and m.first:
                stats = EncoderStats(name)
                conv = synapse_conv(m.conv)
                self._hooks.append(m.conv.register_forward_hook(lambda _m, _a, y, s=stats, c=conv: s.update(c, y)))
                self.layers.append(stats)
            elif isinstance(m, SpikeDrivenSynapse):
                m.stats = LayerStats(name, m.neuron.config)
                self.layers.append(m.stats)
                if not self.sample_layer:
                    self.sample_layer = name
                    self._hooks.append(m.register_forward_pre_hook(self._keep_sample))
        self._model = model

    def _keep_sample(self, module: SpikeDrivenSynapse, args: tuple[torch.Tensor, ...]) -> None:
        if self.sample is None:
            self.sample = module.neuron.codes(args[0])[0].cpu()

    def rows(self) -> list[dict]:
        """One row per layer in model order (per-image averages)."""
        return [s.row() for s in self.layers]

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
