"""Spike-driven inference: encoding tables, integer vs spike equivalence on firing networks, SOPs, energy, the CLI."""

import copy
import dataclasses
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from conftest import CFG, REPO
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import ASSETS
from ultralytics.utils.torch_utils import fuse_conv_and_bn

from spikeyolo_ibra.blocks import SpikeConv, SpikeDownsample
from spikeyolo_ibra.energy import COSTS, energy_totals, layer_energy_mj
from spikeyolo_ibra.head import SpikeDetect
from spikeyolo_ibra.neuron import IBLIF, NeuronConfig, neuron_context
from spikeyolo_ibra.spike import (
    Equivalence,
    Monitor,
    calibrate_bn,
    encode,
    plane_weights,
    run_pair,
    spike_counts,
    to_spike_driven,
)
from spikeyolo_ibra.spike.cli import main
from spikeyolo_ibra.spike.runtime import require_binary

IMGSZ = 64
BUS = ASSETS / "bus.jpg"


def images(size: int = IMGSZ) -> torch.Tensor:
    """bus.jpg and zidane.jpg, resized to size x size, RGB in [0, 1]."""
    ims = [cv2.resize(cv2.imread(str(ASSETS / n)), (size, size))[..., ::-1] for n in ("bus.jpg", "zidane.jpg")]
    return torch.from_numpy(np.stack(ims).transpose(0, 3, 1, 2).copy()).float() / 255


@pytest.fixture(scope="module", params=["ibra-spikeyolo.yaml", "spikeyolo.yaml"])
def fused(request) -> DetectionModel:
    """A scale-n model whose BN statistics are calibrated on real images (so it fires), fused, float32."""
    torch.manual_seed(0)
    model = calibrate_bn(
        DetectionModel(copy.deepcopy(YOLO(str(CFG / request.param)).model.yaml), verbose=False), images()
    )
    with torch.no_grad():
        for branch in model.model[-1].cv3:  # class priors near 0.5 instead of 1e-4, so NMS has detections to compare
            branch[-1].synapse.bias.zero_()
    return model.eval().fuse(verbose=False)


def retime(model: DetectionModel, T: int) -> DetectionModel:
    """The same fused weights run with T logical timesteps (T lives in the neurons, the encoder and the head)."""
    model = copy.deepcopy(model)
    for m in model.modules():
        if isinstance(m, IBLIF):
            m.config = dataclasses.replace(m.config, T=T)
        elif isinstance(m, (SpikeDownsample, SpikeDetect)):
            m.T = T
    return model


def test_encoding_tables():
    binary = NeuronConfig(bits=3, scale=2.0)
    q = torch.tensor([0.0, 1.0, 5.0, 6.0, 7.0])
    assert encode(q, binary).T.tolist() == [[0, 0, 0], [1, 0, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1]]
    assert plane_weights(binary).tolist() == [0.5, 1.0, 2.0]
    assert spike_counts(q, binary).tolist() == [0, 1, 2, 2, 3]
    unary = NeuronConfig(coding="unary", levels=4, scale=1.0)
    assert encode(torch.tensor([0.0, 2.0, 4.0]), unary).T.tolist() == [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]]
    assert plane_weights(unary).tolist() == [1.0] * 4
    for config in (binary, unary):  # q / N = sum_k w_k b_k
        codes = torch.arange(config.max_code + 1, dtype=torch.float64)
        weights = plane_weights(config).view(-1, 1)
        assert torch.equal((encode(codes, config) * weights).sum(0), codes / config.scale)


def test_non_binary_input_is_refused():
    require_binary(torch.tensor([0.0, 1.0]))
    with pytest.raises(AssertionError):
        require_binary(torch.tensor([0.0, 0.5]))


