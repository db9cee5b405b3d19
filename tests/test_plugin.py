"""Registration with Ultralytics: what it changes (for our models only), the registry, loading, what it never does."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import ultralytics
import yaml
from ultralytics import YOLO
from ultralytics.nn import tasks

import spikeyolo_ibra
from spikeyolo_ibra import plugin, registry
from spikeyolo_ibra.head import SpikeDetect
from spikeyolo_ibra.neuron import IBLIF, NeuronConfig
from spikeyolo_ibra.plugin import (
    CPU_THREADS_ENV,
    MissingExportExtra,
    UnsupportedUltralytics,
    _cpu_channels_last,
    _cpu_threads,
)

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
TINY_YAML, TINY_PT = FIXTURES / "tiny-spikeyolo.yaml", FIXTURES / "tiny-spikeyolo.pt"


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter of this environment (the import hook active), fixtures importable."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(FIXTURES), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_register_is_idempotent():
    parse = tasks.parse_model
    spikeyolo_ibra.register()
    assert tasks.parse_model is parse


def test_stock_yolov8n_untouched():
    model = YOLO("yolov8n.yaml").model
    assert sum(p.numel() for p in model.parameters()) == 3_157_200
    assert not any(isinstance(m, (SpikeDetect, IBLIF)) for m in model.modules())


def test_no_source_rewriting_in_the_package():
    """The plugin builds on public pieces: it never recompiles Ultralytics' source."""
    pattern = re.compile(r"(?<![\w.])(exec|compile)\(|inspect\.getsource")
    hits = [
        f"{p.relative_to(REPO)}:{n}"
        for p in (REPO / "spikeyolo_ibra").rglob("*.py")
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line) and not line.lstrip().startswith("#")
    ]
    assert hits == []


def test_every_class_a_checkpoint_holds_is_registered():
    """One declaration per class gives the YAML name, __all__ and the safe-load list."""
    model = YOLO(TINY_YAML).model
    ours = {type(m) for m in model.modules() if type(m).__module__.startswith("spikeyolo_ibra")}
    ours |= {type(m.config) for m in model.modules() if isinstance(getattr(m, "config", None), NeuronConfig)}
    assert ours <= set(registry.safe_classes())
    assert set(registry.yaml_blocks()) == {
        "EventEncoder",  # spikeyolo_ibra.events.blocks: the event models' layer 0
        "SpikeAllConvBlock",
        "SpikeConv",
        "SpikeConvBlock",
        "SpikeDetect",
        "SpikeDownsample",
        "SpikeSPPF",
    }
    from spikeyolo_ibra import blocks

    assert set(blocks.__all__) == {c.__name__ for c in registry.safe_classes() if c.__module__ == blocks.__name__}


def test_registering_a_name_twice_is_refused():
    class SpikeConv(torch.nn.Module):  # not the registered one
        pass

    with pytest.raises(ValueError, match="SpikeConv is registered twice"):
        registry.register("channels")(SpikeConv)


