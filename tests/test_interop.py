"""SpikeYOLO checkpoints (their format, written by tests/fixtures/spikeyolo_format.py) converted, loaded and checked.

The reference outputs come from the fixture's own forward pass of the stand-in model (their semantics: I-LIF over T,
BN(0) padding, biased downsampling convs, head mean over T), never from the converted model.
"""

import hashlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest
import torch
from ultralytics import YOLO
from ultralytics.utils import ASSETS

from spikeyolo_ibra.interop import SpikeYOLOImportError, import_spikeyolo, safe_pickle
from spikeyolo_ibra.interop.cli import main
from spikeyolo_ibra.spike import Equivalence, detect, run_pair, same_detections, to_spike_driven

REPO = Path(__file__).resolve().parents[1]


def exit_status(argv: list[str]) -> int:
    """``spikeyolo-import`` with ``argv``: its exit status (bad input ends in SystemExit)."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def _fixture_module(name: str) -> ModuleType:
    """``tests/fixtures/<name>.py`` as a module (registered, so the stand-ins it defines can be pickled)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "tests" / "fixtures" / f"{name}.py")
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sf = _fixture_module("spikeyolo_format")


def yolo(*args: str, cwd: Path) -> str:
    """The installed stock ``yolo`` command in a subprocess (offline); its output."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("yolo")), *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


IMGSZ = 64


def images(size: int = IMGSZ) -> torch.Tensor:
    """bus.jpg and zidane.jpg, resized to size x size, RGB in [0, 1]."""
    ims = [cv2.resize(cv2.imread(str(ASSETS / n)), (size, size))[..., ::-1] for n in ("bus.jpg", "zidane.jpg")]
    return torch.from_numpy(np.stack(ims).transpose(0, 3, 1, 2).copy()).float() / 255


def ours(path: Path) -> torch.nn.Module:
    return YOLO(path).model.float().eval()


def assert_equal_outputs(theirs: sf.DetectionModel, converted: Path, x: torch.Tensor) -> None:
    """Relative head difference <= 1e-4 and identical detections after NMS."""
    ref = sf.reference(theirs, x)
    with torch.no_grad():
        y = ours(converted)(x)[0]
    assert y.shape == ref.shape
    assert float((y - ref).abs().max() / ref.abs().max()) <= 1e-4
    det_ref, det = detect(ref), detect(y)
    assert sum(len(d) for d in det_ref) > 0  # something to compare
    assert same_detections(det_ref, det)


@pytest.fixture(scope="module")
def their_model() -> sf.DetectionModel:
    return sf.build(nc=3, T=1, seed=0)


@pytest.fixture(scope="module")
def their_file(their_model, tmp_path_factory) -> Path:
    return sf.save(their_model, tmp_path_factory.mktemp("theirs") / "best.pt")


@pytest.fixture(scope="module")
def converted(their_file, tmp_path_factory) -> Path:
    dst = tmp_path_factory.mktemp("ours") / "spikeyolo.pt"
    import_spikeyolo(their_file, dst)
    return dst


# --- the restricted unpickler ----------------------------------------------------------------------------------------
class Evil:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class EvilEval:
    def __reduce__(self):
        return eval, ("__import__('os').system('exit 3')",)


def test_malicious_reduce_is_inert(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": Evil(f"touch {marker}"), "other": EvilEval()}, path)
    loaded = safe_pickle.load(path)
    assert not marker.exists()
    assert isinstance(loaded["model"], safe_pickle.Inert)
    assert loaded["model"].origin.endswith(".system") and loaded["model"].args == (f"touch {marker}",)
    assert loaded["other"].origin == "builtins.eval"
    assert exit_status(["--weights", str(path), "--out", str(tmp_path / "out.pt")]) == 2
    assert not marker.exists() and not (tmp_path / "out.pt").exists()


def raw_archive(path: Path, pickle_bytes: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle_bytes)
    return path


def test_state_of_a_real_object_is_refused(tmp_path):
    # set([]) then BUILD {'x': 1}: setting the state of anything but a stand-in (or a state dict) is refused
    payload = b"\x80\x02c__builtin__\nset\n]\x85R}X\x01\x00\x00\x00xK\x01sb."
    with pytest.raises(safe_pickle.SafeLoadError, match="refuse"):
        safe_pickle.load(raw_archive(tmp_path / "build.pt", payload))
    # bytearray(10**9): an allowed callable that would allocate at the file's word
    payload = b"\x80\x02c__builtin__\nbytearray\nJ\x00\xca\x9a;\x85R."
    with pytest.raises(safe_pickle.SafeLoadError, match="bytearray is only allowed"):
        safe_pickle.load(raw_archive(tmp_path / "alloc.pt", payload))


def test_plain_data_round_trips(tmp_path):
    data = {
        "half": torch.randn(3, 4).half(),
        "float": torch.arange(6.0).view(2, 3).t(),  # a non-contiguous view
        "long": torch.tensor(7),
        "param": torch.nn.Parameter(torch.ones(2)),
        "size": torch.Size([1, 2]),
        "device": torch.device("cpu"),
        "dtype": torch.float16,
        "set": {1, 2},
        "bytes": b"\x00\xff",
        "bytearray": bytearray(b"ab"),
        "nested": [(1, 2.5, "a", None, True)],
    }
    path = tmp_path / "plain.pt"
    torch.save(data, path)
    loaded = safe_pickle.load(path)
    for key in ("half", "float", "long", "param"):
        assert loaded[key].dtype == data[key].dtype and torch.equal(loaded[key], data[key].detach())
    plain = ("size", "device", "dtype", "set", "bytes", "bytearray", "nested")
    assert {k: loaded[k] for k in plain} == {k: data[k] for k in plain}


def test_their_model_loads_as_inert_modules(their_file):
    ckpt = safe_pickle.load(their_file)
    assert ckpt["version"] == "8.0.197" and ckpt["ema"] is None
    model = ckpt["model"]
    assert model.origin == "ultralytics.nn.tasks.DetectionModel"
    classes = {m.class_name for _, m in safe_pickle.walk(model)}
    assert {"MS_GetT", "mem_update", "MultiSpike4", "BNAndPadLayer", "SpikeDetect", "Conv2d"} <= classes


# --- conversion ------------------------------------------------------------------------------------------------------
def test_converted_outputs_equal_theirs(their_model, converted):
    assert_equal_outputs(their_model, converted, images())


@pytest.mark.parametrize(("T", "levels"), [(2, 4), (1, 2)])
def test_timesteps_and_levels_are_carried(T, levels, tmp_path, monkeypatch):
    monkeypatch.setattr(sf.mem_update, "levels", levels)
    theirs = sf.build(nc=2, T=T, seed=1)
    dst = tmp_path / "ours.pt"
    report = import_spikeyolo(sf.save(theirs, tmp_path / "best.pt"), dst)
    assert (report.shape.T, report.shape.levels, report.equivalent) == (T, levels, True)
    neuron = ours(dst).yaml["neuron"]
    assert (neuron["T"], neuron["levels"], neuron["coding"], neuron["scale"]) == (T, levels, "unary", 1)
    assert_equal_outputs(theirs, dst, images())


def test_spike_driven_run_equals_integer_run(converted):
    model = ours(converted).fuse(verbose=False).double()
    eq = Equivalence("float64")
    _, det = run_pair(model, to_spike_driven(model), images().double(), eq, conf=0.25, iou=0.7)
    assert eq.codes > 0 and eq.code_flips == 0 and eq.passed
    assert sum(len(d) for d in det) > 0


def test_checkpoint_format_and_provenance(their_file, converted):
    ckpt = torch.load(converted, map_location="cpu", weights_only=False)
    assert {"model", "train_args", "date", "version", "ema", "spikeyolo_import"} <= set(ckpt)
    model = ckpt["model"]
    assert all(v.dtype in (torch.float32, torch.int64) for v in model.state_dict().values())  # no float16 rounding
    assert model.names == {0: "class0", 1: "class1", 2: "class2"}
    assert model.yaml["scale"] == "custom" and model.yaml["scales"]["custom"] == [0.33, 0.0625, 1024]
    meta = ckpt["spikeyolo_import"]
    assert meta["source"] == their_file.name and meta["source_version"] == "8.0.197"
    assert meta["sha256"] == hashlib.sha256(their_file.read_bytes()).hexdigest()
    assert (meta["tensors"], meta["folded_biases"], meta["shape"]["nc"], meta["equivalent"]) == (755, 4, 3, True)


def test_downsampling_biases_are_folded_into_bn(their_model, converted):
    model = ours(converted)
    for theirs_i, ours_bn in ((1, "model.0.conv.bn"), (3, "model.2.conv.synapse.bn")):
        layer = sf.as_saved(their_model).model[theirs_i]
        expect = layer.encode_bn.running_mean.double() - layer.encode_conv.bias.double()
        assert torch.equal(model.get_submodule(ours_bn).running_mean, expect.float())


def test_ema_is_taken_over_model_under_any_module_path(tmp_path):
    """An unstripped last.pt (model and ema), re-saved from their module imported as plain ``yolo_spikformer``."""
    model, ema = sf.build(nc=2, seed=3), sf.build(nc=2, seed=4)
    src = sf.save(model, tmp_path / "last.pt", ema=ema, stripped=False, module="yolo_spikformer")
    layers = safe_pickle.load(src)["ema"].get("_modules")["model"].get("_modules")
    assert layers["0"].origin == "yolo_spikformer.MS_GetT"
    dst = tmp_path / "ours.pt"
    assert import_spikeyolo(src, dst).entry == "ema"
    assert_equal_outputs(ema, dst, images())


def test_p5_mixer_ratio_is_read_from_the_shapes(tmp_path):
    theirs = sf.build(nc=2, p5_ratio=2, seed=5)  # their YAML's comment: layer 25 becomes [2, 7] at m and l
    dst = tmp_path / "ours.pt"
    assert import_spikeyolo(sf.save(theirs, tmp_path / "best.pt"), dst).shape.ratio == 2
    assert ours(dst).yaml["head"][-2][3][1] == 2
    assert_equal_outputs(theirs, dst, images())


def test_ibra_target_keeps_every_weight(their_file, converted, tmp_path):
    dst = tmp_path / "ibra.pt"
    report = import_spikeyolo(their_file, dst, neuron="ibra")
    assert not report.equivalent and report.cfg == "ibra-spikeyolo.yaml"
    ibra, ilif = ours(dst), ours(converted)
    assert ibra.yaml["neuron"]["coding"] == "binary" and ibra.yaml["neuron"]["scale"] == 100
    a, b = ibra.state_dict(), ilif.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_cli_prints_a_summary(their_file, tmp_path, capsys):
    assert main(["--weights", str(their_file), "--out", str(tmp_path / "sub" / "ours.pt")]) == 0
    out = capsys.readouterr().out
    assert "8.0.197" in out and "folded 4 downsampling biases" in out and "outputs equal" in out
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["ours.pt"]


# --- bad input -------------------------------------------------------------------------------------------------------
def not_a_checkpoint(tmp_path, their_file):
    path = tmp_path / "notes.pt"
    path.write_text("these are not weights\n")
    return path, "not a PyTorch checkpoint"


def truncated(tmp_path, their_file):
    path = tmp_path / "cut.pt"
    path.write_bytes(their_file.read_bytes()[: their_file.stat().st_size // 2])
    return path, "truncated or corrupt"


def ultralytics_checkpoint(tmp_path, their_file):
    path = tmp_path / "yolov8n-random.pt"
    YOLO("yolov8n.yaml").save(path)
    return path, "stock Ultralytics model"


def our_checkpoint(tmp_path, their_file):
    return REPO / "tests" / "fixtures" / "tiny-spikeyolo.pt", "already a spikeyolo_ibra checkpoint"


def gen1(tmp_path, their_file):
    with sf.gen1_neurons():
        model = sf.build(nc=2, T=2)
    return sf.save(model, tmp_path / "gen1.pt"), "GEN1 event-camera variant"


def other_blocks(tmp_path, their_file):
    return sf.save(sf.build(nc=2, replace={4: "MS_Block"}), tmp_path / "block.pt"), "other blocks (MS_Block)"


def other_layout(tmp_path, their_file):
    return sf.save(sf.build(nc=2, replace={2: "MS_ConvBlock"}), tmp_path / "layout.pt"), "differs from snn_yolov8"


def state_dict_only(tmp_path, their_file):
    path = tmp_path / "sd.pt"
    torch.save(sf.build(nc=2).state_dict(), path)
    return path, "bare state dict"


@pytest.mark.parametrize(
    "case",
    [
        not_a_checkpoint,
        truncated,
        ultralytics_checkpoint,
        our_checkpoint,
        gen1,
        other_blocks,
        other_layout,
        state_dict_only,
    ],  # fmt: skip
)
def test_bad_input_is_one_sentence_and_writes_nothing(case, their_file, tmp_path, capsys):
    src, expected = case(tmp_path, their_file)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert exit_status(["--weights", str(src), "--out", str(out_dir / "ours.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and err.startswith(f"spikeyolo-import: {src.name}")
    assert "\n" not in err and "Traceback" not in err
    assert list(out_dir.iterdir()) == []


def test_refuses_to_overwrite_the_source_and_odd_names(their_file, tmp_path):
    with pytest.raises(SpikeYOLOImportError, match="source file itself"):
        import_spikeyolo(their_file, their_file)
    with pytest.raises(SpikeYOLOImportError, match="does not end in .pt"):
        import_spikeyolo(their_file, tmp_path / "ours.pth")
    assert not (tmp_path / "ours.pth").exists()


def test_a_failed_write_leaves_nothing(their_file, tmp_path, monkeypatch):
    def broken_save(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        import_spikeyolo(their_file, tmp_path / "ours.pt")
    assert list(tmp_path.iterdir()) == []


def test_torch_load_of_their_file_needs_their_code(their_file):
    """Why the safe reader exists: stock torch.load cannot even import their module."""
    with pytest.raises(ModuleNotFoundError, match="yolo_spikformer"):
        torch.load(their_file, map_location="cpu", weights_only=False)


def test_finetune_table_regenerates_from_the_shipped_results(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))  # the script imports its sibling _common.py
    from finetune_from_ilif import ARMS, table

    results = REPO / "benchmarks" / "results" / "finetune"
    rows = {line.split("|")[1].strip(): line for line in table(results).splitlines() if line.startswith("| ")}
    for arm in ARMS:
        runs = [json.loads(p.read_text()) for p in sorted(results.glob(f"{arm}-s*.json"))]
        assert len(runs) == 2 and all(r["epochs"] == 5 for r in runs)
        cells = [c.strip() for c in rows[arm].split("|")]
        assert cells[-4] == ", ".join(f"{r['mAP50']:.3f}" for r in runs)  # pycocotools mAP50 per seed
        assert float(cells[4]) == pytest.approx(sum(r["mAP50_per_epoch"][0] for r in runs) / 2, abs=5e-4)


# --- slow: scale n at 320 px, and the whole toolchain on the converted file -----------------------------------------
@pytest.mark.slow
def test_scale_n_equals_theirs_on_bus(tmp_path):
    theirs = sf.build(width=0.375, depth=0.33, nc=80, T=1, seed=0)
    dst = tmp_path / "spikeyolo-n.pt"
    report = import_spikeyolo(sf.save(theirs, tmp_path / "best.pt"), dst)
    assert (report.shape.scale, report.tensors, report.shape.nc) == ("n", 755, 80)
    first = theirs.model
    assert sum(first[i].encode_conv.bias.numel() for i in (1, 3, 5, 7)) == 720  # the folded biases at scale n
    assert_equal_outputs(theirs, dst, images(320)[:1])


@pytest.fixture(scope="module")
def shapes_import(tiny_shapes, tmp_path_factory) -> Path:
    """Their model with the built-in set's 6 classes, converted with the command-line tool."""
    from spikeyolo_ibra.data.shapes import SHAPES_NAMES

    tmp = tmp_path_factory.mktemp("shapes-import")
    model = sf.build(nc=6, seed=2)
    model.names = dict(enumerate(SHAPES_NAMES))
    src = sf.save(model, tmp / "their-shapes.pt")
    cmd = [sys.executable, str(REPO / "tools" / "import_spikeyolo.py"), "--weights", str(src), "--out", "ours.pt"]
    done = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=300, env={**os.environ})
    assert done.returncode == 0, done.stderr
    return tmp / "ours.pt"


