"""Integer mode against spike mode on the same inputs: head outputs, neuron codes layer by layer, detections after NMS.

PASS means identical detections (same count and classes, boxes and scores within ``DET_ATOL``) and, in float64,
zero neuron codes that differ. In float32 code flips are reported, not failed: summation order differs between the
integer conv and the plane sums, and a membrane sitting at a rounding boundary can round the other way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial

import torch
from torch import nn
from ultralytics.utils.nms import non_max_suppression

from ...blocks import SpikingSynapse
from ...neuron import IBLIF
from .graph import SpikeDrivenSynapse

__all__ = ("DET_ATOL", "Equivalence", "detect", "run_pair", "same_detections")

DET_ATOL = 1e-4


@dataclass
class Equivalence:
    """Running comparison of integer and spike mode over images."""

    dtype: str
    images: int = 0
    max_abs_diff: float = 0.0
    codes: int = 0
    code_flips: int = 0
    detections_identical: bool = True

    @property
    def flip_fraction(self) -> float:
        """Share of neuron codes that differ between the two runs."""
        return self.code_flips / max(self.codes, 1)

    @property
    def passed(self) -> bool:
        """Identical detections, and no code flip in float64."""
        return self.detections_identical and (self.code_flips == 0 or self.dtype != "float64")

    def as_dict(self) -> dict:
        """Report fields, with the derived ones."""
        return {**asdict(self), "flip_fraction": self.flip_fraction, "passed": self.passed}


def detect(pred: torch.Tensor, conf: float = 0.25, iou: float = 0.7) -> list[torch.Tensor]:
    """Ultralytics' NMS on decoded head outputs (B, 4 + nc, A): per image (n, 6) boxes xyxy, score, class."""
    return non_max_suppression(pred, conf, iou, max_det=300)


def same_detections(a: list[torch.Tensor], b: list[torch.Tensor], atol: float = DET_ATOL) -> bool:
    """Same number of boxes and classes per image, coordinates and scores within ``atol``."""
    return all(
        x.shape == y.shape and torch.equal(x[:, 5], y[:, 5]) and torch.allclose(x[:, :5], y[:, :5], rtol=0, atol=atol)
        for x, y in zip(a, b, strict=True)
    )


def _neuron_pairs(model: nn.Module) -> list[tuple[str, nn.Module]]:
    kinds = (SpikingSynapse, SpikeDrivenSynapse)
    return [(n, m) for n, m in model.named_modules() if isinstance(m, kinds) and isinstance(m.neuron, IBLIF)]


@torch.no_grad()
def run_pair(
    integer_model: nn.Module, spike_model: nn.Module, x: torch.Tensor, eq: Equivalence, conf: float, iou: float
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run both models on x, fold the differences into ``eq``; return spike mode's outputs and detections."""
    stored: dict[str, torch.Tensor] = {}
    flips: list[torch.Tensor] = []  # per layer, on the device: read back once per call

    def keep(name: str, m: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        stored[name] = m.neuron.codes(args[0]).to(torch.int16)

    def check(name: str, m: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        q = m.neuron.codes(args[0]).to(torch.int16)
        eq.codes += q.numel()
        flips.append((q != stored.pop(name)).sum())

    hooks = [m.register_forward_pre_hook(partial(keep, n)) for n, m in _neuron_pairs(integer_model)]
    hooks += [m.register_forward_pre_hook(partial(check, n)) for n, m in _neuron_pairs(spike_model)]
    try:
        y_int = integer_model(x)[0]
        y_spk = spike_model(x)[0]
    finally:
        for h in hooks:
            h.remove()
    eq.code_flips += int(torch.stack(flips).sum()) if flips else 0
    eq.images += x.shape[0]
    eq.max_abs_diff = max(eq.max_abs_diff, float((y_int - y_spk).abs().max()))
    det_spk = detect(y_spk, conf, iou)
    eq.detections_identical &= same_detections(detect(y_int, conf, iou), det_spk)
    return y_spk, det_spk
