"""Where the spikes go: per-image maps of synaptic operations, charged to the input location of each spike.

A spike at input location (h, w) of a conv with C_out output channels, g groups and kernel k reaches every output
position whose receptive field covers (h, w), in C_out / g output channels. With s(h, w) the spikes at that location
(summed over input channels, logical steps and planes) and F(h, w) the number of output positions covering it,

    SOP(h, w) = C_out / g * s(h, w) * F(h, w),      F = conv_transpose(ones(H_out, W_out), ones(k_h, k_w))

(same stride, padding and dilation). Summed over (h, w) this is exactly the layer's SOP count
(:func:`~spikeyolo_ibra.energy.sops_from_counts` counts the same pairs from the output side). Each layer's map is
spread evenly over the letterboxed input pixels it covers (nearest upsampling divided by the area ratio, so the sum
is kept), the layers are summed, and :func:`to_image` crops the letterbox padding and resizes to the original image
with Ultralytics' ``scale_masks``. Maps are accumulated on the data's device and read back once per image.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from ultralytics.utils.ops import scale_masks

from ..runtime import unfold_time

__all__ = ("SopMaps", "fanout", "layer_map", "to_image")


def fanout(conv: nn.Conv2d, in_hw: tuple[int, int], device: torch.device | str | None = None) -> torch.Tensor:
    """F (H_in, W_in), float64: how many output positions of ``conv`` read each input location."""
    geometry = list(zip(in_hw, conv.kernel_size, conv.stride, conv.padding, conv.dilation, strict=True))
    out = [(n + 2 * p - d * (k - 1) - 1) // s + 1 for n, k, s, p, d in geometry]
    ones_out = torch.ones(1, 1, *out, dtype=torch.float64, device=device)
    ones_k = torch.ones(1, 1, *conv.kernel_size, dtype=torch.float64, device=device)
    # the transposed conv's own size drops the last (n + 2p - d(k-1) - 1) mod s input rows; output_padding adds them
    extra = [(n + 2 * p - d * (k - 1) - 1) % s for n, k, s, p, d in geometry]
    return F.conv_transpose2d(ones_out, ones_k, None, conv.stride, conv.padding, extra, 1, conv.dilation)[0, 0]


def layer_map(counts: torch.Tensor, conv: nn.Conv2d, T: int, f: torch.Tensor | None = None) -> torch.Tensor:
    """SOP(h, w) per image, (B, H, W) float64, from spike counts (T * B, C_in, H, W) entering ``conv``."""
    s = counts.to(torch.float64).sum(1)
    s = unfold_time(s, T).sum(0)
    f = fanout(conv, s.shape[-2:], s.device) if f is None else f
    return s * f * (conv.out_channels / conv.groups)


class SopMaps:
    """Per-image SOP maps at the letterboxed input's resolution, summed over the spike-fed layers of one forward pass.

    :meth:`start` (called with the network input) clears the maps; each spike-fed layer :meth:`add` s its counts;
    :meth:`read` returns them on the host, one transfer for the whole batch.
    """

    def __init__(self) -> None:
        """Empty; sized by the first :meth:`start`."""
        self.sops: torch.Tensor | None = None  # (B, H, W) float64, on the data's device
        self.spikes: torch.Tensor | None = None  # (B,) float64
        self.slots = 0  # neuron x T x P virtual-step slots per image: the denominator of the firing rate
        self.per_layer: dict[str, torch.Tensor] = {}  # layer -> (2, B) float64: its spikes and SOPs per image
        self._fanouts: dict[tuple[int, tuple[int, int]], torch.Tensor] = {}

    def start(self, x: torch.Tensor) -> None:
        """Begin a forward pass on the input batch x (B, C, H, W)."""
        self.sops = torch.zeros(x.shape[0], *x.shape[-2:], dtype=torch.float64, device=x.device)
        self.spikes = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
        self.slots = 0
        self.per_layer = {}

    def add(self, layer: str, counts: torch.Tensor, conv: nn.Conv2d, T: int, virtual_steps: int) -> None:
        """Charge the spike counts (T * B, C_in, H, W) entering ``conv`` (of ``layer``) to their input locations."""
        if self.sops is None:
            return  # a layer run outside a monitored forward pass (no input seen)
        key = (id(conv), tuple(counts.shape[-2:]))
        if key not in self._fanouts:
            self._fanouts[key] = fanout(conv, counts.shape[-2:], counts.device)
        m = layer_map(counts, conv, T, self._fanouts[key])
        spikes = unfold_time(counts.to(torch.float64), T).sum((0, 2, 3, 4))
        mine = torch.stack([spikes, m.sum((1, 2))])
        self.per_layer[layer] = mine if layer not in self.per_layer else self.per_layer[layer] + mine
        self.spikes += spikes
        self.slots += counts[0].numel() * T * virtual_steps
        up = F.interpolate(m.unsqueeze(1), size=self.sops.shape[-2:], mode="nearest").squeeze(1)
        # spread each cell over its pixels, keeping each image's sum exactly (nearest may repeat cells unevenly)
        scale = m.sum((1, 2)) / up.sum((1, 2)).clamp_min(1e-300)
        self.sops += up * scale.view(-1, 1, 1)

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """(SOP maps (B, H, W), spikes (B,)) on the host, float64, read back in one transfer."""
        if self.sops is None:
            raise RuntimeError("no forward pass has started: run the monitored model first.")
        b = self.sops.shape[0]
        flat = torch.cat([self.sops.flatten(), self.spikes]).cpu().numpy()
        return flat[:-b].reshape(self.sops.shape), flat[-b:]

    def read_layers(self) -> dict[str, np.ndarray]:
        """Per spike-fed layer of the last forward pass, (2, B) float64 on the host: its spikes and SOPs per image."""
        if not self.per_layer:
            return {}
        flat = torch.stack(list(self.per_layer.values())).cpu().numpy()
        return dict(zip(self.per_layer, flat, strict=True))


def to_image(sops: np.ndarray, image_hw: tuple[int, int]) -> tuple[np.ndarray, float]:
    """A letterboxed map (H, W) in the original image's coordinates, and the share of its sum in the padding.

    The letterbox padding is cropped and the rest resized (Ultralytics' ``scale_masks``, bilinear), then rescaled so
    that the image's map sums to the SOPs that fell on the image: values are SOPs per original pixel.
    """
    total = float(sops.sum())
    t = torch.from_numpy(np.ascontiguousarray(sops))[None, None]
    gain = min(t.shape[2] / image_hw[0], t.shape[3] / image_hw[1])
    h, w = (max(round(n * gain), 1) for n in image_hw)
    top, left = round((t.shape[2] - h) / 2 - 0.1), round((t.shape[3] - w) / 2 - 0.1)
    inside = float(t[..., top : top + h, left : left + w].sum())
    out = scale_masks(t, image_hw)[0, 0].numpy().astype(np.float64)
    s = float(out.sum())
    out *= inside / s if s > 0 else 0.0
    return out, (1 - inside / total) if total > 0 else 0.0
