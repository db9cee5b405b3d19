"""The shipped benchmark results regenerate the docs' tables and plot (``benchmarks/accuracy.py --table/--plot``)."""

import json
import statistics
import subprocess
import sys
from pathlib import Path

import cv2

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
