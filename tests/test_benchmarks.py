"""The shipped benchmark results regenerate the docs' tables and plot (``benchmarks/accuracy.py --table/--plot``)."""

import json
import statistics
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def _accuracy(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "accuracy.py"), *args], capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_table_has_one_row_per_setting_with_the_seed_means() -> None:
    runs = [json.loads(p.read_text()) for p in sorted((RESULTS / "accuracy").glob("*.json"))]
    rows = [line for line in _accuracy("--table", str(RESULTS / "accuracy")).splitlines() if line.startswith("| `")]
    models = sorted({r["model"] for r in runs})
    assert [row.split("`")[1] for row in rows] == models  # one row per model, seeds pooled
    for model, row in zip(models, rows, strict=True):
        maps = [r["mAP50"] for r in runs if r["model"] == model]
        seeds = ", ".join(str(r["seed"]) for r in sorted(runs, key=lambda r: r["seed"]) if r["model"] == model)
        cells = [c.strip() for c in row.split("|")]
        assert cells[3] == seeds
        assert cells[5] == f"{statistics.mean(maps):.3f} ± {(max(maps) - min(maps)) / 2:.3f}"
        assert ("n/a (ANN)" in row) == ("energy" not in next(r for r in runs if r["model"] == model))


def test_ablation_table_orders_settings_by_family_then_bits() -> None:
    rows = [line for line in _accuracy("--table", str(RESULTS / "ablation")).splitlines() if line.startswith("| `")]
    steps = [int(row.split("|")[7]) for row in rows]
    scales = ["scale=1" in row.split("|")[2].strip().split(", ") for row in rows if "ibra-spikeyolo" in row]
    assert scales == sorted(scales)  # with N first, then N = 1
    ibra = [s for row, s in zip(rows, steps, strict=True) if "ibra-spikeyolo" in row]
    with_n = ibra[: scales.count(False)]
    assert with_n == sorted(with_n)


def test_plot_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "plot" / "accuracy-energy.png"
    _accuracy("--plot", str(RESULTS / "ablation"), str(RESULTS / "accuracy"), "--out", str(out))
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] > 300 and image.shape[1] > 400


STAND_IN_TASKS = '''
import torch


class DetectionModel(torch.nn.Module):
    """Stands in for SpikeYOLO's builder: it calls .cuda() unconditionally, as theirs does."""

    def __init__(self, cfg, verbose=True):
        super().__init__()
        assert cfg == "snn_yolov8n.yaml", cfg
        self.model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU()).cuda()
        torch.zeros(1).cuda()

    def fuse(self, verbose=True):
        return self

    def forward(self, x):
        return self.model(x)
'''


@pytest.mark.slow
def test_peer_speed_times_a_reference_checkout_beside_ours(tmp_path: Path) -> None:
    checkout = tmp_path / "SpikeYOLO"
    (checkout / "ultralytics" / "nn").mkdir(parents=True)
    for init in (checkout / "ultralytics" / "__init__.py", checkout / "ultralytics" / "nn" / "__init__.py"):
        init.write_text("")
    (checkout / "ultralytics" / "nn" / "tasks.py").write_text(STAND_IN_TASKS)
    out = tmp_path / "peer.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "peer_speed.py"), "--reference", str(checkout)]
    cmd += ["--ours", "cfg/ibra-spikeyolo.yaml", "--imgsz", "64", "--rounds", "2", "--warmup", "0", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    models = json.loads(out.read_text())["models"]
    assert list(models) == ["spikeyolo:n", "ours:cfg/ibra-spikeyolo.yaml"]
    assert models["spikeyolo:n"]["params"] == 8 * 3 * 9 + 8 and models["spikeyolo:n"]["x_spikeyolo:n"] == 1.0
    assert all(len(m["times_s"]) == 2 and m["median_s"] > 0 for m in models.values())
    assert models["ours:cfg/ibra-spikeyolo.yaml"]["params"] < 13.3e6  # the fused graph, not the dense one


def test_peer_speed_refuses_a_folder_that_is_not_their_code(tmp_path: Path) -> None:
    cmd = [sys.executable, str(REPO / "benchmarks" / "peer_speed.py"), "--reference", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 1 and "is not a checkout of SpikeYOLO's code" in done.stderr


def test_seed_tables_give_mean_sd_and_range_at_equal_epochs_and_at_equal_time(tmp_path: Path) -> None:
    def run(model: str, seed: int, final: float, curve: list[tuple[float, float]]) -> dict:
        rows = [{"epoch": i + 1, "time_s": t, "mAP50": m, "mAP50-95": m / 2} for i, (t, m) in enumerate(curve)]
        return {"model": model, "seed": seed, "epochs": len(curve), "mAP50": final, "mAP50-95": final / 2,
                "ultralytics_mAP50-95": max(r["mAP50-95"] for r in rows), "curve": rows}  # fmt: skip

    runs = [
        run("cfg/ibra-spikeyolo.yaml", 0, 0.5, [(10, 0.1), (20, 0.3), (30, 0.5)]),
        run("cfg/ibra-spikeyolo.yaml", 1, 0.7, [(10, 0.2), (20, 0.4), (30, 0.7)]),
        run("yolov8n.yaml", 0, 0.9, [(5, 0.6), (10, 0.8), (15, 0.9)]),
    ]
    for r in runs:
        (tmp_path / f"{Path(r['model']).stem}-s{r['seed']}.json").write_text(json.dumps(r))
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "seeds.py"), "--table", str(tmp_path), "--budget-s", "12"],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    epochs = next(line for line in lines if line.startswith("| IBRA"))
    assert "| 2 | 3 | 0.600 ± 0.141 (0.500-0.700) | 0.300 ± 0.071 (0.250-0.350) | +0.0000 (largest) | 10 |" in epochs
    timed = [line for line in lines if line.startswith("| IBRA")][1]
    assert timed.endswith("| 2 | 1 | 0.150 ± 0.071 (0.100-0.200) | 0.075 ± 0.035 (0.050-0.100) |")
    stock = [line for line in lines if line.startswith("| YOLOv8n")][1]
    assert stock.startswith("| YOLOv8n (stock) | 1 | 2 | 0.800 ± 0.000")
