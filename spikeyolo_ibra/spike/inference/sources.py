"""What a run reads: frames from a source, each with the original picture and the network input.

A :class:`Source` yields :class:`Frame` s. Two kinds are built in:

- :class:`ImagesAndVideos`: an image or video file, a folder or a glob, read by Ultralytics' ``LoadImagesAndVideos``
  and letterboxed; a video's frames belong to a :class:`Clip` (one annotated video per input video).
- :class:`Stream`: any source's frames, numbered 1..n, as one clip at a chosen frame rate (a folder of frames).

Another kind is a class with ``frames``, ``files`` and :meth:`Source.read`, and an opener in :data:`SOURCE_KINDS`
that recognises its paths; :func:`open_source` asks each opener in turn, and the inference loop reads every kind the
same way. Event-camera samples and recordings (:mod:`.events`) are such a kind. A kind that takes options (a
recording's window) has ``configure(**options)``, which :func:`open_source` calls with them; one that depends on the
model (a recording binned into the model's T bins) has ``bind(timesteps)``, which the run calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch
from ultralytics.data.augment import LetterBox
from ultralytics.data.loaders import LoadImagesAndVideos

from ..errors import SettingError, SpikeInferError

__all__ = (
    "SOURCE_KINDS",
    "STRIDE",
    "Clip",
    "Frame",
    "ImagesAndVideos",
    "Source",
    "Stream",
    "letterboxed",
    "open_source",
)

STRIDE = 32  # the detector's largest stride: a letterbox size must be a multiple of it


@dataclass(frozen=True)
class Clip:
    """The video a frame belongs to: its key (a video file, or a whole source as one stream), length and rate."""

    key: str
    frames: int  # as announced before reading (OpenCV's count for a file)
    fps: float


@dataclass
class Frame:
    """One input of the network: where it came from, the picture to draw on, and the network input."""

    path: str
    index: int | None  # frame number in its clip (1-based), None for a still image
    image: np.ndarray  # BGR HWC uint8, the picture detections are drawn on and mapped back to
    x: torch.Tensor  # (1, C, H, W): the network input, letterboxed to the run's size
    clip: Clip | None = None
    events: np.ndarray | None = None  # an event sample's (T, 2, H, W) counts, bin 0 the earliest (image = a picture)


class Source(Protocol):
    """Frames to run, in order; how many to expect; the files they come from."""

    frames: int  # expected frames (progress bar, a video's time axis)
    files: list[str]  # the files named by the source, each of which must give at least one frame

    def read(self, dtype: torch.dtype, device: torch.device) -> Iterator[Frame]:
        """Every frame in order, its input in ``dtype`` on ``device``; SpikeInferError for a file that gives none."""
        ...


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


class ImagesAndVideos:
    """Images and videos through Ultralytics' loader, letterboxed to ``imgsz``."""

    def __init__(self, source: str, imgsz: int) -> None:
        """Open ``source`` (an image or video file, a folder or a glob); SpikeInferError for unusable input."""
        try:
            self.loader = LoadImagesAndVideos(source)
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
        if self.loader.cap:  # it opened the first video already; iterating reopens it (no close() before 8.4.x)
            self.loader.cap.release()
        self.files: list[str] = self.loader.files  # images first (the loader's order)
        self.clips = {v: Clip(v, *_video_info(v)) for v in self.files[self.loader.ni :]}
        self.frames = self.loader.ni + sum(c.frames for c in self.clips.values())
        self.letterbox = LetterBox(imgsz, auto=False, stride=STRIDE)

    def read(self, dtype: torch.dtype, device: torch.device) -> Iterator[Frame]:
        """Every image and video frame in order; SpikeInferError at the end for an image that did not decode."""
        seen: set[str] = set()
        numbers: dict[str, int] = {}
        for paths, ims, _ in self.loader:
            if not ims:  # an image that did not decode (Ultralytics 8.4.0 yields an empty batch for it)
                continue
            path, image = paths[0], ims[0]
            seen.add(path)
            clip = self.clips.get(path)
            if clip is not None:
                numbers[path] = numbers.get(path, 0) + 1
            index = numbers[path] if clip is not None else None
            yield Frame(path, index, image, letterboxed(image, self.letterbox, dtype, device), clip)
        missing = sorted(set(self.files) - seen)
        if missing:
            raise SpikeInferError(f"image {missing[0]} could not be decoded: replace or remove that file.")


class Stream:
    """Every frame of another source, numbered 1..n, as one clip keyed by ``name`` at ``fps``."""

    def __init__(self, source: Source, name: str, fps: float) -> None:
        """Wrap ``source``."""
        if not fps > 0:
            raise SettingError("fps", fps, " is not a positive number of frames per second", example=10)
        self.source, self.files, self.frames = source, source.files, source.frames
        self.clip = Clip(name, source.frames, fps)

    def bind(self, timesteps: int) -> None:
        """Tell the wrapped source the model's T, if it needs it."""
        bind = getattr(self.source, "bind", None)
        if bind is not None:
            bind(timesteps)

    def read(self, dtype: torch.dtype, device: torch.device) -> Iterator[Frame]:
        """The wrapped source's frames, each in the one clip."""
        for n, frame in enumerate(self.source.read(dtype, device), 1):
            frame.index, frame.clip = n, self.clip
            yield frame


#: Openers of source kinds, asked in order: each returns a Source for a source it recognises, else None.
#: Ultralytics' images and videos come last and take everything else.
SOURCE_KINDS: list[Callable[[str, int], Source | None]] = [ImagesAndVideos]


def open_source(source: str | Path, imgsz: int, stream: bool = False, fps: float = 10.0, **options: object) -> Source:
    """The :class:`Source` that ``source`` names (``stream``: all its frames as one clip at ``fps``).

    ``options`` (those not None) go to the kind's ``configure``, e.g. an event recording's ``t_end`` and
    ``window_ms``; SettingError if the kind takes none.
    """
    text = str(source).strip()
    if not text:
        raise SettingError("source", None, " is empty: pass an image or video file, a folder or a glob.")
    opened = next(s for opener in SOURCE_KINDS if (s := opener(text, imgsz)) is not None)
    given = {k: v for k, v in options.items() if v is not None}
    configure = getattr(opened, "configure", None)
    if configure is not None:
        configure(**given)
    elif given:
        name = next(iter(given))
        raise SettingError(name, None, f" applies to an event recording (.dat) only: leave it out for {text}.")
    return Stream(opened, str(source), fps) if stream else opened
