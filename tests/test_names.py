"""Our YAMLs by bare name from any directory (``model=ibra-spikeyolo-n.yaml data=shapes.yaml cfg=shapes-cpu.yaml``).

Every test runs from an empty temporary directory, as a user of the installed package would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ultralytics.data import utils as data_utils
from ultralytics.nn import tasks
from ultralytics.utils import ASSETS, ROOT, checks

from spikeyolo_ibra.plugin import PACKAGE, packaged_yaml

CFG = PACKAGE / "cfg"
#: Bare names and repository paths, and the file under spikeyolo_ibra/cfg/ each one names.
NAMES = {
    "ibra-spikeyolo.yaml": "ibra-spikeyolo.yaml",
    "spikeyolo.yaml": "spikeyolo.yaml",
    "ann-spikeyolo.yaml": "ann-spikeyolo.yaml",
    "shapes.yaml": "datasets/shapes.yaml",
    "shapes-cpu.yaml": "train/shapes-cpu.yaml",
    "shapes-gpu.yaml": "train/shapes-gpu.yaml",
    "datasets/shapes.yaml": "datasets/shapes.yaml",
    "cfg/ibra-spikeyolo.yaml": "ibra-spikeyolo.yaml",  # the README's repository paths
    "cfg/datasets/shapes.yaml": "datasets/shapes.yaml",
    "cfg/train/shapes-cpu.yaml": "train/shapes-cpu.yaml",
}
#: Names Ultralytics resolves itself (or not at all): the answers must be exactly the stock ones.
STOCK = ["coco8.yaml", "yolov8.yaml", "yolov8n.yaml", "default.yaml", "botsort.yaml", "no-such-file.yaml", "bus.jpg"]


@pytest.fixture(autouse=True)
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from an empty directory: nothing of the checkout is reachable by a relative path."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("name", NAMES)
def test_names_resolve_to_the_package(name: str):
    want = str(CFG / NAMES[name])
    assert checks.check_yaml(name) == want  # model= and cfg= (Ultralytics' check_yaml)
    assert data_utils.check_file(name) == want  # data= (check_det_dataset's own name for check_file)
    assert packaged_yaml(name) == want


@pytest.mark.parametrize("name", STOCK)
def test_stock_names_unchanged(name: str):
    stock = checks.check_file.__wrapped__
    assert checks.check_file(name, hard=False) == stock(name, hard=False)
    assert data_utils.check_file(name, hard=False) == stock(name, hard=False)


def test_a_missing_name_raises_ultralytics_own_error():
    with pytest.raises(FileNotFoundError, match="'no-such-file.yaml' does not exist"):
        checks.check_yaml("no-such-file.yaml")


@pytest.mark.parametrize("name", ["/abs/shapes.yaml", "../shapes.yaml", "https://x.org/shapes.yaml", "shapes.py"])
def test_only_relative_yaml_names_are_ours(name: str):
    assert packaged_yaml(name) is None


def test_a_local_file_wins(elsewhere: Path):
    (elsewhere / "shapes.yaml").write_text("path: mine\n")
    assert checks.check_yaml("shapes.yaml") == "shapes.yaml"
    assert data_utils.check_file("shapes.yaml") == "shapes.yaml"


def test_every_yaml_has_one_name_and_ultralytics_has_none_of_them():
    """A name twice in cfg/ would pick one silently; a name Ultralytics ships would shadow ours."""
    names = [p.name for p in CFG.rglob("*.y*ml")]
    assert len(names) == len(set(names)) and {"ibra-spikeyolo.yaml", "shapes.yaml", "shapes-cpu.yaml"} <= set(names)
    assert not set(names) & {p.name for p in ROOT.rglob("*.y*ml")}


@pytest.mark.parametrize(("name", "scale"), [("ibra-spikeyolo-n.yaml", "n"), ("spikeyolo-s.yaml", "s")])
def test_scale_suffix_by_bare_name(name: str, scale: str):
    d = tasks.yaml_model_load(name)  # looked up now: registered, whatever imported Ultralytics first
    assert d["scale"] == scale and d["neuron"] and d["yaml_file"] == name


def test_the_data_set_lands_in_datasets_dir_not_in_the_package():
    """``path: shapes`` is relative: Ultralytics puts it under its datasets_dir, never beside the packaged YAML."""
    data = yaml.safe_load(Path(data_utils.check_file("shapes.yaml")).read_text())
    assert not Path(data["path"]).is_absolute() and not (CFG / "datasets" / data["path"]).exists()


@pytest.mark.slow
def test_stock_yolo_command_by_bare_names(elsewhere: Path):
    """``cfg=`` is read before any model is built: the import hook registers when the ``yolo`` command starts."""
    env = {**os.environ, "SPIKEYOLO_CPU_THREADS": "2"}
    yolo = Path(sys.executable).with_name("yolo")
    args = ["predict", "model=ibra-spikeyolo-n.yaml", "cfg=shapes-cpu.yaml", f"source={ASSETS / 'bus.jpg'}"]
    done = subprocess.run([yolo, *args, f"project={elsewhere}"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "bus.jpg: 64x64" in done.stdout + done.stderr  # imgsz: 64 came from the recipe (Ultralytics' default: 640)
