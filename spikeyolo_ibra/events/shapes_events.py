"""The built-in event set "shapes-events": moving, turning, breathing shapes seen by a simulated event camera.

Each recording lasts ``DURATION_US`` on a ``SIZE`` x ``SIZE`` sensor: 1 to ``MAX_OBJECTS`` shapes (classes of the
image set's :mod:`~spikeyolo_ibra.data.shapes`) move over a static textured background, bouncing off the borders,
turning and scaling. The scene is rendered every ``STEP_US`` (1 kHz) with anti-aliased edges; a pixel emits an event
each time its log intensity moves by its contrast threshold C (about 0.2, slightly different per pixel) from the level
of its last event: n = floor(|L - L_ref| / C) events of polarity sign(L - L_ref), their times spread linearly over the
render step. Background noise adds ``NOISE_HZ`` random events per pixel and second. Boxes are the tight boxes of the
shapes every ``LABEL_US``, in the Gen1 box format.

The raw recordings are written as a Gen1-layout root (``raw/{train,val,test}/<name>_td.dat`` + ``_bbox.npy``), then
converted by :func:`spikeyolo_ibra.events.gen1.convert`, so the built-in set takes the same path as Gen1. Recording
``k`` of the whole set is drawn from ``numpy.random.default_rng([seed, k])``: same seed, same events.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from ..atomic import sibling_dir, swap_in
from ..data.shapes import SHAPES_NAMES, _outline
from .dat import EVENT_DTYPE, write_dat
from .gen1 import Conversion, Protocol, convert

__all__ = ("CONVERSION", "NAMES", "build_shapes_events", "simulate")

SIZE = 64  # sensor width and height, pixels
CLASSES = ("circle", "square", "triangle", "cross")
NAMES = dict(enumerate(CLASSES))
DURATION_US, STEP_US, LABEL_US = 3_000_000, 1_000, 100_000
MAX_OBJECTS = 2
MIN_SIZE, MAX_SIZE = 14.0, 28.0  # longest side of a shape, pixels
SPEED = (30.0, 90.0)  # pixels per second
THRESHOLD, THRESHOLD_SPREAD = 0.2, 0.02  # log-intensity contrast threshold C, and its spread over pixels
NOISE_HZ = 1.0  # background events per pixel and second
MAX_PER_STEP = 8  # events one pixel may emit in one render step
SPLITS = {"train": 16, "val": 4, "test": 4}  # recordings per split
CONVERSION = Conversion(
    timesteps=2, window_us=50_000, height=SIZE, width=SIZE, protocol=Protocol(skip_us=100_000, min_diag=8, min_side=4)
)
MARKER = "shapes-events.json"
FORMAT_VERSION = 1  # bump when the simulation changes, so sets built by older code are rebuilt
_SUPER = 4  # supersampling of the coverage masks (anti-aliasing)
_EPS = 0.02  # log(I + eps): dark pixels do not explode


def _background(rng: np.random.Generator) -> np.ndarray:
    """Static texture in [0.35, 0.65]: smooth blotches plus fine grain, so moving edges reveal contrast."""
    blotches = cv2.resize(rng.uniform(0, 1, (6, 6)).astype(np.float32), (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
    grain = rng.uniform(0, 1, (SIZE, SIZE)).astype(np.float32)
    return 0.35 + 0.3 * np.clip(0.7 * blotches + 0.3 * grain, 0, 1)


class _Shape:
    """One object: its outline, and its position, angle and scale as functions of time."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.cls = int(rng.integers(len(CLASSES)))
        pts = _outline(SHAPES_NAMES.index(CLASSES[self.cls]), rng)
        self.outline = (pts - pts.mean(0)) / np.ptp(pts, 0).max()  # longest side 1, centred
        self.size = rng.uniform(MIN_SIZE, MAX_SIZE)
        self.breath, self.breath_hz, self.phase = rng.uniform(0.05, 0.25), rng.uniform(0.2, 1.0), rng.uniform(0, 6.3)
        self.angle, self.spin = rng.uniform(0, 2 * np.pi), rng.uniform(-2.0, 2.0)  # radians, radians per second
        self.start = rng.uniform(MAX_SIZE / 2 + 1, SIZE - MAX_SIZE / 2 - 1, 2)
        direction = rng.uniform(0, 2 * np.pi)
        self.velocity = rng.uniform(*SPEED) * np.array([np.cos(direction), np.sin(direction)])
        self.intensity = rng.choice([rng.uniform(0.05, 0.2), rng.uniform(0.8, 1.0)])

    def polygon(self, t_s: float) -> np.ndarray:
        """The outline in pixel coordinates at time ``t_s`` seconds; the centre bounces inside the sensor."""
        a = self.angle + self.spin * t_s
        rot = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
        scale = self.size * (1 + self.breath * np.sin(2 * np.pi * self.breath_hz * t_s + self.phase))
        lo, span = MAX_SIZE / 2 + 1, SIZE - MAX_SIZE - 2  # the centre moves in [lo, lo + span], reflected
        centre = np.abs((self.start - lo + self.velocity * t_s + span) % (2 * span) - span) + lo
        return self.outline @ rot * scale + centre


