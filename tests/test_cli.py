"""The stock ``yolo`` command trains, validates and predicts with the spiking detector (real subprocesses)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CFG, REPO, YOLO_BIN

pytestmark = pytest.mark.slow


def yolo(*args: str, cwd: Path) -> str:
    """Run the installed ``yolo`` entry point; no explicit import of spikeyolo_ibra anywhere."""
    env = {**os.environ, "YOLO_OFFLINE": "1", "SPIKEYOLO_CPU_THREADS": "2"}
    done = subprocess.run([YOLO_BIN, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def trained(tiny_shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One epoch of IBRA-SpikeYOLO-n through ``yolo train`` on the tiny built-in set, with the demo's CPU recipe."""
    runs = tmp_path_factory.mktemp("runs")
    common = ["imgsz=64", "batch=4", "device=cpu", "workers=0", "plots=False", f"project={runs}", "exist_ok=True"]
    out = yolo(
        "train",
        f"model={CFG / 'ibra-spikeyolo.yaml'}",
        f"data={tiny_shapes}",
        f"cfg={CFG / 'train' / 'shapes-cpu.yaml'}",
        "epochs=1",
        "name=train",
        *common,
        cwd=runs,
    )
    assert "ibra-spikeYOLO summary" in out
    assert "no model scale" not in out
    return runs / "train" / "weights" / "best.pt"


def test_train_writes_a_spiking_checkpoint(trained: Path):
    import torch

    ckpt = torch.load(trained, map_location="cpu", weights_only=False)
    assert type(ckpt["model"].model[-1]).__name__ == "SpikeDetect"
    assert ckpt["model"].yaml["neuron"]["bits"] == 9
    assert (ckpt["train_args"]["optimizer"], ckpt["train_args"]["nbs"]) == ("AdamW", 8)  # the cfg= recipe applied


def test_val_with_pycocotools(trained: Path, tiny_shapes: Path):
    runs = trained.parents[2]
    out = yolo(
        "val",
        f"model={trained}",
        f"data={tiny_shapes}",
        "imgsz=64",
        "batch=4",
        "device=cpu",
        "workers=0",
        "plots=False",
        "save_json=True",
        f"project={runs}",
        "name=val",
        "exist_ok=True",
        cwd=runs,
    )
    assert "pycocotools" in out
    metrics = json.loads((runs / "val" / "coco_metrics.json").read_text())
    assert {"mAP50", "mAP50-95", "annotations"} <= set(metrics)
    assert 0.0 <= metrics["mAP50-95"] <= metrics["mAP50"] <= 1.0


def test_predict_draws_detections(trained: Path):
    from ultralytics.utils import ASSETS

    runs = trained.parents[2]
    yolo(
        "predict",
        f"model={trained}",
        f"source={ASSETS / 'bus.jpg'}",
        "imgsz=64",
        "device=cpu",
        "conf=0.0001",
        "save_txt=True",
        f"project={runs}",
        "name=predict",
        "exist_ok=True",
        cwd=runs,
    )
    assert (runs / "predict" / "bus.jpg").stat().st_size > 0
    boxes = (runs / "predict" / "labels" / "bus.txt").read_text().splitlines()  # written only for detections
    assert boxes and all(len(line.split()) == 5 for line in boxes)


def test_demo_runs_the_whole_story(tmp_path: Path):
    """``make demo``'s script with a seconds-long training budget: every step runs and the summary is printed."""
    cmd = [sys.executable, str(REPO / "tools" / "demo.py"), "--minutes", "0.05", "--out", str(tmp_path / "demo")]
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"^mAP50=\d\.\d{3} mAP50-95=\d\.\d{3} \(pycocotools", done.stdout, re.M)
    assert "equivalence PASS" in done.stdout
    for report in ("spike", "spike-bus"):
        assert json.loads((tmp_path / "demo" / report / "report.json").read_text())["equivalence"]["passed"]
        assert (tmp_path / "demo" / report / "report.html").is_file()
