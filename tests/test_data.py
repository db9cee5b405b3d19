"""The built-in shapes data set: determinism, honest labels in both layouts, atomic build, dataset YAML."""

import functools
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from spikeyolo_ibra.data import shapes
from spikeyolo_ibra.data.shapes import MARKER, SHAPES_NAMES, build_shapes

CFG = Path(__file__).resolve().parents[1] / "cfg"
SMALL = {"n_train": 12, "n_val": 8, "imgsz": 128}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three small builds: seed 0 twice in different folders, and seed 1."""
    base = tmp_path_factory.mktemp("shapes")
    return {name: build_shapes(base / name, seed=seed, **SMALL) for name, seed in (("a", 0), ("b", 0), ("c", 1))}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _coco(root: Path, split: str) -> dict:
    return json.loads((root / "annotations" / f"instances_{split}2017.json").read_text())


def _iou(a: list[float], b: list[float]) -> float:
    """IoU of two [x, y, w, h] boxes."""
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return iw * ih / (a[2] * a[3] + b[2] * b[3] - iw * ih)


def test_same_seed_same_bytes_other_seed_differs(built: dict[str, Path]) -> None:
    a, b, c = (_files(built[k]) for k in "abc")
    assert a == b
    assert a.keys() == c.keys()
    assert [k for k in a if k.endswith((".txt", ".json", ".jpg")) and a[k] != c[k]]


def test_layout_ids_and_categories(built: dict[str, Path]) -> None:
    root = built["a"]
    ids = {}
    for split, n, first in (("train", SMALL["n_train"], 1), ("val", SMALL["n_val"], SMALL["n_train"] + 1)):
        images = sorted((root / "images" / split).glob("*.jpg"))
        assert [p.stem for p in images] == [f"{i:012d}" for i in range(first, first + n)]
        assert sorted(p.stem for p in (root / "labels" / split).glob("*.txt")) == [p.stem for p in images]
        coco = _coco(root, split)
        ids[split] = {im["id"] for im in coco["images"]}
        assert {(im["id"], im["file_name"]) for im in coco["images"]} == {(int(p.stem), p.name) for p in images}
        assert all(im["width"] == im["height"] == SMALL["imgsz"] for im in coco["images"])
        # DetectionValidator.init_metrics: class_map = list(range(1, nc + 1)) for a non-COCO data set
        assert [(c["id"], c["name"]) for c in coco["categories"]] == list(enumerate(SHAPES_NAMES, 1))
        assert len({a["id"] for a in coco["annotations"]}) == len(coco["annotations"])
    assert not ids["train"] & ids["val"]
    assert json.loads((root / MARKER).read_text()) == {"format": shapes.FORMAT_VERSION, "seed": 0, **SMALL}


def test_yolo_labels_equal_coco_boxes(built: dict[str, Path]) -> None:
    root, s = built["a"], SMALL["imgsz"]
    for split in "train", "val":
        coco = _coco(root, split)
        for im in coco["images"]:
            rows = (root / "labels" / split / im["file_name"]).with_suffix(".txt").read_text().split("\n")[:-1]
            yolo = [[float(v) for v in row.split()] for row in rows]
            got = [(int(c), [(cx - w / 2) * s, (cy - h / 2) * s, w * s, h * s]) for c, cx, cy, w, h in yolo]
            want = [(a["category_id"] - 1, a["bbox"]) for a in coco["annotations"] if a["image_id"] == im["id"]]
            assert [c for c, _ in got] == [c for c, _ in want]
            np.testing.assert_allclose([b for _, b in got], [b for _, b in want], atol=1e-3)


def test_objects_are_varied_honest_and_overlap(built: dict[str, Path]) -> None:
    anns = [a for split in ("train", "val") for a in _coco(built["a"], split)["annotations"]]
    s = SMALL["imgsz"]
    assert {a["category_id"] for a in anns} == set(range(1, len(SHAPES_NAMES) + 1))
    for a in anns:
        x, y, w, h = a["bbox"]
        assert 0 <= x and 0 <= y and x + w <= s and y + h <= s
        assert max(w, h) <= shapes.MAX_SIZE * s + 1
        assert 0 < a["area"] <= w * h  # visible pixels inside the box
    sides = [max(a["bbox"][2:]) for a in anns]
    assert min(sides) < 0.35 * s and max(sides) > 0.5 * s  # varied scale within [MIN_SIZE, MAX_SIZE]
    per_image: dict[int, list] = {}
    for a in anns:
        per_image.setdefault(a["image_id"], []).append(a["bbox"])
    assert all(1 <= len(v) <= shapes.MAX_OBJECTS for v in per_image.values())
    assert any(_iou(p, q) > 0 for v in per_image.values() for i, p in enumerate(v) for q in v[i + 1 :])


def test_boxes_are_tight_around_visible_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    masks = []
    paint = shapes._paint
    monkeypatch.setattr(shapes, "_paint", lambda img, mask, rng: masks.append(mask) or paint(img, mask, rng))
    hidden = 0
    for image_id in range(1, 30):
        masks.clear()
        img, objects = shapes.render(image_id, 96, seed=3)
        assert img.shape == (96, 96, 3) and img.dtype == np.uint8 and len(objects) == len(masks)
        for i, (_, box, area) in enumerate(objects):
            visible = masks[i] & ~np.any(masks[i + 1 :], axis=0) if i + 1 < len(masks) else masks[i]
            ys, xs = np.nonzero(visible)
            assert box == [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]
            assert area == visible.sum() >= shapes.MIN_VISIBLE * masks[i].sum()
            hidden += visible.sum() < masks[i].sum()
    assert hidden  # some objects were partly hidden


def test_build_is_idempotent_atomic_and_careful(tmp_path: Path) -> None:
    root = build_shapes(tmp_path / "d", n_train=2, n_val=1, imgsz=64)
    stamp = (root / MARKER).stat().st_mtime_ns
    assert build_shapes(root, n_train=2, n_val=1, imgsz=64) == root
    assert (root / MARKER).stat().st_mtime_ns == stamp  # complete: not rebuilt
    build_shapes(root, n_train=3, n_val=1, imgsz=64)  # other parameters: replaced
    assert len(list((root / "images" / "train").glob("*.jpg"))) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no temporary folders left
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        build_shapes(foreign, n_train=1, n_val=1, imgsz=64)
    assert (foreign / "keep.txt").read_text() == "mine"


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shapes.main(["--root", str(tmp_path / "cli"), "--n-train", "1", "--n-val", "1", "--imgsz", "64"])
    assert capsys.readouterr().out.strip() == str(tmp_path / "cli")
    assert (tmp_path / "cli" / "annotations" / "instances_val2017.json").is_file()


@pytest.mark.usefixtures("offline_font")
@pytest.mark.parametrize(("name", "level"), [("shapes", {}), ("shapes-demo", {"level": "demo"})])
def test_dataset_yaml_builds_data_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, level: dict[str, str]
) -> None:
    from ultralytics.data.utils import check_det_dataset

    cfg = yaml.safe_load((CFG / "datasets" / f"{name}.yaml").read_text())
    assert cfg["names"] == dict(enumerate(SHAPES_NAMES))
    cfg["path"] = str(tmp_path / name)  # absolute: independent of the user's datasets_dir
    data_yaml = tmp_path / f"{name}.yaml"
    data_yaml.write_text(yaml.safe_dump(cfg))
    calls = []
    small = functools.partial(build_shapes, n_train=2, n_val=2, imgsz=64)
    # the snippet's import
    monkeypatch.setattr(shapes, "build_shapes", lambda root, **kw: calls.append((root, kw)) or small(root, **kw))

    data = check_det_dataset(data_yaml)
    assert calls == [(tmp_path / name, level)]
    assert data["nc"] == len(SHAPES_NAMES) and Path(data["val"]) == tmp_path / name / "images" / "val"
    assert len(list(Path(data["val"]).glob("*.jpg"))) == 2
    check_det_dataset(data_yaml)  # second use: data found, snippet not run
    assert len(calls) == 1


def test_demo_level_is_easier_and_its_own_set(tmp_path: Path) -> None:
    demo = shapes.LEVELS["demo"]
    root = build_shapes(tmp_path / "demo", n_train=30, n_val=10, imgsz=128, level="demo")
    marker = json.loads((root / MARKER).read_text())
    assert marker["level"] == "demo" and marker["min_size"] == demo.min_size
    full = build_shapes(tmp_path / "full", n_train=30, n_val=10, imgsz=128)
    assert (root / "images/val/000000000031.jpg").read_bytes() != (full / "images/val/000000000031.jpg").read_bytes()
    anns = [a for split in ("train", "val") for a in _coco(root, split)["annotations"]]
    per_image: dict[int, int] = {}
    for a in anns:
        per_image[a["image_id"]] = per_image.get(a["image_id"], 0) + 1
        assert max(a["bbox"][2:]) <= demo.max_size * 128 + 1
    assert set(per_image.values()) == set(range(1, demo.max_objects + 1))
    full_anns = [a for split in ("train", "val") for a in _coco(full, split)["annotations"]]
    assert np.median([max(a["bbox"][2:]) for a in anns]) > 1.2 * np.median([max(a["bbox"][2:]) for a in full_anns])
    assert len(anns) / len(per_image) < len(full_anns) / 40  # fewer objects per image
    assert {a["category_id"] for a in anns} == set(range(1, len(SHAPES_NAMES) + 1))  # same classes
    with pytest.raises(ValueError, match="level must be one of full, demo"):
        build_shapes(tmp_path / "x", level="hard")


def test_data_yaml_for_a_set_built_elsewhere(built: dict[str, Path], tmp_path: Path) -> None:
    from ultralytics.data.utils import check_det_dataset

    from spikeyolo_ibra.data.shapes import write_data_yaml

    data = check_det_dataset(str(write_data_yaml(built["a"], tmp_path / "data.yaml")))
    assert data["names"] == dict(enumerate(SHAPES_NAMES))
    assert Path(data["train"]) == built["a"].resolve() / "images" / "train"
    assert len(list(Path(data["val"]).glob("*.jpg"))) == SMALL["n_val"]


def test_cpu_recipe_is_an_ultralytics_cfg_file() -> None:
    from ultralytics.cfg import get_cfg

    recipe = yaml.safe_load((CFG / "train" / "shapes-cpu.yaml").read_text())
    args = get_cfg(overrides=recipe)  # unknown keys or bad types raise here
    assert args.nbs == args.batch  # one optimizer step per batch
    assert args.device == "cpu" and args.mosaic == 0