@pytest.mark.slow
@pytest.mark.parametrize("T", [1, 2])
def test_float64_equivalence_on_a_firing_network(fused, T):
    model = retime(fused, T).double()
    spike = to_spike_driven(model)
    eq = Equivalence("float64")
    with Monitor(spike) as monitor:
        _, det = run_pair(model, spike, images().double(), eq, conf=0.001, iou=0.7)
    rows = [r for r in monitor.rows() if r["kind"] == "spiking"]
    config = next(m.config for m in model.modules() if isinstance(m, IBLIF))
    # the network fires: a stated share of non-zero codes, and codes in the upper half of the range
    codes = sum(r["neurons"] for r in rows)
    active = sum(r["nonzero_share"] * r["neurons"] for r in rows) / codes
    assert active >= 0.05, active
    assert max(r["max_code_seen"] for r in rows) > config.max_code / 2
    assert sum(len(d) for d in det) > 0
    assert eq.code_flips == 0 and eq.codes > 0
    assert eq.detections_identical and eq.passed
    assert eq.max_abs_diff < 1e-8
    for r in rows:  # SOPs counted on the binary planes equal SOPs derived from the integer codes
        assert r["sops"] == pytest.approx(r["sops_from_codes"], rel=1e-12, abs=0)


@pytest.mark.slow
def test_sequential_accumulation_equals_batched(fused):
    model = copy.deepcopy(fused).double()
    x = images()[:1].double()
    with torch.no_grad():
        batched = to_spike_driven(model)(x)[0]
        sequential = to_spike_driven(model, accumulate="sequential")(x)[0]
    assert (batched - sequential).abs().max() < 1e-8


@pytest.mark.slow
def test_float32_numbers_are_reported(fused):
    """float32: flips may occur (summation order); the numbers are reported, not asserted equal."""
    reports = {}
    for name, accumulator in (("float32", None), ("float32+float64 accumulation", torch.float64)):
        eq = Equivalence("float32")
        run_pair(fused, to_spike_driven(fused, accumulator=accumulator), images(), eq, conf=0.001, iou=0.7)
        reports[name] = eq.as_dict()
        assert 0 <= eq.flip_fraction <= 1 and np.isfinite(eq.max_abs_diff)
    print(reports)


def test_energy_of_a_two_conv_network_matches_hand_computation():
    with neuron_context(NeuronConfig(bits=2, scale=1.0)):
        net = torch.nn.Sequential(SpikeDownsample(3, 4, 3, 1, 1, first=True), SpikeConv(4, 2, 3, bn=False)).eval()
    encoder = net[0].conv
    encoder.conv = fuse_conv_and_bn(encoder.conv, encoder.bn)
    del encoder.bn
    encoder.forward = encoder.forward_fuse
    with torch.no_grad():  # the encoder outputs 0, 1, 2, 3.4 everywhere: codes 0, 1, 2, 3 (popcounts 0, 1, 1, 2)
        encoder.conv.weight.zero_()
        encoder.conv.bias.copy_(torch.tensor([0.0, 1.0, 2.0, 3.4]))
    spike = to_spike_driven(net)
    with Monitor(spike) as monitor, torch.no_grad():
        spike(torch.rand(1, 3, 4, 4))
    rows = monitor.rows()
    # per-layer statistics of codes 0, 1, 2, 3 (one channel each) with K = 2, Q = 3
    assert rows[1]["mean_code"] == pytest.approx(1.5)
    assert rows[1]["spikes_per_neuron"] == pytest.approx(1.0)  # popcounts 0 + 1 + 1 + 2 over 4 channels
    assert rows[1]["firing_rate"] == pytest.approx(0.5)  # per virtual step: 1 spike over K = 2 steps
    assert rows[1]["level_utilisation"] == pytest.approx(1.0)  # all Q + 1 = 4 codes seen
    assert layer_energy_mj(rows[1], COSTS["fp32"]) == pytest.approx(0.9 * 800 * 1e-9)
    assert layer_energy_mj(rows[0], COSTS["fp32"]) == pytest.approx(4.6 * 3 * 4 * 9 * 16 * 1e-9)
    # 4 spikes per input position; fan-out of a 3x3 pad-1 kernel on 4x4: 4 interior x 9 + 8 edge x 6 + 4 corner x 4
    sops = 4 * (4 * 9 + 8 * 6 + 4 * 4) * 2
    encoder_macs = 3 * 4 * 9 * 16
    ann_macs = encoder_macs + 4 * 2 * 9 * 16
    assert rows[1]["sops"] == rows[1]["sops_from_codes"] == sops == 800
    e = energy_totals(rows, COSTS["fp32"])
    assert e["snn_mJ"] == pytest.approx((4.6 * encoder_macs + 0.9 * sops) * 1e-9)  # 8668.8 pJ
    assert e["ann_mJ"] == pytest.approx(4.6 * ann_macs * 1e-9)  # 13248 pJ
    assert e["qann_int8_mJ"] == pytest.approx(0.23 * ann_macs * 1e-9)  # 662.4 pJ
    assert e["snn_int8_mJ"] == pytest.approx((0.23 * encoder_macs + 0.03 * sops) * 1e-9)  # 421.44 pJ
    assert e["ratio"] == pytest.approx(13248 / 8668.8)
    assert e["qann_ratio"] == pytest.approx(662.4 / 421.44)  # both sides int8


