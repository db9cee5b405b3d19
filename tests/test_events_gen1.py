"""The Gen1 converter: samples equal to_frames at each label, the protocol's boxes, resuming, and bad inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from spikeyolo_ibra.events import EVENT_DTYPE, EventDataError, load_sample, read_dat, to_frames, write_dat
from spikeyolo_ibra.events.gen1 import Conversion, Protocol, convert, filter_boxes, read_boxes

REPO = Path(__file__).resolve().parents[1]
H, W = 240, 304
CONV = Conversion(timesteps=3, window_us=50_000)  # Gen1's sensor and protocol


def gen1_root(root: Path, recordings: dict[str, int] | None = None, seed: int = 0) -> Path:
    """A Gen1-layout folder written by write_dat: labels every 200 ms over 1.5 s, boxes of every kind."""
    rng = np.random.default_rng(seed)
    for split, count in (recordings or {"train": 2, "val": 1, "test": 1}).items():
        (root / split).mkdir(parents=True)
        for i in range(count):
            n = 30_000
            ev = np.zeros(n, EVENT_DTYPE)
            ev["t"] = np.sort(rng.integers(0, 1_500_000, n))
            ev["x"], ev["y"], ev["p"] = rng.integers(0, W, n), rng.integers(0, H, n), rng.integers(0, 2, n)
            write_dat(root / split / f"17-04-0{i}_{split}_td.dat", ev, H, W, header=i % 2 == 0)
            t = np.repeat(np.arange(200_000, 1_500_000, 200_000), 3)
            k = t.size
            dtype = [("t", "<u8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"), ("class_id", "u1")]
            boxes = np.zeros(k, dtype + [("track_id", "<u4"), ("class_confidence", "<f4")])
            boxes["t"] = t
            boxes["x"], boxes["y"] = rng.uniform(-30, W, k), rng.uniform(-30, H, k)
            boxes["w"], boxes["h"] = rng.uniform(4, 90, k), rng.uniform(4, 90, k)
            boxes["class_id"] = rng.integers(0, 2, k)
            np.save(root / split / f"17-04-0{i}_{split}_bbox.npy", boxes)
    return root


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("gen1")
    root = gen1_root(tmp / "gen1")
    convert(root, tmp / "out", CONV, workers=2, progress=False)
    return root, tmp / "out"


def test_samples_equal_to_frames_at_each_label_and_boxes_are_the_filtered_ones(converted):
    root, out = converted
    seen = 0
    for dat in sorted(root.glob("*/*_td.dat")):
        split, name = dat.parent.name, dat.name[: -len("_td.dat")]
        events = read_dat(dat)
        boxes = filter_boxes(read_boxes(dat.with_name(f"{name}_bbox.npy")), Protocol(), H, W)
        assert boxes["t"].min() > 500_000  # the first 0.5 s is skipped
        for t in np.unique(boxes["t"]):
            stem = f"{name}_{t}"
            frames = load_sample(out / "images" / split / f"{stem}.tif")
            np.testing.assert_array_equal(frames, to_frames(events, int(t), 50_000, 3, H, W))
            rows = np.loadtxt(out / "labels" / split / f"{stem}.txt", ndmin=2)
            mine = boxes[boxes["t"] == t]
            expect = np.stack(
                [mine["class_id"], (mine["x"] + mine["w"] / 2) / W, (mine["y"] + mine["h"] / 2) / H, mine["w"] / W]
                + [mine["h"] / H],
                1,
            )
            np.testing.assert_allclose(rows, expect, atol=1e-6)
            seen += 1
        names = {p.stem for p in (out / "images" / split).glob(f"{name}_*.tif")}
        assert names == {f"{name}_{t}" for t in np.unique(boxes["t"])}  # no sample for a label left without boxes
    assert seen > 10


def test_data_yaml_and_coco_ground_truth(converted):
    _, out = converted
    data = yaml.safe_load((out / "gen1.yaml").read_text())
    assert data["train"] == "images/train" and data["val"] == "images/val" and data["test"] == "images/test"
    assert data["channels"] == 6 and data["names"] == {0: "car", 1: "pedestrian"}
    assert data["events"] == {
        "timesteps": 3,
        "window_ms": 50.0,
        "height": 240,
        "width": 304,
        "protocol": {"skip_ms": 500.0, "min_diag": 30.0, "min_side": 10.0},
    }
    coco = json.loads((out / "annotations" / "instances_val2017.json").read_text())
    stems = {p.stem for p in (out / "images" / "val").glob("*.tif")}
    assert {im["id"] for im in coco["images"]} == stems
    labels = sum(len((out / "labels" / "val" / f"{s}.txt").read_text().splitlines()) for s in stems)
    assert len(coco["annotations"]) == labels
    assert all(0 <= a["bbox"][0] and a["bbox"][0] + a["bbox"][2] <= W + 1e-6 for a in coco["annotations"])


def test_a_rerun_skips_finished_recordings_and_redoes_unfinished_ones(converted, tmp_path: Path):
    root, out = converted
    before = {p: p.stat().st_mtime_ns for p in out.glob("images/*/*.tif")}
    redo = out / ".done" / "train" / "17-04-00_train.json"
    redo.unlink()
    convert(root, out, CONV, workers=0, progress=False)
    after = {p: p.stat().st_mtime_ns for p in out.glob("images/*/*.tif")}
    assert before.keys() == after.keys()
    changed = {p.name.rsplit("_", 1)[0] for p in after if after[p] != before[p]}
    assert changed == {"17-04-00_train"} and redo.is_file()
    with pytest.raises(EventDataError, match="converted with other settings"):
        convert(root, out, Conversion(timesteps=2, window_us=50_000), workers=0, progress=False)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    cmd = [sys.executable, str(REPO / "tools" / "events_gen1.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("damage", ["truncated", "foreign", "boxes", "split"])
def test_bad_inputs_are_one_sentence_exit_2_and_nothing_partial(tmp_path: Path, damage: str):
    root = gen1_root(tmp_path / "gen1", {"train": 1, "val": 1, "test": 1})
    target = {
        "truncated": root / "val" / "17-04-00_val_td.dat",
        "foreign": root / "test" / "17-04-00_test_td.dat",
        "boxes": root / "val" / "17-04-00_val_bbox.npy",
        "split": root / "test",
    }[damage]
    if damage == "truncated":
        target.write_bytes(target.read_bytes()[:-5])
    elif damage == "foreign":
        target.write_bytes(b"% a PNG in disguise\n\x89PNG\r\n\x1a\n" + bytes(64))
    elif damage == "boxes":
        np.save(target, np.zeros((4, 6), np.float64))
    else:
        for f in target.iterdir():
            f.unlink()
        target.rmdir()
    out = tmp_path / "out"
    done = run_cli(str(root), str(out), "--timesteps", "2", "--window-ms", "50", "--workers", "0")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spikeyolo-events: ") and str(target) in lines[0]
    assert not out.exists()  # every check runs before anything is written


def test_the_cli_converts_and_prints_the_yaml(tmp_path: Path):
    root = gen1_root(tmp_path / "gen1", {"train": 1, "val": 1, "test": 1})
    done = run_cli(str(root), str(tmp_path / "out"), "--timesteps", "1", "--window-ms", "20", "--skip-ms", "100")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("gen1.yaml")
    data = yaml.safe_load((tmp_path / "out" / "gen1.yaml").read_text())
    assert data["events"]["protocol"]["skip_ms"] == 100.0 and data["channels"] == 2
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_a_recording_without_any_box_the_protocol_keeps_gives_no_sample(tmp_path: Path):
    root = gen1_root(tmp_path / "gen1", {"train": 1, "val": 1})
    convert(root, tmp_path / "out", Conversion(1, 10_000, protocol=Protocol(skip_us=10**9)), ("train", "val"), 0)
    assert not list((tmp_path / "out" / "images").rglob("*.tif"))
    assert json.loads((tmp_path / "out" / ".done" / "val" / "17-04-00_val.json").read_text())["samples"] == []
    assert json.loads((tmp_path / "out" / "annotations" / "instances_val2017.json").read_text())["images"] == []


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--timesteps", "0", "--window-ms", "50"], "--timesteps 0 is invalid"),
        (["--timesteps", "4", "--window-ms", "0.001"], "--window-ms 0.001 is invalid"),
        (["--timesteps", "2", "--window-ms", "50", "--splits", "train", "valid"], "split 'valid' is not one of"),
    ],
)
def test_impossible_options_are_one_sentence(tmp_path: Path, capsys, options: list[str], words: str):
    from spikeyolo_ibra.events.cli import main

    root = gen1_root(tmp_path / "gen1", {"train": 1})
    with pytest.raises(SystemExit) as caught:
        main(["gen1", str(root), str(tmp_path / "out"), *options])
    assert caught.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spikeyolo-events: ") and words in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()
