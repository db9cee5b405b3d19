"""Annotated videos: each frame shows the detections, where the spikes went, and energy and firing rate over time.

A frame of the output is ``[detections | SOP map over the frame]`` above a strip with two curves over the frames so
far: the SNN's energy per frame (µJ) and the network's firing rate (spikes / (neurons x T x P), in %). The SOP map's
colour scale is fixed per video (the largest value seen so far), so brightness compares across frames. Written with
OpenCV's ``mp4v`` codec (MPEG-4 part 2: VLC, ffplay and OpenCV read it; browsers may not play it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..errors import SpikeInferError
from . import units

__all__ = ("AnnotatedVideo", "VideoSet")

MIN_WIDTH = 640  # output frames are at least this wide, so the strip's labels stay readable


class _Strip:
    """A matplotlib strip redrawn per frame: energy per frame and firing rate over the frames so far."""

    def __init__(self, width: int, frames: int) -> None:
        dpi = 100
        self.fig = Figure(figsize=(width / dpi, max(width / 4.5, 150) / dpi), dpi=dpi)
        self.canvas = FigureCanvasAgg(self.fig)  # drawn into memory, whatever backend pyplot has
        self.energy_ax = self.fig.subplots()
        self.rate_ax = self.energy_ax.twinx()
        (self.energy,) = self.energy_ax.plot([], [], color="tab:orange", marker=".", label="SNN energy")
        (self.rate,) = self.rate_ax.plot([], [], color="tab:purple", marker=".", label="firing rate")
        self.energy_ax.set(xlabel="frame", ylabel="energy (µJ)", xlim=(0.5, max(frames, 2) + 0.5))
        self.rate_ax.set_ylabel("firing rate (%)")
        self.energy_ax.legend(handles=[self.energy, self.rate], loc="lower left", fontsize=8)
        self.energy_ax.set_title("frame", fontsize=9, loc="left")  # room for the per-frame title
        self.fig.tight_layout()

    def draw(self, energy_uj: list[float], rate_pct: list[float]) -> np.ndarray:
        """The strip as a BGR image for the curves so far."""
        x = np.arange(1, len(energy_uj) + 1)
        self.energy.set_data(x, energy_uj)
        self.rate.set_data(x, rate_pct)
        left, right = self.energy_ax.get_xlim()
        if len(x) > right:  # OpenCV announced fewer frames than the video has
            self.energy_ax.set_xlim(left, len(x) + 0.5)
        for ax, values in ((self.energy_ax, energy_uj), (self.rate_ax, rate_pct)):
            ax.set_ylim(0, max(values) * 1.15 or 1)
        self.energy_ax.set_title(
            f"frame {len(x)}: {energy_uj[-1]:.3g} µJ, firing rate {rate_pct[-1]:.3g} %", fontsize=9, loc="left"
        )
        self.canvas.draw()
        return cv2.cvtColor(np.asarray(self.canvas.buffer_rgba()), cv2.COLOR_RGBA2BGR)


def _heat(image: np.ndarray, sops: np.ndarray, vmax: float) -> np.ndarray:
    """The frame in grey with its SOP map blended over it (OpenCV's inferno colour map, 0..vmax)."""
    level = (np.clip(sops / vmax * 255, 0, 255) if vmax > 0 else np.zeros_like(sops)).astype(np.uint8)
    colour = cv2.applyColorMap(level, cv2.COLORMAP_INFERNO)
    grey = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    return cv2.addWeighted(grey, 0.4, colour, 0.6, 0)


def _label(frame: np.ndarray, text: str, x: int) -> None:
    """White text on a dark box at the top of ``frame``, from column x (in place)."""
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
    cv2.rectangle(frame, (x - 4, 2), (x + w + 4, h + base + 8), (0, 0, 0), -1)
    cv2.putText(frame, text, (x, h + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)


@dataclass
class AnnotatedVideo:
    """One output video; each frame is written as it comes (only the last is kept, for the poster)."""

    path: Path
    fps: float
    frames: int  # expected, for the strip's x axis
    energy_uj: list[float] = field(default_factory=list)
    rate_pct: list[float] = field(default_factory=list)
    vmax: float = 0.0
    last: np.ndarray | None = None
    _size: tuple[int, int] | None = None  # (w, h) of the input frames
    _writer: cv2.VideoWriter | None = None
    _strip: _Strip | None = None

    def add(self, annotated: np.ndarray, image: np.ndarray, sops: np.ndarray, snn_mj: float, rate: float) -> None:
        """Write one frame: ``annotated`` (BGR, detections drawn), the original ``image``, its SOP map and figures."""
        if self._size is None:
            self._size = (image.shape[1], image.shape[0])
        if (image.shape[1], image.shape[0]) != self._size:  # frames of a folder may differ in size
            annotated, image = (cv2.resize(a, self._size) for a in (annotated, image))
            sops = cv2.resize(sops, self._size, interpolation=cv2.INTER_AREA)
        self.vmax = max(self.vmax, float(np.percentile(sops, 99.5)))
        top = np.hstack([annotated, _heat(image, sops, self.vmax)])
        width = max(top.shape[1], MIN_WIDTH)
        width += width % 2  # codecs want even sizes
        top = cv2.resize(top, (width, round(top.shape[0] * width / top.shape[1] / 2) * 2))
        _label(top, f"SOPs per pixel: black 0, yellow {units.count(self.vmax)} or more", width // 2 + 6)
        self.energy_uj.append(snn_mj * 1e3)
        self.rate_pct.append(rate * 100)
        if self._strip is None:
            self._strip = _Strip(width, self.frames)
        strip = self._strip.draw(self.energy_uj, self.rate_pct)
        frame = np.vstack([top, cv2.resize(strip, (width, strip.shape[0] // 2 * 2))])
        if self._writer is None:
            self._writer = cv2.VideoWriter(
                str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, frame.shape[1::-1]
            )
            if not self._writer.isOpened():
                raise SpikeInferError(f"OpenCV cannot write {self.path.name} with the mp4v codec here: pass images.")
        self._writer.write(frame)
        self.last = frame

    def close(self) -> None:
        """Finish the file."""
        if self._writer is not None:
            self._writer.release()


class VideoSet:
    """The videos of one run, keyed by their source (a video file, or the whole ``--source`` as one stream)."""

    def __init__(self, folder: Path) -> None:
        """Write into ``folder``."""
        self.folder = folder
        self.videos: dict[str, AnnotatedVideo] = {}

    def open(self, key: str, fps: float, frames: int) -> AnnotatedVideo:
        """The video of ``key``, opened at ``fps`` with ``frames`` expected on first use (``<stem>.mp4``)."""
        if key not in self.videos:
            stem = Path(key).stem or "stream"
            taken = {v.path.name for v in self.videos.values()}
            name = f"{stem}.mp4" if f"{stem}.mp4" not in taken else f"{stem}-{len(taken)}.mp4"
            self.videos[key] = AnnotatedVideo(self.folder / name, fps, frames)
        return self.videos[key]

    def close(self) -> list[dict]:
        """Finish every video and save its last frame as a poster; their report entries (once: then empty)."""
        entries = []
        for key, v in self.videos.items():
            v.close()
            poster = v.path.with_name(f"{v.path.stem}-last.jpg")
            cv2.imwrite(str(poster), v.last)
            entries.append(
                {"source": key, "file": v.path.name, "poster": poster.name, "frames": len(v.energy_uj), "fps": v.fps}
            )
        self.videos = {}
        return entries
