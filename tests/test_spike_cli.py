"""``spike-infer``: the files it promises, verification that can fail, and one sentence for every bad input."""

import json
from pathlib import Path

import pytest
import torch
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import ASSETS

from spikeyolo_ibra.spike.cli import main

CFG = Path(__file__).resolve().parents[1] / "cfg"
BUS = ASSETS / "bus.jpg"


def save(model: DetectionModel, path):
    """Ultralytics' checkpoint format ({'model': ...})."""
    torch.save({"model": model, "train_args": {}}, path)
    return path


@pytest.mark.slow
def test_cli_on_a_firing_scale_n_model(firing_fused, tmp_path, capsys):
    check_cli(save(firing_fused, tmp_path / "n.pt"), tmp_path / "run", capsys)


def test_cli_writes_the_promised_files(tiny_checkpoint, tmp_path, capsys):
    check_cli(tiny_checkpoint, tmp_path, capsys)


def check_cli(checkpoint, tmp_path, capsys):
    tmp_path.mkdir(exist_ok=True)
    out = tmp_path / "report"
    args = ["--weights", str(checkpoint), "--source", str(BUS), "--imgsz", "96", "--verify", "--out", str(out)]
    assert main([*args, "--conf", "0.001"]) == 0
    printed = capsys.readouterr().out
    assert "PASS" in printed and "with memory (sram_1mb, 1.56 pJ/bit): SNN " in printed
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
        with pytest.raises(SystemExit) as exit:
            main(["--weights", str(weights), "--source", str(source), *args, "--out", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert exit.value.code == 2, case
        assert len(err) == 1 and phrase in err[0], (case, err)
        assert not out.exists(), case
        assert not list(tmp_path.glob(".out.*")), case


def test_verifier_fails_when_spike_mode_is_wrong(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    """Plane weights off by 1 %: the check must see it (FAIL, exit 1), else a PASS would mean nothing."""
    import spikeyolo_ibra.spike.runtime.graph as graph

    exact = graph.plane_weights
    monkeypatch.setattr(graph, "plane_weights", lambda *args: exact(*args) * 1.01)
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
    with pytest.raises(SystemExit, match="^2$"):
        main([*args, "--out", str(mine)])
    assert "is not a spike-infer report" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    old = tmp_path / "old"
    old.mkdir()
    (old / "report.json").write_text("{}")
    (old / "stale.txt").write_text("from an earlier run")
    assert main([*args, "--out", str(old)]) == 0
    assert not (old / "stale.txt").exists() and json.loads((old / "report.json").read_text())["images"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "old"]  # nothing left beside them


def test_the_checkpoint_is_read_once(tiny_checkpoint, tmp_path, monkeypatch, capsys):
    """--verify and --compare scale=1: the integer, spike-driven and compared models all come from one read."""
    reads = []
    load = torch.load

    def counting_load(f, *args, **kwargs):
        reads.append(Path(f).resolve() if isinstance(f, (str, Path)) else f)
        return load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counting_load)
    args = ["--weights", str(tiny_checkpoint), "--source", str(BUS), "--imgsz", "64", "--verify"]
    assert main([*args, "--compare", "scale=1", "--out", str(tmp_path / "report")]) == 0
    assert "PASS" in capsys.readouterr().out
    assert reads == [Path(tiny_checkpoint).resolve()]