def save(model: DetectionModel, path):
    """Ultralytics' checkpoint format ({'model': ...})."""
    torch.save({"model": model, "train_args": {}}, path)
    return path


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A narrow IBRA model (width 1/16 of scale n's channels) that fires and detects, fused in a second."""
    cfg = copy.deepcopy(YOLO(str(CFG / "ibra-spikeyolo.yaml")).model.yaml)
    cfg["scales"] = {"n": [0.33, 0.0625, 1024]}
    torch.manual_seed(0)
    model = calibrate_bn(DetectionModel(cfg, verbose=False), images(96))
    with torch.no_grad():
        for branch in model.model[-1].cv3:  # class priors near 0.5, so there are detections to compare
            branch[-1].synapse.bias.zero_()
    return save(model.eval().fuse(verbose=False), tmp_path_factory.mktemp("tiny") / "tiny.pt")


@pytest.mark.slow
def test_cli_on_a_firing_scale_n_model(fused, tmp_path, capsys):
    check_cli(save(fused, tmp_path / "n.pt"), tmp_path / "run", capsys)


def test_cli_writes_the_promised_files(tiny_checkpoint, tmp_path, capsys):
    check_cli(tiny_checkpoint, tmp_path, capsys)


def check_cli(checkpoint, tmp_path, capsys):
    tmp_path.mkdir(exist_ok=True)
    out = tmp_path / "report"
    args = ["--weights", str(checkpoint), "--source", str(BUS), "--imgsz", "96", "--verify", "--out", str(out)]
    assert main([*args, "--conf", "0.001"]) == 0
    assert "PASS" in capsys.readouterr().out
    names = {p.name for p in out.iterdir()}
    assert {"report.json", "detections.json", "bus.jpg", "layers.png", "bitplanes.png", "report.html"} <= names
    report = json.loads((out / "report.json").read_text())
    assert report["equivalence"]["passed"] is True
    assert report["equivalence"]["code_flips"] == 0 < report["equivalence"]["codes"]
    assert json.loads((out / "detections.json").read_text())[0]["detections"]  # identical and not empty
    assert 0 < report["energy"]["sops"]
    assert report["energy"]["snn_mJ"] > 0 and report["energy"]["ratio"] > 1
    assert {"neurons", "mean_code", "firing_rate", "spikes_per_neuron", "level_utilisation", "sops", "macs"} <= set(
        report["layers"][1]
    )
    assert "data:image/png;base64," in (out / "report.html").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no temporary folder left beside it


def _bad_inputs(tmp_path, checkpoint):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a checkpoint")
    stock = tmp_path / "yolov8n.pt"
    YOLO("yolov8n.yaml").save(stock)
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    cases = {
        "missing weights": (tmp_path / "nope.pt", BUS, "does not exist", []),
        "corrupt weights": (corrupt, BUS, "cannot be loaded", []),
        "non-spiking model": (stock, BUS, "non-spiking", []),
        "missing source": (checkpoint, tmp_path / "nope.jpg", "no images", []),
        "empty folder": (checkpoint, empty, "no images", []),
        "undecodable image": (checkpoint, broken, "could not be decoded", []),
        "imgsz off the stride": (checkpoint, BUS, "is not a positive multiple of 32: use e.g. --imgsz 128", ["100"]),
        "imgsz zero": (checkpoint, BUS, "is not a positive multiple of 32: use e.g. --imgsz 32", ["0"]),
        "unknown device": (checkpoint, BUS, "is not a torch device", ["64", "--device", "gpu0"]),
        "weights not a .pt file": (broken, BUS, "is not a .pt checkpoint", []),
        "empty source": (checkpoint, " ", "--source is empty", []),
    }
    if not torch.cuda.is_available():
        cases["CUDA asked, none here"] = (checkpoint, BUS, "asks for CUDA", ["64", "--device", "cuda"])
    return cases


def test_bad_inputs_give_one_sentence_and_leave_nothing(tiny_checkpoint, tmp_path, capsys):
    for case, (weights, source, phrase, imgsz_and_more) in _bad_inputs(tmp_path, tiny_checkpoint).items():
        out = tmp_path / "out"
        args = ["--imgsz", *(imgsz_and_more or ["64"])]
        code = main(["--weights", str(weights), "--source", str(source), *args, "--out", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2, case
        assert len(err) == 1 and phrase in err[0], (case, err)
        assert not out.exists(), case
        assert not list(tmp_path.glob(".out.*")), case


def test_script_reports_bad_weights_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "spike_infer.py"), "--weights", str(tmp_path / "x.pt")]
        + ["--source", str(BUS), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "does not exist" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_verifier_fails_when_spike_mode_is_wrong(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    """Plane weights off by 1 %: the check must see it (FAIL, exit 1), else a PASS would mean nothing."""
    import spikeyolo_ibra.spike.runtime as runtime

    exact = runtime.plane_weights
    monkeypatch.setattr(runtime, "plane_weights", lambda *args: exact(*args) * 1.01)
    args = ["--weights", str(tiny_checkpoint), "--source", str(BUS), "--imgsz", "96", "--verify", "--conf", "0.001"]
    assert main([*args, "--out", str(tmp_path / "report")]) == 1
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["equivalence"]["passed"] is False and report["equivalence"]["code_flips"] > 0
    assert "FAIL" in capsys.readouterr().out


def test_out_is_replaced_only_when_it_holds_a_report(tiny_checkpoint, tmp_path, capsys):
    args = ["--weights", str(tiny_checkpoint), "--source", str(BUS), "--imgsz", "64"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main([*args, "--out", str(mine)]) == 2
    assert "is not a spike-infer report" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    old = tmp_path / "old"
    old.mkdir()
    (old / "report.json").write_text("{}")
    (old / "stale.txt").write_text("from an earlier run")
    assert main([*args, "--out", str(old)]) == 0
    assert not (old / "stale.txt").exists() and json.loads((old / "report.json").read_text())["images"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "old"]  # nothing left beside them


def test_calibration_sets_statistics_and_restores_momentum():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4, momentum=0.03))
    x = torch.rand(2, 3, 8, 8)
    calibrate_bn(net, x)
    with torch.no_grad():
        y = net[0](x)
    assert torch.allclose(net[1].running_mean, y.mean((0, 2, 3)), atol=1e-6)  # the data's own mean, not 0.03 of it
    assert net[1].momentum == 0.03 and not net.training