# --- what importing changes: nothing for stock models -------------------------------------------------------------
def test_import_changes_nothing_stock_models_meet(tmp_path):
    """A fresh process: no font placed, Ultralytics' requirement checks untouched, until a spiking model is built."""
    code = """
import json
from pathlib import Path
import spikeyolo_ibra
from ultralytics import YOLO
from ultralytics.models.yolo.detect import val
from ultralytics.utils import USER_CONFIG_DIR, checks
font = Path(USER_CONFIG_DIR) / "Arial.ttf"
seen = {"import": font.exists()}
YOLO("yolov8n.yaml")
seen["stock"] = font.exists()
seen["check_requirements"] = val.check_requirements is checks.check_requirements
YOLO("tests/fixtures/tiny-spikeyolo.yaml")
seen["spiking"] = font.exists()
print(json.dumps(seen))
"""
    proc = python(code, YOLO_CONFIG_DIR=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == {
        "import": False,
        "stock": False,
        "check_requirements": True,
        "spiking": True,
    }


def test_the_hook_registers_whichever_ultralytics_module_comes_first():
    """The validator imports nn.tasks partway through Ultralytics' data modules; registering there must still work."""
    code = """
import ultralytics.engine.validator
from ultralytics.data import utils
from ultralytics.engine import model
from ultralytics.nn import tasks
print(tasks.parse_model.spikeyolo, model.yaml_model_load is tasks.yaml_model_load, utils.check_file.spikeyolo)
"""
    proc = python(code, PYTHONPATH=os.environ.get("PYTHONPATH", ""))  # make test-low: Ultralytics 8.4.0 first
    assert proc.returncode == 0 and "not registered" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stdout.splitlines()[-1].split() == ["True", "True", "True"]


def test_a_broken_install_never_breaks_import_ultralytics(tmp_path):
    """The import hook turns any failure of registration into one warning; Ultralytics keeps working."""
    broken = tmp_path / "spikeyolo_ibra"
    broken.mkdir()
    (broken / "__init__.py").write_text("raise RuntimeError('simulated breakage\\nsecond line')\n")
    code = "import ultralytics.nn.tasks; from ultralytics import YOLO; print(YOLO('yolov8n.yaml').task)"
    proc = subprocess.run(  # the broken package first on the path: the hook imports it
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        cwd=tmp_path,  # not the repository, whose own spikeyolo_ibra would come first
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-1] == "detect"
    warnings = [line for line in proc.stderr.splitlines() if "spikeyolo_ibra" in line]
    assert warnings == ["WARNING spikeyolo_ibra not registered (RuntimeError: simulated breakage)"], proc.stderr


@pytest.mark.parametrize(("installed", "outcome"), [("8.3.253", "refused"), ("8.5.0", "warned"), ("8.4.190", "ok")])
def test_ultralytics_version_outside_the_range(installed, outcome, monkeypatch, caplog):
    spec = plugin.supported_ultralytics()
    if spec is None:
        pytest.skip("the package is not installed (run from a source tree): no declared range to check")
    monkeypatch.setattr(ultralytics, "__version__", installed)
    if outcome == "refused":
        with pytest.raises(UnsupportedUltralytics, match=rf"needs ultralytics{re.escape(spec)} but found {installed}"):
            plugin._check_version()
        return
    plugin._check_version()
    assert ("is tested with ultralytics" in caplog.text) == (outcome == "warned")


def test_scale_from_the_file_name():
    model = YOLO("cfg/spikeyolo-m.yaml").model
    assert model.yaml["scale"] == "m" and model.yaml["yaml_file"].endswith("spikeyolo-m.yaml")
    assert YOLO("yolov8s.yaml").model.yaml["scale"] == "s"  # stock names keep Ultralytics' own rule


# --- checkpoints ----------------------------------------------------------------------------------------------------
def test_fixture_checkpoint_of_0_1_loads_and_runs(fixture_model):
    """The committed checkpoint (written by 0.1, which kept T on the encoder and head) gives its recorded output."""
    assert TINY_PT.stat().st_size < 200_000
    model = YOLO(TINY_PT).model.float()
    expected = json.loads((FIXTURES / "tiny-spikeyolo.json").read_text())
    got = fixture_model.output_summary(model)
    assert got["shape"] == expected["shape"]
    for key in ("head", "row_sums"):
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-4, atol=1e-5)
    assert model.model[0].T == model.model[-1].T == 2 == model.yaml["neuron"]["T"]


def test_round_trip_keeps_every_neuron_key(tmp_path):
    written = yaml.safe_load(TINY_YAML.read_text())["neuron"]
    config = NeuronConfig.from_mapping(written).to_mapping()
    assert set(written) == set(config)  # the fixture YAML sets every key, most off their defaults
    assert [k for k, v in NeuronConfig().to_mapping().items() if written[k] == v] == ["coding", "type"]
    YOLO(TINY_YAML).save(tmp_path / "saved.pt")
    for path in (tmp_path / "saved.pt", TINY_PT):
        model = YOLO(path).model
        assert model.yaml["neuron"] == written
        mappings = [m.config.to_mapping() for m in model.modules() if isinstance(m, IBLIF)]
        assert len(mappings) > 20 and all(m == config for m in mappings)


def test_plain_torch_load_in_a_fresh_interpreter():
    """Unpickling imports our classes by module path; the package registers itself on the way."""
    code = (
        "import sys, torch; from make_fixture import fixed_input;"
        f"ckpt = torch.load({str(TINY_PT)!r}, map_location='cpu', weights_only=False);"
        "m = ckpt['model'].float().eval(); y = m(fixed_input())[0];"
        "print(type(m.model[-1]).__module__, tuple(y.shape), 'spikeyolo_ibra' in sys.modules)"
    )
    proc = python(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-5:] == ["spikeyolo_ibra.head", "(1,", "6,", "80)", "True"]


