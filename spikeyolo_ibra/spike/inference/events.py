"""Event-camera samples as a source: converted samples (2T-page TIFFs) or windows of a Prophesee ``.dat`` recording.

A sample is ``(T, 2, H, W)`` uint8 counts, bin 0 the earliest, channel 0 OFF (:mod:`spikeyolo_ibra.events`). Its
network input is the sample as the 2T channels ``2k + p`` (the layout the model was trained on, never reordered),
letterboxed like ``yolo predict`` does for an event model: resized with the bilinear filter and padded with 0,
"no event", then divided by 255. The picture detections are drawn on is :func:`colour` of the sample.

A recording is binned here with :func:`~spikeyolo_ibra.events.to_frames`: one sample per ``t_end`` (microseconds),
the window ``[t_end - window_us, t_end)`` cut into T bins, T being the model's neuron T (a model reads the number of
bins it was trained with); the sensor size is the ``.dat`` header's, or ``sensor``.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch
from ultralytics.data.augment import LetterBox
from ultralytics.data.utils import IMG_FORMATS, VID_FORMATS

from ...events import load_sample, read_dat, to_frames
from ...events.dat import read_dat_header
from ...events.dataset import VALID, EventBorders
from ...events.errors import EventDataError
from ..errors import SettingError, SpikeInferError
from .sources import SOURCE_KINDS, STRIDE, Frame

__all__ = ("EventRecording", "EventSamples", "colour", "event_input", "open_events")

SAMPLE_SUFFIXES = (".tif", ".tiff")
ON_BGR, OFF_BGR = (0, 0, 255), (255, 0, 0)  # ON red, OFF blue, on black


def colour(frames: np.ndarray, full: float | None = None) -> np.ndarray:
    """(T, 2, H, W) or (2, H, W) counts -> BGR (H, W, 3) uint8: ON red, OFF blue, black where nothing happened.

    Counts are summed over the bins given and scaled so that ``full`` counts (default: the 99th percentile of the
    non-zero counts) are full brightness: v = min(255, 255 * n / full).
    """
    counts = frames.reshape(-1, 2, *frames.shape[-2:]).sum(0, dtype=np.float64)
    if full is None:
        nonzero = counts[counts > 0]
        full = float(np.percentile(nonzero, 99)) if nonzero.size else 1.0
    scale = 255 / max(full, 1.0)
    off, on = (np.minimum(255, c * scale) for c in counts)
    picture = np.zeros((*counts.shape[1:], 3), np.float64)
    for level, bgr in ((off, OFF_BGR), (on, ON_BGR)):
        picture += level[..., None] * (np.array(bgr) / 255)
    return np.clip(picture, 0, 255).astype(np.uint8)


def event_input(frames: np.ndarray, letterbox: LetterBox, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(T, 2, H, W) counts -> the network input (1, 2T, imgsz, imgsz) in [0, 1], padded with 0 as ``yolo predict``.

    The stock letterbox runs on the sample with a plane of 255s appended; where it fills 114 that plane says so and
    :class:`~spikeyolo_ibra.events.dataset.EventBorders` sets the events there to 0 (the training loader's rule).
    """
    t, two, h, w = frames.shape
    hwc = frames.reshape(t * two, h, w).transpose(1, 2, 0)
    planes = np.concatenate([hwc, np.full((h, w, 1), VALID, np.uint8)], axis=2)
    boxed = EventBorders()({"img": letterbox(image=planes)})["img"].transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(boxed)).to(device, dtype).unsqueeze(0) / 255


def _frame(path: str, index: int | None, frames: np.ndarray, letterbox: LetterBox, dtype, device) -> Frame:
    return Frame(path, index, colour(frames), event_input(frames, letterbox, dtype, device), events=frames)


def _pages(path: str) -> int:
    """Pages of an image file as OpenCV counts them (0 if it cannot tell)."""
    try:
        return cv2.imcount(path)
    except cv2.error:
        return 0


def _sample_files(text: str) -> list[str] | None:
    """The sample files ``text`` names (a .tif, a folder or a glob of them), or None if it names none.

    Samples are TIFFs of two or more pages (a TIFF picture has one). Other files beside them (``cache=disk``'s
    ``.npy``, label caches) are passed over; pictures or videos beside them are refused, one kind per run.
    """
    path = Path(text)
    if path.is_dir():
        files = sorted(str(p) for p in path.iterdir() if p.is_file())
    elif any(c in text for c in "*?["):
        files = sorted(glob.glob(text))
    else:
        files = [text] if path.is_file() else []
    samples = [f for f in files if Path(f).suffix.lower() in SAMPLE_SUFFIXES]
    if not samples or _pages(samples[0]) < 2:
        return None
    media = [f for f in files if f not in samples and Path(f).suffix[1:].lower() in IMG_FORMATS | VID_FORMATS]
    if media:
        raise SpikeInferError(
            f"{text} holds event samples and pictures or videos ({Path(media[0]).name}): pass each kind on its own."
        )
    return samples


