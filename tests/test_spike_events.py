"""Spike-driven inference on event-camera data: converted samples and .dat windows, T bins x K planes, verified.

A tiny event model (ibra-spikeyolo-events.yaml at 1/16 of scale n's width, T = 2, K = 9, N = 100) with BN statistics
calibrated on event frames of a simulated recording, so that it fires.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from ultralytics.nn.tasks import DetectionModel, yaml_model_load

from spikeyolo_ibra.energy import COSTS, conv_macs, effective_synops, sops_from_counts
from spikeyolo_ibra.events import read_dat, save_sample, to_frames, write_dat
from spikeyolo_ibra.events.shapes_events import SIZE, simulate
from spikeyolo_ibra.spike import calibrate_bn, spike_infer
from spikeyolo_ibra.spike.cli import main
from spikeyolo_ibra.spike.inference import EventSamples, Inference, Settings, event_input, open_source
from spikeyolo_ibra.spike.runtime import SpikeDrivenSynapse, spike_counts, unfold_time

REPO = Path(__file__).resolve().parents[1]
T, WINDOW_US = 2, 50_000
ENDS = (300_000, 400_000, 500_000, 600_000)


def tiny_event_cfg(timesteps: int = T) -> dict:
    """ibra-spikeyolo-events.yaml at 1/16 of scale n's width, 4 classes, neuron T = ``timesteps``."""
    cfg = yaml_model_load(REPO / "cfg" / "ibra-spikeyolo-events.yaml")
    cfg["scales"] = {"n": [0.33, 0.0625, 1024]}
    cfg["neuron"] = {**cfg["neuron"], "T": timesteps}
    cfg["nc"] = 4
    return cfg


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> tuple[Path, Path]:
    """(a simulated recording as a .dat, a folder of its samples at ENDS written with save_sample of to_frames)."""
    root = tmp_path_factory.mktemp("events")
    events, _ = simulate(1, seed=0)
    dat = write_dat(root / "shapes_td.dat", events, SIZE, SIZE)
    samples = root / "samples"
    samples.mkdir()
    for end in ENDS:
        save_sample(samples / f"shapes_{end}.tif", to_frames(events, end, WINDOW_US, T, SIZE, SIZE))
    return dat, samples


@pytest.fixture(scope="module")
def event_checkpoint(recording, tmp_path_factory) -> Path:
    """The tiny event model, BN calibrated on the recording's event frames, class priors near 0.5, as a checkpoint."""
    events = read_dat(recording[0])
    ends = range(200_000, 2_000_000, 150_000)
    frames = np.stack([to_frames(events, e, WINDOW_US, T, SIZE, SIZE) for e in ends])
    x = torch.from_numpy(frames.reshape(len(ends), 2 * T, SIZE, SIZE)).float() / 255
    torch.manual_seed(0)
    model = calibrate_bn(DetectionModel(tiny_event_cfg(), ch=2 * T, verbose=False), x)
    with torch.no_grad():
        for branch in model.model[-1].cv3:
            branch[-1].synapse.bias.zero_()
    path = tmp_path_factory.mktemp("ckpt") / "events.pt"
    torch.save({"model": model.eval(), "train_args": {}}, path)
    return path


def test_verify_passes_in_float64_on_a_sample_and_on_the_same_window_of_the_recording(
    event_checkpoint, recording, tmp_path
):
    dat, samples = recording
    sample = samples / f"shapes_{ENDS[0]}.tif"
    by_sample = spike_infer(event_checkpoint, sample, out=tmp_path / "sample", imgsz=64, verify=True, conf=0.01)
    by_window = spike_infer(
        event_checkpoint, dat, out=tmp_path / "dat", imgsz=64, verify=True, conf=0.01, t_end=ENDS[0], window_ms=50
    )
    for report in (by_sample, by_window):
        eq = report["equivalence"]
        assert eq["passed"] and eq["dtype"] == "float64" and eq["code_flips"] == 0 and eq["codes"] > 0
        assert report["neuron"]["T"] == T and report["per_image"][0]["sops"] > 0
    # the converter's sample and the recording's window are the same input: the same spikes, SOPs and detections
    a, b = by_sample["per_image"][0], by_window["per_image"][0]
    assert (a["sops"], a["spikes"], a["detections"]) == (b["sops"], b["spikes"], b["detections"]) and a["detections"]
    assert Path(b["image"]).name == f"shapes_td@{ENDS[0]}us.dat"
    for folder, report in ((tmp_path / "sample", by_sample), (tmp_path / "dat", by_window)):
        entry = report["per_image"][0]
        assert (folder / entry["bins"]).is_file() and (folder / entry["heatmap"]).is_file()
        assert "time bins of the event sample" in (folder / "report.html").read_text()


