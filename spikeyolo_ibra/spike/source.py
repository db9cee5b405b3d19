"""What ``--source`` names: images in a file, folder or glob, read by Ultralytics' loader and letterboxed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ultralytics.data.augment import LetterBox
from ultralytics.data.loaders import LoadImagesAndVideos
from ultralytics.utils import TQDM

from .errors import SpikeInferError

__all__ = ("STRIDE", "Frame", "Source", "open_source")

STRIDE = 32  # the detector's largest stride: a letterbox size must be a multiple of it


@dataclass
class Frame:
    """One image: where it came from, the original BGR pixels and the letterboxed network input."""

    path: str
    index: int | None  # frame number in a video (1-based), None for an image
    image: np.ndarray
    x: torch.Tensor  # (1, 3, H, W) RGB in [0, 1]


@dataclass
class Source:
    """A checked ``--source``: Ultralytics' loader, its letterbox, and how many frames it will give."""

    loader: LoadImagesAndVideos
    letterbox: LetterBox
    frames: int

    @property
    def files(self) -> list[str]:
        """The image files, in the loader's order."""
        return self.loader.files

    def iterate(self, dtype: torch.dtype, device: torch.device, desc: str) -> Iterator[Frame]:
        """Every image in order, letterboxed, with Ultralytics' progress bar."""
        for paths, ims, _ in TQDM(self.loader, total=self.frames, desc=desc, unit="image"):
            yield Frame(paths[0], None, ims[0], letterboxed(ims[0], self.letterbox, dtype, device))


def letterboxed(image: np.ndarray, letterbox: LetterBox, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """BGR HWC uint8 -> letterboxed RGB (1, 3, H, W) in [0, 1]."""
    im = letterbox(image=image)[..., ::-1].transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(im)).to(device, dtype).unsqueeze(0) / 255


def open_source(source: str | Path, imgsz: int) -> Source:
    """Ultralytics' loader over an image file, a folder of images or a glob; SpikeInferError for unusable input."""
    if not str(source).strip():
        raise SpikeInferError("--source is empty: pass an image file, a folder of images or a glob.")
    try:
        loader = LoadImagesAndVideos(str(source))
    except FileNotFoundError as e:
        raise SpikeInferError(
            f"source {source} does not exist or holds no images: pass an image file, a folder of images or a glob."
        ) from e
    if loader.nf != loader.ni:
        raise SpikeInferError(f"source {source} contains videos: pass images only.")
    return Source(loader, LetterBox(imgsz, auto=False, stride=STRIDE), loader.ni)
