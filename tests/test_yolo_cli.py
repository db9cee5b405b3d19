"""The stock ``yolo`` command with our models: train, val (pycocotools), predict, export, and the bad inputs it meets.

No test imports spikeyolo_ibra on the command's behalf: the import hook registers it. Tests that spawn ``yolo`` are
slow; the in-process ones call Ultralytics' own ``entrypoint`` (what ``yolo`` runs) with the plugin registered.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
import ultralytics
import yaml
from packaging.version import Version
from ultralytics import YOLO
from ultralytics.cfg import entrypoint
from ultralytics.utils import ASSETS

from spikeyolo_ibra.fusion import fuse_synapses
from spikeyolo_ibra.neuron import IBLIF

REPO = Path(__file__).resolve().parents[1]
#: What the stock command itself does with a bad input changed between Ultralytics releases; these tests document
#: 8.4.190's behaviour (docs/troubleshooting.md) and are skipped below it (``make test-low``).
STOCK_8_4_190 = pytest.mark.skipif(
    Version(ultralytics.__version__) < Version("8.4.190"), reason="documents what Ultralytics 8.4.190 itself does"
)
CFG = REPO / "cfg"
FIXTURES = REPO / "tests" / "fixtures"
TINY_PT = FIXTURES / "tiny-spikeyolo.pt"
#: ONNX Runtime against the fused torch model, both float32, measured on the fixture: max abs 1.5e-5 (box outputs
#: up to ~64 px, class scores ~1e-4). The tolerance leaves room for other CPUs; a flipped integer code would exceed it.
ONNX_ATOL, ONNX_RTOL = 1e-4, 1e-3


def yolo(
    yolo_bin: str, *args: str, cwd: Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run the installed ``yolo`` entry point; no explicit import of spikeyolo_ibra anywhere."""
    env = {**os.environ, "SPIKEYOLO_CPU_THREADS": "2", **(env or {})}
    done = subprocess.run([yolo_bin, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def in_process(command: str, project: Path) -> None:
    """What ``yolo <command>`` runs, in this process (paths without spaces); runs go to ``project``."""
    entrypoint(f"yolo {command} project={project}")


def last_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    return lines[-1] if lines else ""


# --- train, val, predict: the mission's three commands ----------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(yolo_bin: str, tiny_shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One epoch of IBRA-SpikeYOLO-n through ``yolo train`` on the tiny built-in set, with the demo's CPU recipe."""
    runs = tmp_path_factory.mktemp("runs")
    common = ["imgsz=64", "batch=4", "device=cpu", "workers=0", "plots=False", f"project={runs}", "exist_ok=True"]
    out = yolo(
        yolo_bin,
        "train",
        f"model={CFG / 'ibra-spikeyolo.yaml'}",
        f"data={tiny_shapes}",
        f"cfg={CFG / 'train' / 'shapes-cpu.yaml'}",
        "epochs=1",
        "name=train",
        *common,
        cwd=runs,
    )
    text = out.stdout + out.stderr
    assert "ibra-spikeYOLO summary" in text
    assert "no model scale" not in text and "not registered" not in text
    return runs / "train" / "weights" / "best.pt"


@pytest.mark.slow
def test_train_writes_a_spiking_checkpoint(trained: Path):
    ckpt = torch.load(trained, map_location="cpu", weights_only=False)
    assert type(ckpt["model"].model[-1]).__name__ == "SpikeDetect"
    assert ckpt["model"].yaml["neuron"]["bits"] == 9
    assert (ckpt["train_args"]["optimizer"], ckpt["train_args"]["nbs"]) == ("AdamW", 8)  # the cfg= recipe applied


@pytest.mark.slow
def test_val_with_pycocotools(yolo_bin: str, trained: Path, tiny_shapes: Path):
    runs = trained.parents[2]
    args = [f"model={trained}", f"data={tiny_shapes}", "imgsz=64", "batch=4", "device=cpu", "workers=0"]
    out = yolo(yolo_bin, "val", *args, "plots=False", "save_json=True", f"project={runs}", "name=val", cwd=runs)
    assert "pycocotools" in out.stdout + out.stderr
    metrics = json.loads((runs / "val" / "coco_metrics.json").read_text())
    assert {"mAP50", "mAP50-95", "annotations"} <= set(metrics)
    assert 0.0 <= metrics["mAP50-95"] <= metrics["mAP50"] <= 1.0


@pytest.mark.slow
def test_predict_draws_detections(yolo_bin: str, trained: Path):
    runs = trained.parents[2]
    args = [f"model={trained}", f"source={ASSETS / 'bus.jpg'}", "imgsz=64", "device=cpu", "conf=0.0001"]
    yolo(yolo_bin, "predict", *args, "save_txt=True", f"project={runs}", "name=predict", "exist_ok=True", cwd=runs)
    assert (runs / "predict" / "bus.jpg").stat().st_size > 0
    boxes = (runs / "predict" / "labels" / "bus.txt").read_text().splitlines()  # written only for detections
    assert boxes and all(len(line.split()) == 5 for line in boxes)


# --- what the stock command prints for bad model YAMLs (its last line is the exception) -----------------------------
@pytest.fixture(scope="module")
def bad_yaml_runs(yolo_bin: str, tiny_shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``yolo train`` on a YAML with an impossible neuron setting and one with a bad row, two at a time."""
    tmp = tmp_path_factory.mktemp("bad-yaml")
    base = yaml.safe_load((CFG / "ibra-spikeyolo.yaml").read_text())
    neuron, row = copy.deepcopy(base), copy.deepcopy(base)
    neuron["neuron"]["bits"] = 17
    row["backbone"][1][3] = [96, 4, 7]
    for name, cfg in (("neuron", neuron), ("row", row)):
        (tmp / f"{name}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))

    def run(name: str) -> tuple[str, subprocess.CompletedProcess]:
        args = [f"model={tmp / f'{name}.yaml'}", f"data={tiny_shapes}", "imgsz=64"]
        return name, yolo(yolo_bin, "train", *args, cwd=tmp, check=False)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(run, ("neuron", "row")))


@pytest.mark.slow
def test_impossible_neuron_setting_last_line(bad_yaml_runs: dict):
    proc = bad_yaml_runs["neuron"]
    assert proc.returncode != 0
    assert last_line(proc) == (
        "spikeyolo_ibra.neuron.NeuronConfigError: neuron.bits=17 is invalid: use a whole number from 1 to 16."
    )


@pytest.mark.slow
def test_bad_row_last_line(bad_yaml_runs: dict):
    proc = bad_yaml_runs["row"]
    assert proc.returncode != 0
    assert last_line(proc).startswith(
        "spikeyolo_ibra.parser.ModelYAMLError: layer 1 of the model YAML, [-1, 3, SpikeAllConvBlock, [96, 4, 7]]"
    )
    assert not [n for n, p in bad_yaml_runs.items() if "not registered" in p.stderr]


# --- checkpoints, images and data sets given to the command ---------------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, tiny_shapes: Path) -> dict[str, Path]:
    """Bad checkpoints, images and datasets, as a new user would make them."""
    tmp = tmp_path_factory.mktemp("bad")
    out = {"stock": tmp / "stock-v8n.pt", "empty": tmp / "empty", "broken-images": tmp / "broken"}
    YOLO("yolov8n.yaml").save(out["stock"])
    for folder in (out["empty"], out["broken-images"]):
        folder.mkdir()
    (out["broken-images"] / "broken.jpg").write_bytes(b"not a jpeg")
    shapes = yaml.safe_load(tiny_shapes.read_text())
    images = tmp / "unlabelled" / "images" / "val"
    images.mkdir(parents=True)
    for jpg in sorted((Path(shapes["path"]) / "images" / "val").glob("*.jpg"))[:4]:
        (images / jpg.name).write_bytes(jpg.read_bytes())
    out["no-labels"] = tmp / "no-labels.yaml"
    out["no-labels"].write_text(
        yaml.safe_dump({**shapes, "path": str(images.parents[1]), "train": "images/val", "val": "images/val"})
    )
    broken = tmp / "broken-dataset"
    shutil.copytree(images.parents[1], broken)
    shutil.copytree(Path(shapes["path"]) / "labels" / "val", broken / "labels" / "val")
    out["broken-image-in-dataset"] = sorted((broken / "images" / "val").glob("*.jpg"))[0]
    out["broken-image-in-dataset"].write_bytes(b"not a jpeg")
    out["broken-dataset"] = tmp / "broken-dataset.yaml"
    out["broken-dataset"].write_text(yaml.safe_dump({**shapes, "path": str(broken), "val": "images/val"}))
    return out


@STOCK_8_4_190
def test_missing_checkpoint(files: dict[str, Path], tiny_shapes: Path, tmp_path: Path):
    missing = files["empty"] / "best.pt"
    with pytest.raises(FileNotFoundError, match=re.escape(f"No such file or directory: '{missing}'")):
        in_process(f"val model={missing} data={tiny_shapes} imgsz=64", tmp_path)


def test_non_spiking_checkpoint_is_a_stock_model(files: dict[str, Path], tmp_path: Path):
    in_process(f"predict model={files['stock']} source={ASSETS / 'bus.jpg'} imgsz=64 save=False", tmp_path)
    assert not any(isinstance(m, IBLIF) for m in YOLO(files["stock"]).model.modules())  # nothing of ours in it


@STOCK_8_4_190
def test_image_that_does_not_decode_is_skipped(files: dict[str, Path], tmp_path: Path, caplog):
    in_process(f"predict model={TINY_PT} source={files['broken-images']} imgsz=64 save=False", tmp_path)
    assert f"Image Read Error {files['broken-images'] / 'broken.jpg'}" in caplog.text


@STOCK_8_4_190
@pytest.mark.usefixtures("offline_font")
def test_dataset_image_that_does_not_decode_is_ignored(files: dict[str, Path], tmp_path: Path, caplog):
    in_process(f"val model={TINY_PT} data={files['broken-dataset']} imgsz=64 plots=False", tmp_path)
    assert f"{files['broken-image-in-dataset']}: ignoring corrupt image/label" in caplog.text


def test_empty_folder(files: dict[str, Path], tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=re.escape(f"No images or videos found in {files['empty']}.")):
        in_process(f"predict model={TINY_PT} source={files['empty']} imgsz=64", tmp_path)


@STOCK_8_4_190
@pytest.mark.usefixtures("offline_font")
def test_dataset_without_labels(files: dict[str, Path], tmp_path: Path, caplog):
    in_process(f"val model={TINY_PT} data={files['no-labels']} imgsz=64 plots=False", tmp_path)
    assert "no labels found in detect set, cannot compute metrics without labels" in caplog.text
    with pytest.raises(ValueError, match="No labels found in"):
        in_process(f"train model={TINY_PT} data={files['no-labels']} imgsz=64 epochs=1 plots=False workers=0", tmp_path)


def test_missing_dataset_yaml(files: dict[str, Path], tmp_path: Path):
    missing = files["empty"] / "data.yaml"
    with pytest.raises(FileNotFoundError, match=re.escape(f"'{missing}' does not exist")):
        in_process(f"val model={TINY_PT} data={missing} imgsz=64", tmp_path)


# --- export ---------------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("chains", ["factored", "dense"])
def test_onnx_export_matches_torch(chains: str, yolo_bin: str, tmp_path: Path, fixture_model):
    """The fast graph by default, the spike-driven dense graph with SPIKEYOLO_CHAINS=dense: both equal torch."""
    ort = pytest.importorskip("onnxruntime", reason="the export extra is not installed: pip install '.[export]'")
    import onnx

    checkpoint = tmp_path / TINY_PT.name
    checkpoint.write_bytes(TINY_PT.read_bytes())
    args = ["export", f"model={checkpoint}", "format=onnx", "imgsz=64"]
    proc = yolo(yolo_bin, *args, cwd=tmp_path, check=False, env={"SPIKEYOLO_CHAINS": chains})
    assert proc.returncode == 0, last_line(proc)
    exported = checkpoint.with_suffix(".onnx")
    model = copy.deepcopy(YOLO(TINY_PT).model.float().eval())
    fuse_synapses(model, chains)
    fused = model.fuse(verbose=False)
    graph = onnx.load(str(exported)).graph
    sizes = {t.name: int(np.prod(t.dims)) for t in graph.initializer}  # onnxslim shares equal tensors: count uses
    onnx_conv_weights = sum(sizes[name] for node in graph.node if node.op_type == "Conv" for name in node.input[1:])
    convs = [m for m in fused.modules() if isinstance(m, torch.nn.Conv2d)]
    torch_conv_weights = sum(p.numel() for m in convs for p in (m.weight, m.bias) if p is not None)
    assert onnx_conv_weights == torch_conv_weights  # the exported graph is the fused form asked for
    session = ort.InferenceSession(str(exported))
    noise = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    images = torch.cat([fixture_model.fixed_input(), noise])
    for x in images.split(1):  # exported with a fixed batch of 1
        (onnx_out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        with torch.no_grad():
            torch_out = fused(x)[0].numpy()
        np.testing.assert_allclose(onnx_out, torch_out, rtol=ONNX_RTOL, atol=ONNX_ATOL)


@pytest.mark.slow
def test_onnx_export_of_an_i_lif_model_with_a_whole_number_scale(yolo_bin: str, tmp_path: Path):
    """`scale: 1` written as an integer once let the exporter drop `u * 1` and clamp the neuron's input in place."""
    cfg = yaml.safe_load((FIXTURES / "tiny-spikeyolo.yaml").read_text())
    cfg["neuron"] = {"T": 1, "coding": "unary", "levels": 4, "scale": 1, "beta": 0.25}
    cfg["width_multiple"] = 3.0  # wide enough for Ultralytics' "output model too small" check
    (tmp_path / "ilif.yaml").write_text(yaml.safe_dump(cfg))
    model = YOLO(tmp_path / "ilif.yaml")
    model.save(tmp_path / "ilif.pt")
    args = ["export", f"model={tmp_path / 'ilif.pt'}", "format=onnx", "imgsz=64"]
    proc = yolo(yolo_bin, *args, cwd=tmp_path, check=False)
    assert proc.returncode == 0, last_line(proc)
    ort = pytest.importorskip("onnxruntime", reason="the export extra is not installed: pip install '.[export]'")
    session = ort.InferenceSession(str(tmp_path / "ilif.onnx"))
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    fused = copy.deepcopy(YOLO(tmp_path / "ilif.pt").model.float().eval()).fuse(verbose=False)
    with torch.no_grad():
        expected = fused(x)[0].numpy()
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    np.testing.assert_allclose(got, expected, rtol=ONNX_RTOL, atol=ONNX_ATOL)