def test_a_folder_of_samples_and_several_windows_run_in_order(event_checkpoint, recording):
    dat, samples = recording
    source = open_source(samples, 64)
    assert isinstance(source, EventSamples) and [Path(f).stem for f in source.files] == [f"shapes_{e}" for e in ENDS]
    windows = open_source(dat, 64, t_end=list(ENDS[:2]), window_ms=50)
    inference = Inference(event_checkpoint, Settings(imgsz=64, device="cpu"))
    got = [r.figures["sops"] for r in inference.run(windows)]
    expected = [r.figures["sops"] for r in inference.run(open_source(samples, 64))][:2]
    assert got == expected and got[0] != got[1]


def test_a_folder_of_samples_passes_over_caches_and_refuses_pictures(recording, tmp_path):
    import shutil

    from spikeyolo_ibra.spike import SpikeInferError

    folder = tmp_path / "val"
    shutil.copytree(recording[1], folder)
    for f in folder.glob("*.tif"):
        np.save(f.with_suffix(".npy"), np.zeros(1))  # what cache=disk leaves beside each sample
    assert len(open_source(folder, 64).files) == len(ENDS)
    cv2.imwrite(str(folder / "photo.jpg"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(SpikeInferError, match=r"holds event samples and pictures or videos \(photo\.jpg\)"):
        open_source(folder, 64)


def test_the_input_is_the_sample_in_time_order_padded_with_zeros():
    from ultralytics.data.augment import LetterBox

    frames = np.zeros((T, 2, 48, 64), np.uint8)
    frames[0, 1, 10:20, 5:9] = 3  # ON events in bin 0 only
    frames[1, 0, 30, 40] = 7  # one OFF pixel in bin 1
    x = event_input(frames, LetterBox(64, auto=False, stride=32), torch.float64, torch.device("cpu"))
    assert x.shape == (1, 2 * T, 64, 64)
    assert (x[0, :, :8] == 0).all() and (x[0, :, 56:] == 0).all()  # 8 rows of 0 padding above and below, no 114
    inside = (x[0, :, 8:56] * 255).round().to(torch.uint8).numpy()
    assert np.array_equal(inside, frames.reshape(2 * T, 48, 64))  # channel 2k + p = bin k, polarity p; bin 0 first


def test_energy_and_sops_count_every_time_bin(event_checkpoint, recording):
    """SOPs with T = 2 are the sum of each bin's SOPs; the encoder's MACs and effective MACs are over both bins."""
    _, samples = recording
    inference = Inference(event_checkpoint, Settings(imgsz=64, device="cpu"))
    per_bin = torch.zeros(T, dtype=torch.float64)
    encoder_bins: list[float] = []

    def count(m, args):
        q = unfold_time(m.neuron.codes(args[0]), T)
        for t in range(T):
            per_bin[t] += sops_from_counts(spike_counts(q[t], m.neuron.config), m.conv)

    encoder = inference.spike.model[0].conv
    hooks = [m.register_forward_pre_hook(count) for m in inference.spike.modules() if isinstance(m, SpikeDrivenSynapse)]
    hooks.append(
        encoder.register_forward_hook(
            lambda _m, a, _y: encoder_bins.extend(effective_synops(a[0][t : t + 1], encoder.conv) for t in range(T))
        )
    )
    try:
        [result] = list(inference.run(open_source(samples / f"shapes_{ENDS[1]}.tif", 64)))
    finally:
        for h in hooks:
            h.remove()
    f, rows = result.figures, inference.summary().rows
    assert per_bin.min() > 0 and f["sops"] == pytest.approx(float(per_bin.sum()), rel=1e-12)
    assert rows[0]["kind"] == "encoder" and rows[0]["bins"] == T
    one_bin = conv_macs(encoder.conv, (16, 16))  # 64 px, stride 4
    assert rows[0]["macs_per_step"] == one_bin and f["encoder_macs"] == rows[0]["macs"] == T * one_bin
    assert rows[0]["effective_ops"] == pytest.approx(sum(encoder_bins)) and min(encoder_bins) > 0
    fp32 = COSTS["fp32"]
    assert f["snn_mJ"] == pytest.approx((fp32.mac_pj * T * one_bin + fp32.ac_pj * f["sops"]) / 1e9)


def _bad(tmp_path: Path, capsys, *args: str) -> str:
    """The one line ``spike-infer`` prints for ``args``; it must exit 2 and leave the folder as it was."""
    before = set(tmp_path.iterdir())
    with pytest.raises(SystemExit) as exit:
        main([*args, "--imgsz", "64", "--device", "cpu", "--out", str(tmp_path / "report")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit.value.code == 2 and len(err) == 1 and err[0].startswith("spike-infer: "), err
    assert set(tmp_path.iterdir()) == before  # no report, no temporary folder
    return err[0]


def test_bad_event_input_is_one_sentence_and_writes_nothing(
    event_checkpoint, tiny_checkpoint, recording, tmp_path, capsys
):
    dat, samples = recording
    weights = ["--weights", str(event_checkpoint)]
    assert "--t-end is needed" in _bad(tmp_path, capsys, *weights, "--source", str(dat))
    no_window = _bad(tmp_path, capsys, *weights, "--source", str(dat), "--t-end", "300000")
    assert "--window-ms is needed" in no_window and "--window-ms 50." in no_window
    early = _bad(tmp_path, capsys, *weights, "--source", str(dat), "--t-end", "10", "--window-ms", "50")
    assert "--t-end 10 is earlier than the 50 ms window" in early
    sample = samples / f"shapes_{ENDS[0]}.tif"
    assert "applies to an event recording" in _bad(tmp_path, capsys, *weights, "--source", str(sample), "--t-end", "5")

    three = tmp_path / "three.tif"  # a sample of 3 bins for a model of 2
    save_sample(three, to_frames(read_dat(dat), ENDS[0], WINDOW_US, 3, SIZE, SIZE))
    wrong_t = _bad(tmp_path, capsys, *weights, "--source", str(three))
    assert "is an event sample of 3 time bins" in wrong_t and "--timesteps 2" in wrong_t
    image_model = _bad(tmp_path, capsys, "--weights", str(tiny_checkpoint), "--source", str(sample))
    assert "is an event sample but" in image_model and "reads 3-channel images" in image_model

    data = tmp_path / "wide.yaml"  # the checkpoint says it was trained on a 304 x 240 sensor
    data.write_text(yaml.safe_dump({"channels": 4, "events": {"timesteps": 2, "height": 240, "width": 304}}))
    wide = tmp_path / "wide.pt"
    torch.save({**torch.load(event_checkpoint, weights_only=False), "train_args": {"data": str(data)}}, wide)
    wrong_size = _bad(tmp_path, capsys, "--weights", str(wide), "--source", str(sample))
    assert "is a 64 x 64 event sample but wide.pt was trained on a 304 x 240 sensor (wide.yaml)" in wrong_size

    mixed = tmp_path / "mixed.tif"  # pages of two sizes: not a sample
    assert cv2.imwritemulti(str(mixed), [np.zeros((64, 64), np.uint8), np.zeros((32, 32), np.uint8)])
    assert "is not an event sample" in _bad(tmp_path, capsys, *weights, "--source", str(mixed))
    headerless = write_dat(tmp_path / "old_td.dat", read_dat(dat)[:1000], SIZE, SIZE, header=False)
    no_size = _bad(tmp_path, capsys, *weights, "--source", str(headerless), "--t-end", "60000", "--window-ms", "50")
    assert "declares no sensor size" in no_size and "--sensor 304x240" in no_size


@pytest.mark.slow
def test_yolo_trains_an_event_model_and_spike_infer_verifies_it(tmp_path, yolo_bin):
    """One epoch of the tiny event model through stock ``yolo train``, then ``spike-infer --verify`` on a val sample."""
    from spikeyolo_ibra.events.gen1 import convert
    from spikeyolo_ibra.events.shapes_events import CONVERSION, NAMES

    for index, split in ((1, "train"), (3, "val")):
        (tmp_path / "raw" / split).mkdir(parents=True, exist_ok=True)
        events, boxes = simulate(index, seed=0)
        write_dat(tmp_path / "raw" / split / f"shapes_{index:03d}_td.dat", events, SIZE, SIZE)
        np.save(tmp_path / "raw" / split / f"shapes_{index:03d}_bbox.npy", boxes)
    data = convert(tmp_path / "raw", tmp_path / "set", CONVERSION, ("train", "val"), 0, NAMES, "events.yaml", False)
    cfg = tiny_event_cfg()
    for key in ("yaml_file", "scale"):  # what yaml_model_load adds
        cfg.pop(key, None)
    model = tmp_path / "tiny-events.yaml"
    model.write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = {**os.environ, "SPIKEYOLO_CPU_THREADS": "2"}
    args = ["epochs=1", "imgsz=64", "batch=8", "device=cpu", "workers=0", "plots=False", "name=train"]
    train = [yolo_bin, "train", f"model={model}", f"data={data}", f"project={tmp_path / 'runs'}", *args]
    done = subprocess.run(train, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    best = tmp_path / "runs" / "train" / "weights" / "best.pt"
    sample = sorted((tmp_path / "set" / "images" / "val").glob("*.tif"))[0]
    infer = [str(Path(sys.executable).with_name("spike-infer")), "--weights", str(best), "--source", str(sample)]
    infer += ["--imgsz", "64", "--device", "cpu", "--verify", "--out", str(tmp_path / "spike")]
    done = subprocess.run(infer, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "equivalence: PASS" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads((tmp_path / "spike" / "report.json").read_text())
    assert report["equivalence"]["code_flips"] == 0 and report["layers"][0]["bins"] == T
