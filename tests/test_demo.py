"""The demo's recipes: every file they name exists and is what Ultralytics reads, and the defaults are coherent."""

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def _demo():
    spec = importlib.util.spec_from_file_location("demo", REPO / "tools" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("demo", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("kind", ["cpu", "cuda"])
def test_recipes_name_real_files_and_valid_overrides(kind: str) -> None:
    from ultralytics.cfg import get_cfg

    demo = _demo()
    assert demo.DEFAULT_SCALE[kind] in demo.RECIPES[kind] and "n" in demo.RECIPES[kind]
    for scale, recipe in demo.RECIPES[kind].items():
        overrides = yaml.safe_load((REPO / recipe.cfg).read_text())
        args = get_cfg(overrides=overrides)  # unknown keys or bad types raise here
        assert args.nbs == args.batch  # one optimizer step per batch
        assert recipe.imgsz == args.imgsz and recipe.minutes > 0
        data = yaml.safe_load((REPO / "cfg" / "datasets" / f"{recipe.data}.yaml").read_text())
        assert f'level="{recipe.data.removeprefix("shapes-")}"' in data["download"] or recipe.data == "shapes"
        assert (REPO / "cfg" / "ibra-spikeyolo.yaml").is_file()
        assert scale in yaml.safe_load((REPO / "cfg" / "ibra-spikeyolo.yaml").read_text())["scales"]


def test_cpu_demo_trains_the_tiny_scale_on_the_demo_level() -> None:
    demo = _demo()
    recipe = demo.RECIPES["cpu"][demo.DEFAULT_SCALE["cpu"]]
    assert demo.DEFAULT_SCALE["cpu"] == "t" and recipe.data == "shapes-demo"
    assert demo.RECIPES["cpu"]["n"].data == "shapes"  # the real size keeps the full benchmark


def test_tiny_scale_builds_by_name_and_n_stays_the_default() -> None:
    from ultralytics.nn.tasks import yaml_model_load

    import spikeyolo_ibra  # noqa: F401  (the plugin resolves -t)

    assert yaml_model_load("ibra-spikeyolo-t.yaml")["scale"] == "t"
    assert yaml_model_load("ibra-spikeyolo.yaml")["scale"] == "n"


@pytest.mark.parametrize(("busy_percent", "cores", "threads"), [(0.0, 2, 2), (50.0, 2, 1), (100.0, 2, 1), (30.0, 8, 6)])
def test_demo_trains_on_the_idle_cores(busy_percent, cores, threads, monkeypatch) -> None:
    """One torch thread per core no other process is using, at least one (spinning threads stall on busy cores)."""
    import psutil

    demo = _demo()
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval: busy_percent)
    monkeypatch.setattr(demo.os, "cpu_count", lambda: cores)
    assert demo.idle_cores(0.0) == threads


def test_demo_counts_images_detected_right(tmp_path: Path) -> None:
    """Every labelled object found with its class at IoU >= 0.5 and no other box; anything else is not right."""
    import json

    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    box = {"x1": 10.0, "y1": 20.0, "x2": 50.0, "y2": 60.0}  # label: class 1, centre (30, 40), 40 x 40, in 100 x 100
    off = {"x1": 60.0, "y1": 60.0, "x2": 90.0, "y2": 90.0}
    cases = {
        "right": [{"class": 1, "box": box}],
        "wrong class": [{"class": 2, "box": box}],
        "extra box": [{"class": 1, "box": box}, {"class": 1, "box": off}],
        "missed": [],
    }
    runs = []
    for i, detections in enumerate(cases.values()):
        image = tmp_path / "images" / f"{i}.jpg"
        Image.new("RGB", (100, 100)).save(image)
        (tmp_path / "labels" / f"{i}.txt").write_text("1 0.3 0.4 0.4 0.4\n")
        runs.append({"image": str(image), "detections": detections})
    (tmp_path / "detections.json").write_text(json.dumps(runs))
    assert _demo().images_detected_right(tmp_path / "detections.json") == (1, 4)