@pytest.mark.slow
def test_yolo_val_predict_export_and_train(shapes_import, tiny_shapes):
    runs = shapes_import.parent
    common = ["imgsz=64", "device=cpu", f"project={runs}", "exist_ok=True"]
    out = yolo("val", f"model={shapes_import}", f"data={tiny_shapes}", "save_json=True", "plots=False",
               "batch=4", "workers=0", "name=val", *common, cwd=runs)  # fmt: skip
    assert "pycocotools" in out and (runs / "val" / "coco_metrics.json").is_file()
    yolo("predict", f"model={shapes_import}", f"source={ASSETS / 'bus.jpg'}", "name=predict", *common, cwd=runs)
    assert (runs / "predict" / "bus.jpg").is_file()
    yolo("export", f"model={shapes_import}", "format=onnx", "imgsz=64", cwd=runs)
    ort = pytest.importorskip("onnxruntime", reason="the export extra is not installed: pip install '.[export]'")
    session = ort.InferenceSession(str(shapes_import.with_suffix(".onnx")))
    x = images()[:1]
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(onnx_out, ours(shapes_import)(x)[0].numpy(), rtol=1e-3, atol=1e-3)
    out = yolo("train", f"model={shapes_import}", f"data={tiny_shapes}", "epochs=1", "batch=4", "workers=0",
               "plots=False", "name=train", *common, cwd=runs)  # fmt: skip
    assert "Transferred" in out
    tuned = torch.load(runs / "train" / "weights" / "last.pt", map_location="cpu", weights_only=False)
    assert tuned["model"].yaml["neuron"]["coding"] == "unary"  # fine-tuned with their neuron


