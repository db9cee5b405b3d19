"""Hard edges through the stock ``yolo`` command and the Python API: bad input, checkpoints, loading and export.

Every case here has a row in docs/troubleshooting.md. The ``yolo`` runs start together (``cli`` fixture), so their
Python start-up costs overlap on the two cores; each test then reads its own run.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from conftest import CFG, YOLO_BIN
from ultralytics import YOLO
from ultralytics.cfg import entrypoint
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import ASSETS

from spikeyolo_ibra.neuron import IBLIF, NeuronConfig, NeuronConfigError
from spikeyolo_ibra.plugin import CPU_THREADS_ENV, MissingExportExtra, ModelYAMLError, _cpu_threads

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY_YAML = FIXTURES / "tiny-spikeyolo.yaml"
TINY_PT = FIXTURES / "tiny-spikeyolo.pt"
sys.path.insert(0, str(FIXTURES))
from make_fixture import fixed_input, output_summary  # noqa: E402

#: ONNX Runtime against the fused torch model, both float32, measured on the fixture: max abs 1.5e-5 (box outputs
#: up to ~64 px, class scores ~1e-4). The tolerance leaves room for other CPUs; a flipped integer code would exceed it.
ONNX_ATOL, ONNX_RTOL = 1e-4, 1e-3

BAD_NEURON = {
    "bits-0": ({"bits": 0}, "neuron.bits=0 is invalid: use a whole number from 1 to 16."),
    "bits-17": ({"bits": 17}, "neuron.bits=17 is invalid: use a whole number from 1 to 16."),
    "scale-0": ({"scale": 0}, "neuron.scale=0 is invalid: use a positive number (1 disables range alignment)."),
    "scale-neg": ({"scale": -2.5}, "neuron.scale=-2.5 is invalid: use a positive number (1 disables range alignment)."),
    "T-0": ({"T": 0}, "neuron.T=0 is invalid: use a whole number of timesteps, 1 or more."),
    "coding": ({"coding": "ternary"}, "neuron.coding='ternary' is invalid: use one of binary, unary."),
    "levels": (
        {"coding": "unary", "levels": 2.5},
        "neuron.levels=2.5 is invalid: use a whole number, 1 or more (the largest integer a unary neuron emits).",
    ),
}
#: The cases also tried through the stock command (the same code path; each costs a Python start).
CLI_CASES = ("neuron-bits-17", "neuron-levels", "row-width", "row-arg-count")
#: Layer 1 of the real config with a width that differs from its input, or one argument too many.
BAD_ROWS = {
    "width": ([128, 4, 7], [96, 4, 7], "keeps its width, but the YAML gives 40 output channels after 48"),
    "arg-count": ([128, 4, 7], [128, 4, 7, 3], "takes from 3 to 5 positional arguments but 6 were given"),
}


def _model_yaml(path: Path, base: Path, change: Callable[[dict], None]) -> Path:
    cfg = yaml.safe_load(base.read_text())
    change(cfg)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _bad_row(cfg: dict, old: list, new: list) -> None:
    assert cfg["backbone"][1][3] == old
    cfg["backbone"][1][3] = new


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, tiny_shapes: Path) -> dict[str, Path]:
    """Bad model YAMLs, checkpoints, images and datasets, as a new user would make them."""
    tmp = tmp_path_factory.mktemp("bad")
    out = {
        f"neuron-{k}": _model_yaml(tmp / f"{k}.yaml", CFG / "ibra-spikeyolo.yaml", lambda c, s=s: c["neuron"].update(s))
        for k, (s, _) in BAD_NEURON.items()
    }
    for key, (old, new, _) in BAD_ROWS.items():
        out[f"row-{key}"] = _model_yaml(
            tmp / f"row-{key}.yaml", CFG / "ibra-spikeyolo.yaml", lambda c, o=old, n=new: _bad_row(c, o, n)
        )
    data = TINY_PT.read_bytes()
    out["truncated"] = tmp / "truncated.pt"
    out["truncated"].write_bytes(data[: len(data) // 2])
    out["not-a-checkpoint"] = tmp / "notes.pt"
    out["not-a-checkpoint"].write_text("not a checkpoint\n")
    out["stock"] = tmp / "stock-v8n.pt"
    YOLO("yolov8n.yaml").save(out["stock"])
    out["empty"], out["broken-images"], out["spiking-copy"] = (
        tmp / "empty",
        tmp / "broken",
        tmp / "export" / TINY_PT.name,
    )
    for folder in (out["empty"], out["broken-images"], out["spiking-copy"].parent):
        folder.mkdir()
    (out["broken-images"] / "broken.jpg").write_bytes(b"not a jpeg")
    out["spiking-copy"].write_bytes(data)
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


def _commands(f: dict[str, Path], tiny_shapes: Path) -> dict[str, list[str]]:
    """The cases that need a process of their own: the stock command's last line, import-time settings, export."""
    model_cases = {k: [YOLO_BIN, "train", f"model={f[k]}", f"data={tiny_shapes}", "imgsz=64"] for k in CLI_CASES}
    fixture_load = (
        "import sys, torch; from make_fixture import fixed_input;"
        f"ckpt = torch.load({str(TINY_PT)!r}, map_location='cpu', weights_only=False);"
        "m = ckpt['model'].float().eval(); y = m(fixed_input())[0];"
        "print(type(m.model[-1]).__module__, tuple(y.shape), 'spikeyolo_ibra' in sys.modules)"
    )
    safe_load = (
        "from ultralytics.nn.tasks import _SafeLoad, load_checkpoint; from make_fixture import fixed_input;"
        f"m, _ = load_checkpoint({str(TINY_PT)!r});"
        "print(_SafeLoad.restricted(), type(m.model[-1]).__name__, tuple(m(fixed_input())[0].shape))"
    )
    return {
        **model_cases,
        "export-onnx": [YOLO_BIN, "export", f"model={f['spiking-copy']}", "format=onnx", "imgsz=64"],
        "torch-load": [sys.executable, "-c", fixture_load],
        "safe-load": [sys.executable, "-c", safe_load],
    }


