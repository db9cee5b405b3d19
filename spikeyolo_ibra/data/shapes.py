"""The built-in "shapes" detection benchmark: a small, deterministic, honest synthetic data set.

Each image shows 1 to ``MAX_OBJECTS`` filled shapes of 6 classes on a cluttered background (colour gradient,
low-frequency blotches, thin line and curve distractors that are not objects, pixel noise, JPEG artefacts). An object's
longest side is log-uniform in [``MIN_SIZE``, ``MAX_SIZE``] of the image side. Objects may overlap, but a later object
is only placed if every earlier one keeps at least ``MIN_VISIBLE`` of its area visible. Every box is the tight box of
the object's *visible* pixel mask, the
same mask that paints the image, so labels never claim pixels that are not drawn.

Two levels (``LEVELS``) draw the same classes the same way and differ only in sizes, counts and clutter: ``full``, the
benchmark, and ``demo``, larger objects, fewer per image and fewer distractors, sized for a detector trained in a few
CPU minutes (``make demo``). Each level is its own data set with its own train and val split.

Image ``k`` (1-based, unique over both splits) is drawn from ``numpy.random.default_rng([seed, k])``: same seed, same
data, whatever the split sizes. The data is written in both YOLO and COCO layouts::

    root/images/{train,val}/000000000001.jpg         numeric names, so image_id = int(stem) as Ultralytics assumes
    root/labels/{train,val}/000000000001.txt         "class cx cy w h", normalised to [0, 1]
    root/annotations/instances_{train,val}2017.json  bbox [x, y, w, h] in pixels, category_id = class + 1
    root/shapes.json                                 marker: generator version and parameters, written last
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from ..atomic import sibling_dir, swap_in

SHAPES_NAMES: list[str] = ["circle", "square", "triangle", "star", "ellipse", "cross"]


@dataclass(frozen=True)
class Level:
    """How hard a shapes set is: object sizes, objects per image and clutter (the drawing itself is shared)."""

    min_size: float  # longest object side, as a fraction of the image side (log-uniform in [min_size, max_size])
    max_size: float
    max_objects: int  # objects per image: 1 to max_objects
    min_lines: int  # thin line/curve distractors per background: min_lines to max_lines
    max_lines: int


LEVELS: dict[str, Level] = {
    # The benchmark, sized for training at 64 pixels: the smallest object is then 16 pixels, two P3 cells.
    "full": Level(min_size=0.25, max_size=0.65, max_objects=3, min_lines=1, max_lines=6),
    "demo": Level(min_size=0.4, max_size=0.75, max_objects=2, min_lines=0, max_lines=2),
}
FULL = LEVELS["full"]
MIN_SIZE, MAX_SIZE = FULL.min_size, FULL.max_size
MAX_OBJECTS = FULL.max_objects
MIN_LINES, MAX_LINES = FULL.min_lines, FULL.max_lines
MIN_VISIBLE = 0.7  # fraction of an object's area that must stay visible under later objects
MIN_CONTRAST = 90.0  # least L2 distance (0-255 BGR) between an object's colour and the mean background under it
MARKER = "shapes.json"
FORMAT_VERSION = 3  # bump when the drawing changes, so datasets built by older code are rebuilt

_PLACE_TRIES = 30
_SHIFT = 4  # sub-pixel bits for cv2.fillPoly


def _outline(cls: int, rng: np.random.Generator) -> np.ndarray:
    """Return the unrotated, unscaled outline of class ``cls`` as an (N, 2) float polygon centred near 0."""
    name = SHAPES_NAMES[cls]
    if name in {"circle", "ellipse"}:
        t = np.linspace(0, 2 * np.pi, 72, endpoint=False)
        minor = 1.0 if name == "circle" else rng.uniform(0.35, 0.6)  # ellipses are clearly not circles
        return np.stack([np.cos(t), minor * np.sin(t)], 1)
    if name == "square":
        return np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)], float)
    if name == "triangle":
        h = rng.uniform(0.75, 1.3)  # height / half-base varies the aspect
        return np.array([(rng.uniform(-0.3, 0.3), -h), (1, h), (-1, h)], float)
    if name == "star":
        t = np.linspace(0, 2 * np.pi, 10, endpoint=False) - np.pi / 2
        r = np.where(np.arange(10) % 2 == 0, 1.0, rng.uniform(0.38, 0.5))
        return np.stack([r * np.cos(t), r * np.sin(t)], 1)
    t = rng.uniform(0.22, 0.38)  # cross: arm half-thickness
    return np.array(
        [(-t, -1), (t, -1), (t, -t), (1, -t), (1, t), (t, t), (t, 1), (-t, 1), (-t, t), (-1, t), (-1, -t), (-t, -t)]
    )


def _polygon(cls: int, imgsz: int, rng: np.random.Generator, level: Level = FULL) -> np.ndarray:
    """Return a randomly rotated, scaled and placed outline, fully inside the image, in pixel coordinates."""
    pts = _outline(cls, rng)
    a = rng.uniform(0, 2 * np.pi)
    pts = pts @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    size = imgsz * np.exp(rng.uniform(np.log(level.min_size), np.log(level.max_size)))  # log-uniform longest side
    pts = (pts - pts.min(0)) * (size / np.ptp(pts, 0).max())
    return pts + rng.uniform(0, imgsz - 1 - pts.max(0))


def _background(imgsz: int, rng: np.random.Generator, level: Level = FULL) -> np.ndarray:
    """Return a float32 BGR clutter image: gradient, blotches and thin line/curve distractors."""
    c0, c1 = rng.uniform(0, 255, (2, 3)).astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    cos, sin = float(np.cos(a)), float(np.sin(a))
    u = np.arange(imgsz, dtype=np.float32) / imgsz
    ramp = (u * cos + u[:, None] * sin - min(0, cos) - min(0, sin)) / (abs(cos) + abs(sin))  # 0..1 along direction a
    img = c0 + (c1 - c0) * ramp[..., None]
    img += cv2.resize(rng.normal(0, 25, (5, 5, 3)).astype(np.float32), (imgsz, imgsz), interpolation=cv2.INTER_CUBIC)
    for _ in range(rng.integers(level.min_lines, level.max_lines + 1)):
        colour = rng.uniform(0, 255, 3).tolist()
        thickness = int(rng.integers(1, 3))
        pts = rng.uniform(-0.1, 1.1, (int(rng.integers(2, 6)), 2)) * imgsz
        cv2.polylines(img, [np.round(pts).astype(np.int32)], False, colour, thickness, cv2.LINE_AA)
    return img


def _paint(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> None:
    """Fill ``mask`` in ``img`` with a linearly shaded colour that contrasts with the background under it."""
    under = img[mask].mean(0)
    colours = rng.uniform(0, 255, (10, 3))
    colour = colours[np.argmax(np.linalg.norm(colours - under, axis=1) >= MIN_CONTRAST)]  # first that contrasts
    if np.linalg.norm(colour - under) < MIN_CONTRAST:
        colour = 255.0 - under  # no random draw contrasted: take the complement
    ys, xs = np.nonzero(mask)
    a = rng.uniform(0, 2 * np.pi)
    d = xs * np.cos(a) + ys * np.sin(a)
    shade = 1 + rng.uniform(-0.2, 0.2) * (d - d.mean()) / max(np.ptp(d), 1.0)  # +-10% across the object
    img[ys, xs] = colour * shade[:, None]


def render(
    image_id: int, imgsz: int, seed: int, level: Level = FULL
) -> tuple[np.ndarray, list[tuple[int, list[int], int]]]:
    """Draw one image.

    Args:
        image_id: 1-based image number; with ``seed`` and ``level`` it fully determines the image.
        imgsz: Image side in pixels.
        seed: Data set seed.
        level: Object sizes, counts and clutter.

    Returns:
        The uint8 BGR image and its objects as ``(class, [x, y, w, h], visible_area)``, bottom to top, where the box is
        the tight box of the visible mask in pixel-edge coordinates: pixel ``i`` spans ``[i, i + 1)``.

    """
    rng = np.random.default_rng([seed, image_id])
    img = _background(imgsz, rng, level)
    classes, visible, areas = [], [], []
    for _ in range(rng.integers(1, level.max_objects + 1)):
        cls = int(rng.integers(len(SHAPES_NAMES)))
        for _ in range(_PLACE_TRIES):
            mask = np.zeros((imgsz, imgsz), np.uint8)
            pts = np.round(_polygon(cls, imgsz, rng, level) * (1 << _SHIFT)).astype(np.int32)
            cv2.fillPoly(mask, [pts], 1, cv2.LINE_8, _SHIFT)
            mask = mask.astype(bool)
            still = [v & ~mask for v in visible]
            if mask.sum() >= 16 and all(s.sum() >= MIN_VISIBLE * a for s, a in zip(still, areas, strict=True)):
                _paint(img, mask, rng)
                classes.append(cls)
                visible = [*still, mask]
                areas.append(int(mask.sum()))
                break
    img += rng.uniform(2, 10) * rng.standard_normal(img.shape, np.float32)
    objects = []
    for cls, v in zip(classes, visible, strict=True):
        ys, xs = np.nonzero(v)
        x0, y0 = int(xs.min()), int(ys.min())
        objects.append((cls, [x0, y0, int(xs.max()) + 1 - x0, int(ys.max()) + 1 - y0], int(v.sum())))
    return np.clip(img, 0, 255).astype(np.uint8), objects


def _write_split(root: Path, split: str, ids: range, imgsz: int, seed: int, level: Level) -> None:
    """Write the images, YOLO labels and COCO JSON of one split."""
    (root / "images" / split).mkdir(parents=True)
    (root / "labels" / split).mkdir(parents=True)
    images, annotations = [], []
    for image_id in ids:
        img, objects = render(image_id, imgsz, seed, level)
        name = f"{image_id:012d}"
        quality = int(np.random.default_rng([seed, image_id, 1]).integers(80, 96))
        cv2.imwrite(str(root / "images" / split / f"{name}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        lines = [
            f"{c} {(x + w / 2) / imgsz:.6f} {(y + h / 2) / imgsz:.6f} {w / imgsz:.6f} {h / imgsz:.6f}"
            for c, (x, y, w, h), _ in objects
        ]
        (root / "labels" / split / f"{name}.txt").write_text("".join(f"{line}\n" for line in lines))
        images.append({"id": image_id, "file_name": f"{name}.jpg", "width": imgsz, "height": imgsz})
        for c, box, area in objects:
            ann = {"image_id": image_id, "category_id": c + 1, "bbox": box, "area": area, "iscrowd": 0}
            annotations.append({"id": len(annotations) + 1, **ann})
    coco = {
        "info": {"description": f"spikeyolo_ibra shapes, {split}, seed {seed}"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": n, "supercategory": "shape"} for i, n in enumerate(SHAPES_NAMES)],
    }
    (root / "annotations").mkdir(exist_ok=True)
    (root / "annotations" / f"instances_{split}2017.json").write_text(json.dumps(coco))


def _marker(root: Path) -> dict[str, Any] | None:
    """Return the parameters recorded in a complete data set at ``root``, or None."""
    try:
        return json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return None


def build_shapes(
    root: str | Path, n_train: int = 600, n_val: int = 150, imgsz: int = 160, seed: int = 0, level: str = "full"
) -> Path:
    """Build the shapes data set at ``root`` unless it is already there with the same parameters.

    The data is built in a temporary folder beside ``root`` and renamed into place, so ``root`` is either absent or
    complete. A ``root`` built with other parameters is replaced; a non-empty ``root`` without our marker is refused.

    Args:
        root: Data set folder.
        n_train: Training images, ids ``1..n_train``.
        n_val: Validation images, ids ``n_train + 1..n_train + n_val``.
        imgsz: Image side in pixels.
        seed: Seed of the whole data set.
        level: A name in ``LEVELS``: ``full`` (the benchmark) or ``demo`` (easier, for a few CPU minutes).

    Returns:
        ``root`` as a Path.

    """
    if min(n_train, n_val) < 1 or imgsz < 32:
        raise ValueError(f"need n_train, n_val >= 1 and imgsz >= 32, got {n_train=}, {n_val=}, {imgsz=}")
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    root = Path(root)
    params = {"format": FORMAT_VERSION, "n_train": n_train, "n_val": n_val, "imgsz": imgsz, "seed": seed}
    if level != "full":  # a full set's marker stays what it was before levels existed: such builds stay valid
        params.update(level=level, **asdict(LEVELS[level]))
    found = _marker(root)
    if found == params:
        return root
    if found is None and root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty and holds no shapes data set ({MARKER} missing), not touching it")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = sibling_dir(root, "tmp")
    try:
        _write_split(tmp, "train", range(1, n_train + 1), imgsz, seed, LEVELS[level])
        _write_split(tmp, "val", range(n_train + 1, n_train + n_val + 1), imgsz, seed, LEVELS[level])
        (tmp / MARKER).write_text(json.dumps(params))
        if _marker(root) == params:  # another process finished the same build meanwhile
            return root
        swap_in(tmp, root)  # an empty folder or an older build is moved aside and dropped once ours is in place
    except OSError:
        if _marker(root) != params:  # not another process finishing the same build first
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def write_data_yaml(root: str | Path, path: str | Path) -> Path:
    """An Ultralytics data YAML at ``path`` for the set built at ``root`` (absolute path, so any working folder works).

    ``cfg/datasets/shapes.yaml`` is the same file for Ultralytics' own datasets folder; this one is for a set built
    elsewhere (tests, benchmarks on another machine).
    """
    data = {"path": str(Path(root).resolve()), "train": "images/train", "val": "images/val"}
    path = Path(path)
    path.write_text(yaml.safe_dump({**data, "names": dict(enumerate(SHAPES_NAMES))}, sort_keys=False))
    return path


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m spikeyolo_ibra.data.shapes --root DIR``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True, type=Path, help="data set folder")
    p.add_argument("--n-train", type=int, default=600)
    p.add_argument("--n-val", type=int, default=150)
    p.add_argument("--imgsz", type=int, default=160)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--level", choices=LEVELS, default="full", help="full: the benchmark; demo: easier (make demo)")
    a = p.parse_args(argv)
    print(build_shapes(a.root, a.n_train, a.n_val, a.imgsz, a.seed, a.level))


if __name__ == "__main__":
    main()
