"""The inference layer from Python: settings in Python words, one loop for any source kind, the package's layering."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from ultralytics.utils import ASSETS

from spikeyolo_ibra.spike import SettingError, spike_infer
from spikeyolo_ibra.spike.inference import SOURCE_KINDS, STRIDE, Frame, Inference, Settings, letterboxed, open_source

SPIKE = Path(__file__).resolve().parents[1] / "spikeyolo_ibra" / "spike"
LAYERS = ("runtime", "measure", "inference", "report")  # each may use only those before it


def test_settings_speak_python_and_the_command_its_flags():
    with pytest.raises(SettingError) as bad:
        Settings(imgsz=100)
    assert str(bad.value) == "imgsz=100 is not a positive multiple of 32: use e.g. imgsz=128."
    assert str(bad.value.in_flags()) == "--imgsz 100 is not a positive multiple of 32: use e.g. --imgsz 128."
    with pytest.raises(SettingError, match=r"^dtype='float16' is not one of float32, float64: use e\.g\. "):
        Settings(dtype="float16")
    with pytest.raises(SettingError, match="^source is empty"):
        open_source(" ", 64)


class PictureFiles:
    """A source kind of its own: ``.npy`` files each holding one BGR picture (H, W, 3) uint8."""

    def __init__(self, path: str, imgsz: int) -> None:
        from ultralytics.data.augment import LetterBox

        self.files = sorted(str(p) for p in Path(path).glob("*.npy"))
        self.frames = len(self.files)
        self.letterbox = LetterBox(imgsz, auto=False, stride=STRIDE)

    def read(self, dtype, device):
        for f in self.files:
            image = np.load(f)
            yield Frame(f, None, image, letterboxed(image, self.letterbox, dtype, device))


def test_a_new_source_kind_runs_through_the_same_loop(tiny_checkpoint, tmp_path, monkeypatch):
    """An opener added to SOURCE_KINDS is all a new kind needs: the loop, the checks and the report stay as they are."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    for name in ("bus", "zidane"):
        np.save(folder / f"{name}.npy", cv2.imread(str(ASSETS / f"{name}.jpg")))

    def open_pictures(path: str, imgsz: int):
        return PictureFiles(path, imgsz) if Path(path).is_dir() and any(Path(path).glob("*.npy")) else None

    monkeypatch.setattr("spikeyolo_ibra.spike.inference.sources.SOURCE_KINDS", [open_pictures, *SOURCE_KINDS])
    source = open_source(folder, 64)
    assert isinstance(source, PictureFiles)

    inference = Inference(tiny_checkpoint, Settings(imgsz=64, verify=True, conf=0.001))
    results = list(inference.run(source))
    assert [Path(r.frame.path).stem for r in results] == ["bus", "zidane"]
    for r in results:
        assert r.sop_map.shape == r.frame.image.shape[:2] and r.figures["sops"] > 0
        h, w = r.frame.image.shape[:2]
        boxes = r.result.boxes.xyxy
        assert len(boxes) > 0 and float(boxes[:, 2].max()) <= w and float(boxes[:, 3].max()) <= h  # picture pixels
    summary = inference.summary()
    assert summary.frames == 2 and summary.equivalence.passed and summary.equivalence.images == 2

    report = spike_infer(tiny_checkpoint, folder, out=tmp_path / "report", imgsz=64)
    assert report["images"] == 2 and json.loads((tmp_path / "report" / "report.json").read_text())["images"] == 2


def _imports(module: Path) -> set[str]:
    """The subpackages of spike/ that ``module`` imports (relative imports, resolved)."""
    parts = module.relative_to(SPIKE).with_suffix("").parts
    package = parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1] if node.level <= len(package) + 1 else ()
            target = (*base, *(node.module.split(".") if node.module else []))
            if target and target[0] in LAYERS:
                found.add(target[0])
            elif not target:  # from .. import x
                found |= {a.name for a in node.names if a.name in LAYERS}
    return found


def test_each_layer_uses_only_the_layers_before_it():
    for rank, layer in enumerate(LAYERS):
        later = set(LAYERS[rank + 1 :])
        for module in sorted((SPIKE / layer).rglob("*.py")):
            assert not _imports(module) & later, f"{module.relative_to(SPIKE)} imports {_imports(module) & later}"


def test_importing_the_package_leaves_the_matplotlib_backend_alone():
    code = (
        "import matplotlib; import spikeyolo_ibra.spike.cli, spikeyolo_ibra.spike.infer, spikeyolo_ibra.spike.report; "
        "print(matplotlib.get_backend())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "MPLBACKEND": "svg"}
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "svg"
