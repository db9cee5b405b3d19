"""Ultralytics' ``YOLODataset`` for event samples: borders 0 ("no event"), no colour augmentation, order kept.

How the borders become 0 without copying Ultralytics' transforms: each loaded sample gets one extra plane of 255s.
Every geometric transform treats all channels alike, so where a transform fills 114 (mosaic, affine warp,
letterbox) that plane holds 114 too, and where it blends a border into the picture (bilinear warps) the plane holds
v = 255 - f (255 - 114) for the border's share f. Before formatting, :class:`EventBorders` takes that share off the
events, e - 114 f (exact away from warped edges, within one count there), and drops the plane.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ultralytics.data.augment import Albumentations, RandomHSV
from ultralytics.data.dataset import YOLODataset

__all__ = ("FILL", "EventBorders", "EventDataset")

FILL = 114  # the value Ultralytics' mosaic, affine warp and letterbox fill borders with
VALID = 255


class EventBorders:
    """Last transform before formatting: events minus the 114-fill share, then the validity plane dropped."""

    def __call__(self, labels: dict[str, Any]) -> dict[str, Any]:
        """Events e' = clip(round(e - FILL f), 0, 255), f = (255 - v) / (255 - FILL) from the validity plane v."""
        img = labels["img"]
        events, valid = img[..., :-1], img[..., -1:]
        if (valid == VALID).all():
            labels["img"] = np.ascontiguousarray(events)
            return labels
        share = np.clip((VALID - valid.astype(np.float32)) / (VALID - FILL), 0, 1)
        fixed = np.rint(events.astype(np.float32) - FILL * share)
        labels["img"] = np.clip(fixed, 0, 255).astype(np.uint8)
        return labels


class EventDataset(YOLODataset):
    """``YOLODataset`` for 2T-channel event samples: borders 0, no HSV or Albumentations, channels never reordered.

    Flips act on all channels with the boxes; Ultralytics reverses channels (BGR/RGB) and applies HSV only to
    3-channel images, and 2T is never 3 once the validity plane is gone.
    """

    def get_image_and_label(self, index: int) -> dict[str, Any]:
        """The stock sample with a validity plane of 255s appended."""
        label = super().get_image_and_label(index)
        img = label["img"]
        label["img"] = np.concatenate([img, np.full((*img.shape[:2], 1), VALID, img.dtype)], axis=2)
        return label

    def build_transforms(self, hyp: Any = None) -> Any:
        """The stock transforms less HSV and Albumentations, with :class:`EventBorders` before formatting."""
        if hyp is not None:
            hyp.hsv_h = hyp.hsv_s = hyp.hsv_v = 0.0
        transforms = super().build_transforms(hyp)
        transforms.transforms = [t for t in transforms.transforms if not isinstance(t, (RandomHSV, Albumentations))]
        transforms.insert(len(transforms.transforms) - 1, EventBorders())
        return transforms