class EventSamples:
    """Converted event samples (:func:`~spikeyolo_ibra.events.save_sample` TIFFs), one frame each, in name order."""

    def __init__(self, files: list[str], imgsz: int) -> None:
        """Read ``files`` one at a time when iterated."""
        self.files, self.frames = files, len(files)
        self.letterbox = LetterBox(imgsz, auto=False, stride=STRIDE)

    def read(self, dtype: torch.dtype, device: torch.device) -> Iterator[Frame]:
        """Every sample in order; SpikeInferError (one sentence) for a file that is not an event sample."""
        for f in self.files:
            try:
                frames = load_sample(f)
            except EventDataError as e:
                raise SpikeInferError(str(e)) from None
            except ValueError:  # pages of different sizes do not stack
                raise SpikeInferError(
                    f"{f} is not an event sample (its pages differ in size): convert the events again."
                ) from None
            yield _frame(f, None, frames, self.letterbox, dtype, device)


class EventRecording:
    """Windows of a Prophesee ``.dat`` recording, one frame per window end, binned into the model's T bins.

    :meth:`configure` (``open_source``'s options) gives the window ends and length; :meth:`bind` (the run) the T bins.
    """

    def __init__(self, path: str, imgsz: int) -> None:
        """Check the file's header now; its events are read when the frames are."""
        self.path, self.files = path, [path]
        self.letterbox = LetterBox(imgsz, auto=False, stride=STRIDE)
        try:
            _, self.header = read_dat_header(path)
        except EventDataError as e:
            raise SpikeInferError(str(e)) from None
        self.t_end: list[int] = []
        self.window_us = 0
        self.sensor: tuple[int, int] | None = None  # (height, width)
        self.timesteps: int | None = None
        self.frames = 0

    def configure(
        self, t_end: list[int] | int | None = None, window_ms: float | None = None, sensor: str | None = None
    ) -> None:
        """Window ends ``t_end`` (microseconds), length ``window_ms``, ``sensor`` "WxH" if the header gives none.

        SettingError (one sentence) for what is missing or unusable.
        """
        ends = [t_end] if isinstance(t_end, int) else list(t_end or [])
        if not ends:
            raise SettingError(
                "t_end",
                None,
                f" is needed for the recording {self.path}: give the end of the window to run, in "
                "microseconds from the start of the recording",
                example=1_000_000,
            )
        if window_ms is None or not window_ms > 0:
            problem = " is needed" if window_ms is None else " is not a positive length"
            raise SettingError(
                "window_ms",
                window_ms,
                f"{problem} to cut windows from {self.path}: give the window the model was trained on (its data "
                "YAML's events.window_ms), in milliseconds",
                example=50,
            )
        self.window_us = round(window_ms * 1000)
        if any(t < self.window_us for t in ends):
            raise SettingError(
                "t_end",
                min(ends),
                f" is earlier than the {window_ms:g} ms window, which would start before the recording",
                example=self.window_us,
            )
        self.t_end, self.frames = ends, len(ends)
        self.sensor = _sensor(self.path, self.header, sensor)

    def bind(self, timesteps: int) -> None:
        """Bin into ``timesteps`` bins (the model's neuron T)."""
        if self.window_us < timesteps:
            raise SettingError("window_ms", self.window_us / 1000, f" is shorter than {timesteps} microseconds")
        self.timesteps = timesteps

    def read(self, dtype: torch.dtype, device: torch.device) -> Iterator[Frame]:
        """One frame per window end, in the order given; the recording is read once."""
        if self.timesteps is None or not self.t_end:
            raise RuntimeError("an event recording needs configure() and bind() before read().")
        try:
            events = read_dat(self.path)
        except EventDataError as e:
            raise SpikeInferError(str(e)) from None
        height, width = self.sensor
        for end in self.t_end:
            frames = to_frames(events, end, self.window_us, self.timesteps, height, width)
            p = Path(self.path)  # rec_td.dat at 1.5 s: rec_td@1500000us.dat (a still: one card per window)
            label = str(p.with_name(f"{p.stem}@{end}us{p.suffix}"))
            yield _frame(label, None, frames, self.letterbox, dtype, device)


def _sensor(path: str, header: dict[str, str], sensor: str | None) -> tuple[int, int]:
    """(height, width): ``sensor`` ("WIDTHxHEIGHT") if given, else the ``.dat`` header's; SettingError otherwise."""
    if sensor is not None:
        width, _, height = sensor.lower().partition("x")
        if not (width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
            raise SettingError("sensor", sensor, " is not WIDTHxHEIGHT in pixels", example="304x240")
        return int(height), int(width)
    height, width = header.get("Height", ""), header.get("Width", "")
    if height.isdigit() and width.isdigit():
        return int(height), int(width)
    raise SettingError(
        "sensor",
        None,
        f" is needed: {path} declares no sensor size (no % Height / % Width header lines); give "
        "the camera's WIDTHxHEIGHT",
        example="304x240",
    )


def open_events(text: str, imgsz: int) -> EventSamples | EventRecording | None:
    """The event source ``text`` names (a ``.dat`` file; a sample, a folder or a glob of samples), else None."""
    if text.lower().endswith(".dat"):
        if not Path(text).is_file():
            raise SpikeInferError(f"recording {text} does not exist: pass an existing Prophesee .dat file.")
        return EventRecording(text, imgsz)
    files = _sample_files(text)
    return EventSamples(files, imgsz) if files else None


if open_events not in SOURCE_KINDS:
    SOURCE_KINDS.insert(0, open_events)  # before Ultralytics' images, which would take a TIFF as a picture
