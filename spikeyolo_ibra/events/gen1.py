"""The Prophesee Gen1 automotive set (or any folder in its layout) to an Ultralytics data set of event samples.

Input ``ROOT/{train,val,test}/<name>_td.dat`` + ``<name>_bbox.npy``. Output, for each split::

    OUT/images/<split>/<name>_<t_us>.tif   one sample per labelled timestamp t: to_frames(window [t - W, t))
    OUT/labels/<split>/<name>_<t_us>.txt   "class cx cy w h" normalised, boxes clipped to the sensor
    OUT/annotations/instances_<split>2017.json   the same boxes in COCO form (pixels), image id = file stem
    OUT/gen1.yaml                          the Ultralytics data YAML, with the conversion settings under ``events:``

The evaluation protocol of Perot et al. (NeurIPS 2020) and the Prophesee toolbox is applied to the labels of every
split: a box counts only if ``t > skip`` (0.5 s; the toolbox's evaluator uses 0.1 s), its diagonal is at least
``min_diag`` (30 px) and both its sides at least ``min_side`` (10 px); timestamps left without a box give no sample.
Each recording is converted whole by one worker and then marked done (``OUT/.done/<split>/<name>.json``, which also
keeps its boxes for the COCO files), so a second run skips it; every file appears whole or not at all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..atomic import replacing
from .dat import RECORD, read_dat, read_dat_header
from .errors import EventDataError
from .frames import to_frames, window
from .sample import SUFFIX, save_sample

__all__ = ("GEN1_NAMES", "Conversion", "Protocol", "convert", "filter_boxes", "read_boxes", "write_data_yaml")

GEN1_HEIGHT, GEN1_WIDTH = 240, 304
GEN1_NAMES = {0: "car", 1: "pedestrian"}
SPLITS = ("train", "val", "test")
FORMAT_VERSION = 1  # bump when the samples change, so a resumed conversion refuses an older OUT
BOX_FIELDS = ("x", "y", "w", "h", "class_id")
BOX_DTYPE = np.dtype([("t", "<i8"), ("x", "<f8"), ("y", "<f8"), ("w", "<f8"), ("h", "<f8"), ("class_id", "<i8")])
MARKER = "events.json"


@dataclass(frozen=True)
class Protocol:
    """Which labels count (Perot et al. 2020; Prophesee toolbox ``filter_boxes``); defaults are Gen1's."""

    skip_us: int = 500_000  # boxes at t <= skip_us are dropped (the toolbox's evaluator script uses 100_000)
    min_diag: float = 30.0  # least box diagonal, pixels (60 for the 1 Mpx set)
    min_side: float = 10.0  # least box width and height, pixels (20 for the 1 Mpx set)


@dataclass(frozen=True)
class Conversion:
    """Everything a converted sample depends on; recorded in ``OUT/events.json`` and the data YAML."""

    timesteps: int
    window_us: int
    height: int = GEN1_HEIGHT
    width: int = GEN1_WIDTH
    protocol: Protocol = Protocol()

    def __post_init__(self) -> None:
        """One sentence for settings that cannot give a sample."""
        if not (isinstance(self.timesteps, int) and self.timesteps >= 1):
            raise EventDataError(f"--timesteps {self.timesteps} is invalid: use a whole number of bins, 1 or more.")
        if not self.window_us >= self.timesteps:
            raise EventDataError(f"--window-ms {self.window_us / 1000} is invalid: use at least T microseconds.")

    def record(self) -> dict[str, Any]:
        """The settings as plain JSON, with the format version."""
        return {"format": FORMAT_VERSION, **asdict(self)}


def read_boxes(path: str | Path) -> np.ndarray:
    """A Gen1 ``_bbox.npy`` as :data:`BOX_DTYPE` sorted by time (``ts`` and ``t`` both name the time field).

    Raises:
        EventDataError: the file is not a NumPy array of box records with t/ts, x, y, w, h and class_id.

    """
    path = Path(path)
    try:
        raw = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        why = getattr(error, "strerror", None) or "not a NumPy .npy file"
        raise EventDataError(f"{path} cannot be read as a box file ({why}): give the set's _bbox.npy.") from None
    names = raw.dtype.names or ()
    time = "t" if "t" in names else "ts"
    if raw.ndim != 1 or time not in names or not set(BOX_FIELDS) <= set(names):
        raise EventDataError(
            f"{path} holds {raw.dtype} records, not boxes with fields t (or ts), {', '.join(BOX_FIELDS)}: "
            "give the set's _bbox.npy."
        )
    boxes = np.empty(raw.shape, BOX_DTYPE)
    boxes["t"] = raw[time]
    for key in BOX_FIELDS:
        boxes[key] = raw[key]
    return boxes[np.argsort(boxes["t"], kind="stable")]