@pytest.fixture(scope="module")
def cli(files: dict[str, Path], tiny_shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run those commands two at a time (cwd: a scratch folder) and return their results by name."""
    cwd = tmp_path_factory.mktemp("cwd")
    env = {**os.environ, "PYTHONPATH": str(FIXTURES), "OMP_NUM_THREADS": "1"}  # one thread each: no spin-waiting
    safe = {**env, "ULTRALYTICS_SAFE_LOAD": "1"}

    def run(item: tuple[str, list[str]]) -> tuple[str, subprocess.CompletedProcess]:
        name, cmd = item
        proc = subprocess.run(
            cmd, cwd=cwd, env=safe if name == "safe-load" else env, capture_output=True, text=True, timeout=300
        )
        return name, proc

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(run, _commands(files, tiny_shapes).items()))


def yolo(command: str, project: Path) -> None:
    """What ``yolo <command>`` runs, in this process (paths without spaces); runs go to ``project``."""
    entrypoint(f"yolo {command} project={project}")


def _last_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    return lines[-1] if lines else ""


# --- bad model YAMLs ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", BAD_NEURON)
def test_impossible_neuron_setting_python(case: str, files: dict[str, Path]) -> None:
    with pytest.raises(NeuronConfigError) as info:
        YOLO(files[f"neuron-{case}"])
    assert str(info.value) == BAD_NEURON[case][1]


@pytest.mark.parametrize("case", ["bits-17", "levels"])
def test_impossible_neuron_setting_cli_last_line(case: str, cli: dict) -> None:
    proc = cli[f"neuron-{case}"]
    assert proc.returncode != 0
    assert _last_line(proc) == f"spikeyolo_ibra.neuron.NeuronConfigError: {BAD_NEURON[case][1]}"


@pytest.mark.parametrize("case", BAD_ROWS)
def test_block_with_wrong_args_names_the_layer(case: str, files: dict[str, Path], cli: dict) -> None:
    with pytest.raises(ModelYAMLError) as info:
        YOLO(files[f"row-{case}"])
    message = str(info.value)
    new, why = BAD_ROWS[case][1:]
    assert message.startswith(f"layer 1 of the model YAML, [-1, 3, SpikeAllConvBlock, {new}], cannot be built")
    assert why in message
    assert message.endswith("give SpikeAllConvBlock the args [c2, ratio=4, k=7], channels before width scaling.")
    proc = cli[f"row-{case}"]
    assert proc.returncode != 0
    assert _last_line(proc) == f"spikeyolo_ibra.plugin.ModelYAMLError: {message}"


def test_stock_model_errors_are_not_rewrapped(tmp_path: Path) -> None:
    cfg = yaml.safe_load((Path(ASSETS).parent / "cfg" / "models" / "v8" / "yolov8.yaml").read_text())
    cfg["backbone"][1][3] = [128, 3, 2, None, 1, 1, True, 0]  # one arg too many for Conv
    with pytest.raises(TypeError):
        DetectionModel(cfg, verbose=False)


def test_no_registration_warning_in_any_command(cli: dict) -> None:
    """The import hook registers the plugin under the stock command (no circular-import warning)."""
    assert not [name for name, proc in cli.items() if "not registered" in proc.stderr]


# --- checkpoints, images and data sets given to the stock command (what it prints is the exception's last line) -----
def test_missing_checkpoint(files: dict[str, Path], tiny_shapes: Path, tmp_path: Path) -> None:
    missing = files["empty"] / "best.pt"
    with pytest.raises(FileNotFoundError, match=re.escape(f"No such file or directory: '{missing}'")):
        yolo(f"val model={missing} data={tiny_shapes} imgsz=64", tmp_path)


def test_truncated_checkpoint(files: dict[str, Path], tiny_shapes: Path, tmp_path: Path) -> None:
    """torch raises a bare OSError for a zip cut in the middle; the plugin names the file and the fix."""
    with pytest.raises(TypeError, match=re.escape(f"{files['truncated']} is not a loadable checkpoint: the file is")):
        yolo(f"val model={files['truncated']} data={tiny_shapes} imgsz=64", tmp_path)


def test_file_that_is_not_a_checkpoint(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=re.escape(f"{files['not-a-checkpoint']} is not a loadable checkpoint")):
        yolo(f"predict model={files['not-a-checkpoint']} source={ASSETS / 'bus.jpg'}", tmp_path)


def test_non_spiking_checkpoint_is_a_stock_model(files: dict[str, Path], tmp_path: Path) -> None:
    yolo(f"predict model={files['stock']} source={ASSETS / 'bus.jpg'} imgsz=64 save=False", tmp_path)
    assert not any(isinstance(m, IBLIF) for m in YOLO(files["stock"]).model.modules())  # nothing of ours in it


def test_image_that_does_not_decode_is_skipped(
    files: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    yolo(f"predict model={TINY_PT} source={files['broken-images']} imgsz=64 save=False", tmp_path)
    assert f"Image Read Error {files['broken-images'] / 'broken.jpg'}" in caplog.text


def test_dataset_image_that_does_not_decode_is_ignored(
    files: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    yolo(f"val model={TINY_PT} data={files['broken-dataset']} imgsz=64 plots=False", tmp_path)
    assert f"{files['broken-image-in-dataset']}: ignoring corrupt image/label" in caplog.text


def test_empty_folder(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(f"No images or videos found in {files['empty']}.")):
        yolo(f"predict model={TINY_PT} source={files['empty']} imgsz=64", tmp_path)


def test_dataset_without_labels(files: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    yolo(f"val model={TINY_PT} data={files['no-labels']} imgsz=64 plots=False", tmp_path)
    assert "no labels found in detect set, cannot compute metrics without labels" in caplog.text
    with pytest.raises(ValueError, match="No labels found in"):
        yolo(f"train model={TINY_PT} data={files['no-labels']} imgsz=64 epochs=1 plots=False workers=0", tmp_path)


def test_missing_dataset_yaml(files: dict[str, Path], tmp_path: Path) -> None:
    missing = files["empty"] / "data.yaml"
    with pytest.raises(FileNotFoundError, match=re.escape(f"'{missing}' does not exist")):
        yolo(f"val model={TINY_PT} data={missing} imgsz=64", tmp_path)


# --- checkpoint format, loading -------------------------------------------------------------------------------------
def _neuron_mappings(model: torch.nn.Module) -> list[dict]:
    return [m.config.to_mapping() for m in model.modules() if isinstance(m, IBLIF)]


def test_fixture_checkpoint_loads_and_runs() -> None:
    """The committed checkpoint (current format) loads and gives the output recorded when it was made."""
    assert TINY_PT.stat().st_size < 200_000
    model = YOLO(TINY_PT).model.float()
    expected = json.loads((FIXTURES / "tiny-spikeyolo.json").read_text())
    got = output_summary(model)
    assert got["shape"] == expected["shape"]
    for key in ("head", "row_sums"):
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-4, atol=1e-5)


def test_round_trip_keeps_every_neuron_key(tmp_path: Path) -> None:
    written = yaml.safe_load(TINY_YAML.read_text())["neuron"]
    config = NeuronConfig.from_mapping(written).to_mapping()
    assert set(written) == set(config)  # the fixture YAML sets every key, most off their defaults
    assert [k for k, v in NeuronConfig().to_mapping().items() if written[k] == v] == ["coding", "type"]
    YOLO(TINY_YAML).save(tmp_path / "saved.pt")
    for path in (tmp_path / "saved.pt", TINY_PT):
        model = YOLO(path).model
        assert model.yaml["neuron"] == written
        mappings = _neuron_mappings(model)
        assert len(mappings) > 20 and all(m == config for m in mappings)


def test_plain_torch_load_in_a_fresh_interpreter(cli: dict) -> None:
    """Unpickling imports our classes by module path; the package registers itself on the way."""
    proc = cli["torch-load"]
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["spikeyolo_ibra.head", "(1,", "6,", "80)", "True"]


def test_loading_under_ultralytics_safe_load(cli: dict) -> None:
    proc = cli["safe-load"]
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "SpikeDetect", "(1,", "6,", "80)"]


# --- export ---------------------------------------------------------------------------------------------------------
def test_onnx_export_matches_torch(cli: dict, files: dict[str, Path]) -> None:
    ort = pytest.importorskip("onnxruntime", reason="the export extra is not installed: pip install '.[export]'")
    proc = cli["export-onnx"]
    assert proc.returncode == 0, _last_line(proc)
    session = ort.InferenceSession(str(files["spiking-copy"].with_suffix(".onnx")))
    fused = copy.deepcopy(YOLO(TINY_PT).model.float().eval()).fuse(verbose=False)
    images = torch.cat([fixed_input(), torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))])
    for x in images.split(1):  # exported with a fixed batch of 1
        (onnx_out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        with torch.no_grad():
            torch_out = fused(x)[0].numpy()
        np.testing.assert_allclose(onnx_out, torch_out, rtol=ONNX_RTOL, atol=ONNX_ATOL)


def test_onnx_export_without_the_extra_is_one_sentence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ultralytics.utils import checks

    for name in ("onnx", "onnxruntime", "onnxslim"):  # the same whether or not the extra is installed here
        monkeypatch.setitem(sys.modules, name, None)  # find_spec() now reports it missing
    monkeypatch.setattr(checks, "ONLINE", True)
    monkeypatch.setattr(checks.subprocess, "check_output", pytest.fail)  # any pip/uv call fails the test
    (tmp_path / TINY_PT.name).write_bytes(TINY_PT.read_bytes())
    with pytest.raises(MissingExportExtra) as info:
        YOLO(tmp_path / TINY_PT.name).export(format="onnx", imgsz=64)
    assert str(info.value) == (
        "format=onnx needs onnx, onnxruntime, onnxslim, not installed here: run pip install 'spikeyolo-ibra[export]' "
        "(or pip install onnx onnxruntime onnxslim)."
    )
    assert not list(tmp_path.glob("*.onnx"))


@pytest.mark.parametrize("value", ["two", "0", "-1", "1.5"])
def test_bad_cpu_threads_setting_is_one_sentence(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CPU_THREADS_ENV, value)
    with pytest.raises(ValueError, match=rf"^{CPU_THREADS_ENV}='{re.escape(value)}' is invalid: use a whole number"):
        _cpu_threads(SimpleNamespace(device=torch.device("cpu")))


def test_cpu_threads_setting_applies_on_cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    target = 1 if before > 1 else 2
    try:
        monkeypatch.setenv(CPU_THREADS_ENV, str(target))
        _cpu_threads(SimpleNamespace(device=torch.device("cuda", 0)))  # not ours to change
        assert torch.get_num_threads() == before
        _cpu_threads(SimpleNamespace(device=torch.device("cpu")))
        assert torch.get_num_threads() == target
        monkeypatch.delenv(CPU_THREADS_ENV)
        torch.set_num_threads(before)
        _cpu_threads(SimpleNamespace(device=torch.device("cpu")))  # unset: Ultralytics' choice stands
        assert torch.get_num_threads() == before
    finally:
        torch.set_num_threads(before)