@pytest.mark.slow
def test_spike_infer_verify_on_the_converted_file(shapes_import):
    out = shapes_import.parent / "spike"
    cmd = [sys.executable, str(REPO / "tools" / "spike_infer.py"), "--weights", str(shapes_import), "--source",
           str(ASSETS), "--imgsz", "64", "--verify", "--out", str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "equivalence: PASS" in done.stdout and (out / "report.json").is_file()


def test_reader_does_not_import_their_module(their_file):
    before = set(sys.modules)
    safe_pickle.load(their_file)
    assert not any("yolo_spikformer" in m or "spikingjelly" in m for m in set(sys.modules) - before)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated; it still writes the archive
def test_archive_must_have_one_data_pickle(tmp_path):
    path = tmp_path / "x.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a/other.txt", "x")
    with pytest.raises(safe_pickle.SafeLoadError, match="not one written by torch.save"):
        safe_pickle.load(path)
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), buf)
    (tmp_path / "ts.pt").write_bytes(buf.getvalue())
    with pytest.raises(safe_pickle.SafeLoadError, match="TorchScript"):
        safe_pickle.load(tmp_path / "ts.pt")


def test_model_yaml_needs_no_checkout(tmp_path, monkeypatch):
    """The default YAML is always the package's; --cfg takes a path or one of the package's YAML names."""
    from spikeyolo_ibra.interop.convert import model_yaml
    from spikeyolo_ibra.plugin import PACKAGE

    monkeypatch.chdir(tmp_path)
    (tmp_path / "spikeyolo.yaml").write_text("not: ours\n")  # a local file of that name does not replace the default
    assert model_yaml("ilif") == PACKAGE / "cfg" / "spikeyolo.yaml"
    assert model_yaml("ibra") == PACKAGE / "cfg" / "ibra-spikeyolo.yaml"
    assert model_yaml("ilif", "ibra-spikeyolo.yaml") == PACKAGE / "cfg" / "ibra-spikeyolo.yaml"
    assert model_yaml("ilif", "spikeyolo.yaml") == Path("spikeyolo.yaml")  # an existing path is taken as given
    with pytest.raises(SpikeYOLOImportError, match="--neuron 'lif' is not known: use one of ilif, ibra."):
        model_yaml("lif")