def filter_boxes(boxes: np.ndarray, protocol: Protocol, height: int, width: int) -> np.ndarray:
    """The boxes the protocol keeps, then clipped to the ``width`` x ``height`` sensor (empty ones dropped).

    Kept: ``t > skip_us``, ``sqrt(w^2 + h^2) >= min_diag``, ``w >= min_side`` and ``h >= min_side``, on the boxes as
    labelled (the toolbox filters before any clipping).
    """
    w, h = boxes["w"], boxes["h"]
    keep = (boxes["t"] > protocol.skip_us) & (np.hypot(w, h) >= protocol.min_diag)
    keep &= (w >= protocol.min_side) & (h >= protocol.min_side)
    out = boxes[keep].copy()
    x0, y0 = np.clip(out["x"], 0, width), np.clip(out["y"], 0, height)
    x1, y1 = np.clip(out["x"] + out["w"], 0, width), np.clip(out["y"] + out["h"], 0, height)
    out["x"], out["y"], out["w"], out["h"] = x0, y0, x1 - x0, y1 - y0
    return out[(out["w"] > 0) & (out["h"] > 0)]


@dataclass(frozen=True)
class Recording:
    """One recording of a split: its event file and its box file."""

    split: str
    name: str
    dat: Path
    boxes: Path


def find_recordings(root: Path, splits: Iterable[str]) -> list[Recording]:
    """Every ``<name>_td.dat`` with its ``<name>_bbox.npy`` in the given splits of ``root``, by name."""
    found = []
    for split in splits:
        folder = root / split
        if not folder.is_dir():
            raise EventDataError(f"{folder} is missing: give the folder that holds {', '.join(SPLITS)} (or --splits).")
        for dat in sorted(folder.glob("*_td.dat")):
            name = dat.name[: -len("_td.dat")]
            boxes = folder / f"{name}_bbox.npy"
            if not boxes.is_file():
                raise EventDataError(f"{dat} has no {boxes.name} beside it: copy the recording's box file there.")
            found.append(Recording(split, name, dat, boxes))
        if not any(r.split == split for r in found):
            raise EventDataError(f"{folder} holds no <name>_td.dat recording: give a folder in the Gen1 layout.")
    return found


def check_recording(rec: Recording) -> None:
    """Cheap checks before any conversion: the .dat header and whole records, the box file's fields."""
    offset, _ = read_dat_header(rec.dat)
    if (rec.dat.stat().st_size - offset) % RECORD.itemsize:
        raise EventDataError(f"{rec.dat} ends with a partial event (truncated copy?): download it again.")
    read_boxes(rec.boxes)


def _label_lines(rows: np.ndarray, height: int, width: int) -> str:
    cx, cy = (rows["x"] + rows["w"] / 2) / width, (rows["y"] + rows["h"] / 2) / height
    return "".join(
        f"{c} {a:.6f} {b:.6f} {w:.6f} {h:.6f}\n"
        for c, a, b, w, h in zip(rows["class_id"], cx, cy, rows["w"] / width, rows["h"] / height, strict=True)
    )


def _write_text(path: Path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text)


def _done_path(out: Path, rec: Recording) -> Path:
    return out / ".done" / rec.split / f"{rec.name}.json"


def convert_recording(
    rec: Recording, out: Path, conv: Conversion, names: dict[int, str] = GEN1_NAMES
) -> dict[str, Any]:
    """Convert one recording (samples, labels, then its done-marker); return what the marker holds."""
    boxes = filter_boxes(read_boxes(rec.boxes), conv.protocol, conv.height, conv.width)
    if len(boxes) and not set(np.unique(boxes["class_id"]).tolist()) <= set(names):
        found = sorted(set(boxes["class_id"].tolist()))
        raise EventDataError(f"{rec.boxes} has class ids {found}, not all in {names}: give boxes of those classes.")
    events = read_dat(rec.dat)
    images, labels = out / "images" / rec.split, out / "labels" / rec.split
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    times, starts = np.unique(boxes["t"], return_index=True)
    samples = []
    groups = np.split(boxes, starts[1:]) if len(boxes) else []  # the rows of each label time
    times_us = np.ascontiguousarray(events["t"])  # searchsorted would copy a strided field at every label
    for t_end, rows in zip(times.tolist(), groups, strict=True):
        stem = f"{rec.name}_{t_end}"
        part = events[window(times_us, t_end, conv.window_us)]
        save_sample(
            images / f"{stem}{SUFFIX}", to_frames(part, t_end, conv.window_us, conv.timesteps, conv.height, conv.width)
        )
        _write_text(labels / f"{stem}.txt", _label_lines(rows, conv.height, conv.width))
        samples.append([stem, [[int(r["class_id"]), *map(float, (r["x"], r["y"], r["w"], r["h"]))] for r in rows]])
    record = {"conversion": conv.record(), "events": int(len(events)), "samples": samples}
    done = _done_path(out, rec)
    done.parent.mkdir(parents=True, exist_ok=True)
    _write_text(done, json.dumps(record))
    return record


def _is_done(out: Path, rec: Recording, conv: Conversion) -> bool:
    try:
        return json.loads(_done_path(out, rec).read_text())["conversion"] == conv.record()
    except (OSError, ValueError, KeyError):
        return False


