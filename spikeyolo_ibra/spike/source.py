"""What ``--source`` names: images, videos, or a folder of frames, read by Ultralytics' loader and letterboxed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
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
    """One image or video frame: where it came from, the original BGR pixels and the letterboxed network input."""

    path: str
    index: int | None  # frame number in its video (1-based), None for an image
    image: np.ndarray
    x: torch.Tensor  # (1, 3, H, W) RGB in [0, 1]


@dataclass
class Source:
    """A checked ``--source``: Ultralytics' loader, its letterbox, and how many frames it will give."""

    loader: LoadImagesAndVideos
    letterbox: LetterBox
    frames: int  # images plus the frames OpenCV announces for the videos
    videos: dict[str, tuple[int, float]]  # video file -> (frames announced, frames per second)

    @property
    def files(self) -> list[str]:
        """Image and video files, images first (the loader's order)."""
        return self.loader.files

    def iterate(self, dtype: torch.dtype, device: torch.device, desc: str) -> Iterator[Frame]:
        """Every image and video frame in order, letterboxed, with Ultralytics' progress bar."""
        frame_numbers: dict[str, int] = {}
        for paths, ims, _ in TQDM(self.loader, total=self.frames, desc=desc, unit="frame"):
            if not ims:  # an image that did not decode (Ultralytics 8.4.0 yields an empty batch for it)
                continue
            path, image = paths[0], ims[0]
            index = None
            if path in self.videos:
                index = frame_numbers[path] = frame_numbers.get(path, 0) + 1
            yield Frame(path, index, image, letterboxed(image, self.letterbox, dtype, device))


def letterboxed(image: np.ndarray, letterbox: LetterBox, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """BGR HWC uint8 -> letterboxed RGB (1, 3, H, W) in [0, 1]."""
    im = letterbox(image=image)[..., ::-1].transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(im)).to(device, dtype).unsqueeze(0) / 255


def _video_info(path: str) -> tuple[int, float]:
    """(frames, fps) OpenCV announces for a video; SpikeInferError (one sentence) if unreadable or empty."""
    cap = cv2.VideoCapture(path)
    try:
        frames, fps = (int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), cap.get(cv2.CAP_PROP_FPS)) if cap.isOpened() else (0, 0)
    finally:
        cap.release()
    if frames <= 0:
        raise SpikeInferError(f"video {path} cannot be read or has no frames: replace or remove that file.")
    return frames, fps if fps > 0 else 25.0


def open_source(source: str | Path, imgsz: int) -> Source:
    """Ultralytics' loader over an image or video file, a folder or a glob; SpikeInferError for unusable input."""
    if not str(source).strip():
        raise SpikeInferError("--source is empty: pass an image or video file, a folder or a glob.")
    try:
        loader = LoadImagesAndVideos(str(source))
    except FileNotFoundError as e:
        if str(e).startswith("Failed to open video"):  # the loader opens the first video at once
            raise SpikeInferError(
                f"video {str(e).removeprefix('Failed to open video ')} cannot be read or has no frames: "
                "replace or remove that file."
            ) from e
        raise SpikeInferError(
            f"source {source} does not exist or holds no images or videos: pass an image or video file, "
            "a folder or a glob."
        ) from e
    if loader.cap:  # it opened the first video already; iterating reopens it (no close() before 8.4.x)
        loader.cap.release()
    videos = {v: _video_info(v) for v in loader.files[loader.ni :]}
    frames = loader.ni + sum(n for n, _ in videos.values())
    return Source(loader, LetterBox(imgsz, auto=False, stride=STRIDE), frames, videos)
