"""The spiking detection head: Ultralytics' ``Detect`` with spiking branches and a mean over logical timesteps."""

from __future__ import annotations

import math

import torch
from torch import nn
from ultralytics.nn.modules import Detect

from .blocks import SpikeConv
from .neuron import NeuronConfig, SharedTimesteps, active_config, unfold_time
from .registry import exported, register


@register("detect")
class SpikeDetect(SharedTimesteps, Detect):
    """YOLOv8 decoupled head whose branches are spiking convs; outputs are averaged over the T logical timesteps.

    Each branch is neuron -> conv -> BN, twice, then neuron -> 1x1 conv with bias. Everything after the branches
    (DFL, box decoding, the loss, the validator, NMS) is stock Ultralytics.
    """

    #: Ultralytics' parser sets ``Detect.legacy`` for the whole process from the last YAML it read; ``Detect.__init__``
    #: then builds (and we replace) different branches, drawing different random numbers. Pinned to the class default,
    #: a seed builds the same spiking head as in a fresh process, whatever was parsed before.
    legacy = False

    def __init__(
        self,
        nc: int = 80,
        reg_max: int = 16,
        end2end: bool = False,
        ch: tuple[int, ...] = (),
        *,
        neuron: NeuronConfig | None = None,
    ) -> None:
        """Same arguments as ``Detect``: classes, DFL bins, end-to-end flag, input channels per level."""
        super().__init__(nc, reg_max, end2end, ch)
        self.config = neuron if neuron is not None else active_config()  # the neuron settings, shared: T lives there
        neuron = self.config
        c2, c3 = max((16, ch[0] // 4, self.reg_max * 4)), max(ch[0], min(self.nc, 100))
        self.cv2 = nn.ModuleList(
            nn.Sequential(
                SpikeConv(x, c2, 3, neuron=neuron),
                SpikeConv(c2, c2, 3, neuron=neuron),
                SpikeConv(c2, 4 * self.reg_max, bn=False, neuron=neuron),
            )
            for x in ch
        )
        self.cv3 = nn.ModuleList(
            nn.Sequential(
                SpikeConv(x, c3, 3, neuron=neuron),
                SpikeConv(c3, c3, 3, neuron=neuron),
                SpikeConv(c3, self.nc, bn=False, neuron=neuron),
            )
            for x in ch
        )
        if end2end:
            import copy

            self.one2one_cv2 = copy.deepcopy(self.cv2)
            self.one2one_cv3 = copy.deepcopy(self.cv3)

    def _time_mean(self, x: torch.Tensor) -> torch.Tensor:
        """(T * B, ...) -> (B, ...), the mean over logical timesteps."""
        return x if self.T == 1 else unfold_time(x, self.T).mean(0)

    def forward_head(
        self, x: list[torch.Tensor], box_head: nn.Module | None = None, cls_head: nn.Module | None = None
    ) -> dict[str, torch.Tensor]:
        """Branch outputs averaged over time, flattened per level as ``Detect`` expects."""
        if box_head is None or cls_head is None:
            return {}
        feats = [self._time_mean(xi) for xi in x]
        bs = feats[0].shape[0]
        boxes = torch.cat(
            [self._time_mean(box_head[i](x[i])).view(bs, 4 * self.reg_max, -1) for i in range(self.nl)], -1
        )
        scores = torch.cat([self._time_mean(cls_head[i](x[i])).view(bs, self.nc, -1) for i in range(self.nl)], -1)
        return {"boxes": boxes, "scores": scores, "feats": feats}

    def bias_init(self) -> None:
        """Ultralytics' prior for box and class biases, on the output conv of each spiking branch."""
        heads = [(self.cv2, self.cv3)]
        if getattr(self, "one2one_cv2", None) is not None:
            heads.append((self.one2one_cv2, self.one2one_cv3))
        for box_head, cls_head in heads:
            for a, b, s in zip(box_head, cls_head, self.stride, strict=True):
                a[-1].synapse.bias.data[:] = 2.0
                b[-1].synapse.bias.data[: self.nc] = math.log(5 / self.nc / (640 / s) ** 2)


__all__ = exported(__name__)
