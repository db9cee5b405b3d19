"""One converted sample on disk: a multi-page TIFF of 2T uint8 pages, page ``2k + p`` = bin k, polarity p.

Why this format: Ultralytics reads a multi-page TIFF as one image with a channel per page when the data YAML says
``channels: 2T`` (its ``imread`` stacks same-size pages under ``cv2.IMREAD_UNCHANGED``), so its loader, ``cache=ram``,
``cache=disk`` (a ``.npy`` of what it read), mosaic, affine and flips all work on event samples unchanged. Event
frames are mostly zeros, which TIFF's lossless compression (LZW, OpenCV's default) shrinks several times, and every
TIFF reader (tifffile, PIL, ImageJ) opens it. Measured figures: docs/events.md.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..atomic import replacing
from .errors import EventDataError

__all__ = ("SUFFIX", "load_sample", "save_sample", "to_channels")

SUFFIX = ".tif"


def to_channels(frames: np.ndarray) -> np.ndarray:
    """(T, 2, H, W) -> (H, W, 2T), the layout Ultralytics hands to its transforms (channel 2k + p)."""
    t, two, h, w = frames.shape
    return np.ascontiguousarray(frames.reshape(t * two, h, w).transpose(1, 2, 0))


def save_sample(path: str | Path, frames: np.ndarray) -> Path:
    """Write (T, 2, H, W) uint8 ``frames`` as a 2T-page TIFF at ``path``; the file appears whole or not at all."""
    path = Path(path)
    if frames.ndim != 4 or frames.shape[1] != 2 or frames.dtype != np.uint8:
        raise EventDataError(f"a sample for {path} must be (T, 2, H, W) uint8, got {frames.shape} {frames.dtype}.")
    pages = list(frames.reshape(-1, *frames.shape[2:]))
    with replacing(path) as tmp:
        tif = tmp.with_name(tmp.name + SUFFIX)  # OpenCV picks the encoder by the suffix
        try:
            if not cv2.imwritemulti(str(tif), pages):
                raise EventDataError(f"OpenCV could not write {path}: check the folder is writable.")
            tif.replace(tmp)
        finally:
            tif.unlink(missing_ok=True)
    return path


def load_sample(path: str | Path) -> np.ndarray:
    """Read a sample written by :func:`save_sample` back as (T, 2, H, W) uint8, bin 0 the earliest."""
    path = Path(path)
    ok, pages = cv2.imreadmulti(str(path), flags=cv2.IMREAD_UNCHANGED)
    if not ok or not pages or len(pages) % 2 or any(p.ndim != 2 or p.dtype != np.uint8 for p in pages):
        raise EventDataError(f"{path} is not an event sample (a TIFF of 2T uint8 pages): convert the events again.")
    return np.stack(pages).reshape(len(pages) // 2, 2, *pages[0].shape)