def test_loading_under_ultralytics_safe_load():
    code = (
        "from ultralytics.nn.tasks import _SafeLoad, load_checkpoint; from make_fixture import fixed_input;"
        f"m, _ = load_checkpoint({str(TINY_PT)!r});"
        "print(_SafeLoad.restricted(), type(m.model[-1]).__name__, tuple(m(fixed_input())[0].shape))"
    )
    proc = python(code, ULTRALYTICS_SAFE_LOAD="1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-5:] == ["True", "SpikeDetect", "(1,", "6,", "80)"]


# --- export and opt-ins ---------------------------------------------------------------------------------------------
def test_onnx_export_without_the_extra_is_one_sentence(monkeypatch, tmp_path):
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
def test_bad_cpu_threads_setting_is_one_sentence(value, monkeypatch):
    monkeypatch.setenv(CPU_THREADS_ENV, value)
    with pytest.raises(ValueError, match=rf"^{CPU_THREADS_ENV}='{re.escape(value)}' is invalid: use a whole number"):
        _cpu_threads(SimpleNamespace(device=torch.device("cpu")))


def test_cpu_threads_setting_applies_to_our_models_on_cpu_only(monkeypatch):
    before = torch.get_num_threads()
    target = 1 if before > 1 else 2
    ours, stock = tasks.DetectionModel(str(TINY_YAML), verbose=False), YOLO("yolov8n.yaml").model
    cpu = torch.device("cpu")
    try:
        monkeypatch.setenv(CPU_THREADS_ENV, str(target))
        _cpu_threads(SimpleNamespace(device=torch.device("cuda", 0), model=ours))  # not ours to change
        _cpu_threads(SimpleNamespace(device=cpu, model=stock))  # a stock model's run
        _cpu_threads(SimpleNamespace(device=cpu, model=None, args=SimpleNamespace(model="yolov8n.yaml")))
        assert torch.get_num_threads() == before
        _cpu_threads(SimpleNamespace(device=cpu, model=ours))  # a trainer of ours
        assert torch.get_num_threads() == target
        torch.set_num_threads(before)
        _cpu_threads(SimpleNamespace(device=cpu, args=SimpleNamespace(model=str(TINY_PT))))  # a validator of ours
        assert torch.get_num_threads() == target
        monkeypatch.delenv(CPU_THREADS_ENV)
        torch.set_num_threads(before)
        _cpu_threads(SimpleNamespace(device=cpu, model=ours))  # unset: Ultralytics' choice stands
        assert torch.get_num_threads() == before
    finally:
        torch.set_num_threads(before)


def _conv_weights_nhwc(model: torch.nn.Module) -> list[bool]:
    """Per k x k conv weight (a 1 x 1 or depthwise kernel is both layouts at once), whether it is stored NHWC."""
    return [
        p.is_contiguous(memory_format=torch.channels_last)
        for p in model.parameters()
        if p.ndim == 4 and p.shape[1] > 1 and p.shape[-1] > 1
    ]


def test_cpu_training_of_our_models_runs_channels_last_with_the_same_outputs():
    ours, stock = tasks.DetectionModel(str(TINY_YAML), verbose=False).eval(), YOLO("yolov8n.yaml").model
    ema = copy.deepcopy(ours)
    x = torch.rand(2, 3, 64, 64, dtype=torch.float64)
    before = ours.double()(x)[0]
    _cpu_channels_last(SimpleNamespace(device=torch.device("cuda", 0), model=ours, ema=SimpleNamespace(ema=ema)))
    _cpu_channels_last(SimpleNamespace(device=torch.device("cpu"), model=stock, ema=None))
    assert not any(_conv_weights_nhwc(ours)) and not any(_conv_weights_nhwc(stock))  # GPU runs and stock models
    _cpu_channels_last(SimpleNamespace(device=torch.device("cpu"), model=ours, ema=SimpleNamespace(ema=ema)))
    assert all(_conv_weights_nhwc(ours)) and all(_conv_weights_nhwc(ema))
    torch.testing.assert_close(ours(x)[0], before, rtol=0, atol=1e-9)  # only the layout changed
