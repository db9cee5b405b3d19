"""The encoding layer of event models: each time bin's 2-channel (OFF, ON) frame through one shared conv.

Input ``(B, 2T, H, W)`` with channel ``2k + p`` = bin k, polarity p (the sample layout, :mod:`.sample`); output
``(T * B, c2, H / s, W / s)``, time outermost as everywhere in the model, so the neurons after it integrate bin 0
first and carry their membranes from bin to bin, and the head averages over the T bins.
"""

from __future__ import annotations

import torch
from torch import nn
from ultralytics.nn.modules import Conv

from ..neuron import NeuronConfig, SharedTimesteps, active_config
from ..registry import exported, register
from .errors import EventDataError

POLARITIES = 2


@register("channels")
class EventEncoder(SharedTimesteps, nn.Module):
    """Conv(2 -> c2, k, s, p) -> BN applied to every time bin; bins become the T logical timesteps.

    y[t * B + b] = BN(W * x[b, 2t : 2t + 2]): the weights do not depend on T, so a model trained with T bins runs
    with another T after :func:`~spikeyolo_ibra.neuron.set_timesteps` (on data binned the same way).
    """

    #: The encoding layer (real-valued input, no neuron): ``fuse()`` folds its BN and the alignment scale N into it.
    encodes = True

    def __init__(
        self, c1: int, c2: int, k: int = 7, s: int = 4, p: int | None = 2, *, neuron: NeuronConfig | None = None
    ) -> None:
        """``c1``: input channels (2T); output channels, kernel, stride, padding as Ultralytics' ``Conv``."""
        super().__init__()
        self.config = neuron if neuron is not None else active_config()  # the neuron settings, shared: T lives there
        self.c1 = c1
        self.conv = Conv(POLARITIES, c2, k, s, p, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2T, H, W) event frames -> (T * B, c2, H', W') membranes."""
        b, c, h, w = x.shape
        bins = self.T
        if c != POLARITIES * bins:
            if c != self.c1:
                raise EventDataError(
                    f"an event model with T = {bins} reads {POLARITIES * bins} channels (ON/OFF per bin), got {c}: "
                    f"convert the events with --timesteps {bins} or set the model's neuron T to {c // POLARITIES}."
                )
            # Built for c1 != 2T: Ultralytics builds every YAML for 3 channels before it knows the data, and probes
            # its strides with zeros; only shapes matter there (training rebuilds it for the data's channels).
            x = x.new_zeros(b, POLARITIES * bins, h, w)
        frames = x.view(b, bins, POLARITIES, h, w).transpose(0, 1).reshape(bins * b, POLARITIES, h, w)
        return self.conv(frames)


__all__ = exported(__name__)
