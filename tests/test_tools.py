"""The scripts in ``tools/``: the README's first command end to end, and their bad-input behaviour."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_runs_the_whole_story(tmp_path: Path):
    """``make demo``'s script with a seconds-long training budget: every step runs and the summary is printed."""
    cmd = [sys.executable, str(REPO / "tools" / "demo.py"), "--minutes", "0.05", "--out", str(tmp_path / "demo")]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"^mAP50=\d\.\d{3} mAP50-95=\d\.\d{3} \(pycocotools", done.stdout, re.M)
    assert "equivalence PASS" in done.stdout
    assert ("on cpu with cfg/train/shapes-demo-cpu.yaml" in done.stdout) != torch.cuda.is_available()
    for report in ("spike", "spike-bus"):
        assert json.loads((tmp_path / "demo" / report / "report.json").read_text())["equivalence"]["passed"]
        assert (tmp_path / "demo" / report / "report.html").is_file()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_demo_without_the_asked_device_is_one_sentence(tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "demo.py"), "--device", "cuda", "--out", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "demo: device 'cuda' asks for CUDA, which this machine does not have: use --device cpu."
    ]
    assert not (tmp_path / "demo").exists()


def test_spike_infer_script_reports_bad_weights_without_traceback(tmp_path: Path):
    bus = Path(__import__("ultralytics").utils.ASSETS) / "bus.jpg"
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "spike_infer.py"), "--weights", str(tmp_path / "x.pt")]
        + ["--source", str(bus), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "does not exist" in proc.stderr
    assert not (tmp_path / "out").exists()