def _render(background: np.ndarray, shapes: list[_Shape], t_s: float) -> np.ndarray:
    """The intensity image at ``t_s``: shapes painted in order over the background, edges anti-aliased."""
    img = background.copy()
    for shape in shapes:
        mask = np.zeros((SIZE * _SUPER, SIZE * _SUPER), np.uint8)
        pts = np.round(shape.polygon(t_s) * _SUPER * 16).astype(np.int32)
        cv2.fillPoly(mask, [pts], 255, cv2.LINE_8, 4)
        cover = cv2.resize(mask, (SIZE, SIZE), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        img += cover * (shape.intensity - img)
    return img


def _boxes(shapes: list[_Shape], t_us: int, dtype: np.dtype) -> np.ndarray:
    """Gen1 box records of the shapes at ``t_us`` (tight boxes of their outlines)."""
    boxes = np.zeros(len(shapes), dtype)
    for i, shape in enumerate(shapes):
        pts = shape.polygon(t_us / 1e6)
        (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
        boxes[i] = (t_us, x0, y0, x1 - x0, y1 - y0, shape.cls, i, 1.0)
    return boxes


BOX_DTYPE = np.dtype(
    [
        ("t", "<u8"),
        ("x", "<f4"),
        ("y", "<f4"),
        ("w", "<f4"),
        ("h", "<f4"),
        ("class_id", "u1"),
        ("track_id", "<u4"),
        ("class_confidence", "<f4"),
    ]
)


def simulate(index: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Simulate recording ``index``: its events (time-ordered :data:`EVENT_DTYPE`) and its Gen1 box records."""
    rng = np.random.default_rng([seed, index])
    background = _background(rng)
    shapes = [_Shape(rng) for _ in range(rng.integers(1, MAX_OBJECTS + 1))]
    threshold = rng.normal(THRESHOLD, THRESHOLD_SPREAD, (SIZE, SIZE)).clip(0.1)
    reference = np.log(_render(background, shapes, 0.0) + _EPS)
    chunks = []
    for t0 in range(0, DURATION_US, STEP_US):
        level = np.log(_render(background, shapes, (t0 + STEP_US) / 1e6) + _EPS)
        diff = level - reference
        n = np.minimum(np.floor(np.abs(diff) / threshold), MAX_PER_STEP).astype(np.int64)
        ys, xs = np.nonzero(n)
        if ys.size == 0:
            continue
        counts = n[ys, xs]
        sign = np.sign(diff[ys, xs])
        reference[ys, xs] += sign * counts * threshold[ys, xs]
        k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + 1  # 1..n within each pixel
        fraction = k * np.repeat(threshold[ys, xs] / np.abs(diff[ys, xs]), counts)  # where the crossing happens
        chunk = np.empty(k.size, EVENT_DTYPE)
        chunk["t"] = t0 + np.minimum(fraction, 1.0) * (STEP_US - 1)
        chunk["x"], chunk["y"] = np.repeat(xs, counts), np.repeat(ys, counts)
        chunk["p"] = np.repeat(sign > 0, counts)
        chunks.append(chunk)
    n_noise = rng.poisson(NOISE_HZ * SIZE * SIZE * DURATION_US / 1e6)
    noise = np.empty(n_noise, EVENT_DTYPE)
    noise["t"] = rng.integers(0, DURATION_US, n_noise)
    noise["x"], noise["y"] = rng.integers(0, SIZE, (2, n_noise))
    noise["p"] = rng.integers(0, 2, n_noise)
    events = np.concatenate([*chunks, noise])
    events = events[np.argsort(events["t"], kind="stable")]
    boxes = np.concatenate([_boxes(shapes, t, BOX_DTYPE) for t in range(LABEL_US, DURATION_US, LABEL_US)])
    return events, boxes


def _write_recording(raw: Path, split: str, index: int, seed: int) -> None:
    events, boxes = simulate(index, seed)
    write_dat(raw / split / f"shapes_{index:03d}_td.dat", events, SIZE, SIZE)
    np.save(raw / split / f"shapes_{index:03d}_bbox.npy", boxes)


def _marker(root: Path) -> dict | None:
    try:
        return json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return None


def build_shapes_events(root: str | Path, seed: int = 0, workers: int | None = 2) -> Path:
    """Build the set at ``root`` unless it is already there with the same parameters; return ``root``.

    The raw Gen1-layout recordings go to ``root/raw``; the converted set (``images``, ``labels``, ``annotations``,
    ``shapes-events.yaml``) to ``root``. Built in a folder beside ``root`` and renamed into place, so ``root`` is
    absent or complete; a non-empty ``root`` without our marker is refused.
    """
    root = Path(root)
    params = {"format": FORMAT_VERSION, "seed": seed, "splits": SPLITS, "conversion": CONVERSION.record()}
    if _marker(root) == params:
        return root
    if _marker(root) is None and root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty and holds no shapes-events set ({MARKER} missing), not touching it")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = sibling_dir(root, "tmp")
    try:
        jobs, index = [], 0
        for split, count in SPLITS.items():
            (tmp / "raw" / split).mkdir(parents=True)
            for _ in range(count):
                index += 1
                jobs.append((tmp / "raw", split, index, seed))
        if workers:
            with ProcessPoolExecutor(workers) as pool:
                list(pool.map(_write_recording, *zip(*jobs, strict=True)))
        else:
            for job in jobs:
                _write_recording(*job)
        note = f"shapes-events, seed {seed}: built by spikeyolo_ibra.events.shapes_events"
        convert(
            tmp / "raw", tmp, CONVERSION, workers=workers or 0, names=NAMES, yaml_name="shapes-events.yaml", note=note
        )
        (tmp / MARKER).write_text(json.dumps(params))
        if _marker(root) == params:  # another process finished the same build meanwhile
            return root
        swap_in(tmp, root)
    except OSError:
        if _marker(root) != params:
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m spikeyolo_ibra.events.shapes_events --root DIR``."""
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True, type=Path, help="data set folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="processes (0: none)")
    a = p.parse_args(argv)
    print(build_shapes_events(a.root, a.seed, a.workers))


if __name__ == "__main__":
    main()
