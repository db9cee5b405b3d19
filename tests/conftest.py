"""Test session set-up: offline Ultralytics with its settings and runs in a temporary config dir."""

import os
import sys
import tempfile
from pathlib import Path

import pytest

# Before anything imports ultralytics: no network, and settings/runs isolated from the user's.
os.environ["YOLO_OFFLINE"] = "1"
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="spikeyolo-cfg-"))
os.environ.setdefault("OMP_NUM_THREADS", "2")

REPO = Path(__file__).resolve().parents[1]
CFG = REPO / "cfg"
YOLO_BIN = str(Path(sys.executable).with_name("yolo"))


@pytest.fixture(scope="session")
def tiny_shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny built-in dataset (dataset YAML path) shared by the end-to-end tests."""
    from spikeyolo_ibra.data.shapes import SHAPES_NAMES, build_shapes

    root = build_shapes(tmp_path_factory.mktemp("shapes") / "shapes", n_train=16, n_val=8, imgsz=128, seed=0)
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(SHAPES_NAMES))
    yaml = root.parent / "shapes.yaml"
    yaml.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n{names}\n")
    return yaml