def _run(pending: list[Recording], out: Path, conv: Conversion, names: dict[int, str], workers: int) -> Iterator[int]:
    """Convert ``pending`` on ``workers`` processes (0: in this one); yield each recording's event count."""
    if workers == 0 or len(pending) < 2:
        for rec in pending:
            yield convert_recording(rec, out, conv, names)["events"]
        return
    with ProcessPoolExecutor(min(workers, len(pending))) as pool:
        futures = {pool.submit(convert_recording, rec, out, conv, names) for rec in pending}
        while futures:
            finished, futures = wait(futures, return_when=FIRST_EXCEPTION)
            for future in finished:
                if future.exception() is not None:
                    for other in futures:
                        other.cancel()  # recordings already running finish whole; the rest wait for a rerun
                    raise future.exception()
                yield future.result()["events"]


def coco_split(out: Path, recs: list[Recording], conv: Conversion, names: dict[int, str]) -> dict[str, Any]:
    """COCO ground truth of one split from its recordings' done-markers (image id = sample file stem)."""
    images, annotations = [], []
    for rec in recs:
        for stem, rows in json.loads(_done_path(out, rec).read_text())["samples"]:
            images.append({"id": stem, "file_name": f"{stem}{SUFFIX}", "width": conv.width, "height": conv.height})
            for c, x, y, w, h in rows:
                ann = {"image_id": stem, "category_id": c + 1, "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0}
                annotations.append({"id": len(annotations) + 1, **ann})
    categories = [{"id": i + 1, "name": n, "supercategory": "object"} for i, n in names.items()]
    return {"images": images, "annotations": annotations, "categories": categories}


def write_data_yaml(path: Path, splits: Iterable[str], conv: Conversion, names: dict[int, str], note: str) -> Path:
    """The Ultralytics data YAML of a converted set: splits, ``channels: 2T``, names and the ``events:`` settings.

    ``path`` is left out, so Ultralytics takes the YAML's own folder as the root and the set can be moved.
    """
    events = {
        "timesteps": conv.timesteps,
        "window_ms": conv.window_us / 1000,
        "height": conv.height,
        "width": conv.width,
        "protocol": {
            "skip_ms": conv.protocol.skip_us / 1000,
            "min_diag": conv.protocol.min_diag,
            "min_side": conv.protocol.min_side,
        },
    }
    data = {split: f"images/{split}" for split in splits}
    data.update({"channels": 2 * conv.timesteps, "names": dict(names), "events": events})
    _write_text(path, f"# {note}\n" + yaml.safe_dump(data, sort_keys=False))
    return path


def convert(
    root: str | Path,
    out: str | Path,
    conv: Conversion,
    splits: Iterable[str] = SPLITS,
    workers: int | None = None,
    names: dict[int, str] = GEN1_NAMES,
    yaml_name: str = "gen1.yaml",
    progress: bool = True,
    note: str | None = None,
) -> Path:
    """Convert the Gen1-layout folder ``root`` into ``out``; return the data YAML's path. Resumable.

    Args:
        root: Folder with the split folders, each holding ``<name>_td.dat`` + ``<name>_bbox.npy``.
        out: Output folder; a second run with the same settings skips finished recordings.
        conv: Time bins, window, sensor size and protocol.
        splits: Splits to convert; each keeps its name (val stays val, test stays test).
        workers: Processes over recordings (default: the CPU count, at most 8; 0 converts in this process).
        names: Class names by id.
        yaml_name: File name of the data YAML written in ``out``, last.
        progress: Show a progress bar of recordings.
        note: First-line comment of the data YAML (default: where the set was converted from).

    Raises:
        EventDataError: a missing split, a bad .dat or box file (one sentence naming it), or an ``out`` converted
            with other settings.

    """
    from ultralytics.utils import TQDM

    root, out, splits = Path(root), Path(out), tuple(splits)
    if unknown := [s for s in splits if s not in SPLITS]:
        raise EventDataError(f"split {unknown[0]!r} is not one of {', '.join(SPLITS)}: give --splits from those.")
    recs = find_recordings(root, splits)
    for rec in recs:
        check_recording(rec)
    out.mkdir(parents=True, exist_ok=True)
    marker = out / MARKER
    if marker.exists():
        if json.loads(marker.read_text()) != conv.record():
            raise EventDataError(
                f"{out} was converted with other settings ({marker.name}): use a new output folder or the same options."
            )
    else:
        _write_text(marker, json.dumps(conv.record()))
    pending = [rec for rec in recs if not _is_done(out, rec, conv)]
    workers = min(8, os.cpu_count() or 1) if workers is None else workers
    bar = TQDM(
        total=len(recs),
        initial=len(recs) - len(pending),
        desc="event recordings",
        unit="rec",
        disable=None if progress else True,
    )
    events = 0
    for n in _run(pending, out, conv, names, workers):
        events += n
        bar.update(1)
        bar.set_postfix(events=f"{events:,}")
    bar.close()
    (out / "annotations").mkdir(exist_ok=True)
    for split in splits:
        coco = coco_split(out, [r for r in recs if r.split == split], conv, names)
        _write_text(out / "annotations" / f"instances_{split}2017.json", json.dumps(coco))
    note = note or f"converted from {root.resolve()} by spikeyolo_ibra.events (spikeyolo-events gen1)"
    return write_data_yaml(out / yaml_name, splits, conv, names, note)
