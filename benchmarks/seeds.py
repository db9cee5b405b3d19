"""IBRA vs I-LIF vs ANN twin vs YOLOv8n over several seeds, at equal epochs and at equal training time.

    python benchmarks/seeds.py --epochs 8 --seeds 0 1 2 --out bench/seeds             # train the grid (2 at a time)
    python benchmarks/seeds.py --table bench/seeds --budget-s 300                      # the two markdown tables

Each run is ``benchmarks/accuracy.py`` (the stock trainer, the CPU recipe ``cfg/train/shapes-cpu.yaml`` unless
``--set``/``--recipe`` say otherwise, the built-in shapes set), one JSON per run. The tables give, per model, the mean,
the sample standard deviation and the range over seeds:

- **equal epochs**: the final evaluation of ``best.pt`` with pycocotools (what papers quote), and beside it how far
  that final evaluation lies from the best epoch of the run's own curve (Ultralytics' numbers; 0 when the checkpoint
  computes what training validated);
- **equal time**: each run's in-training mAP (Ultralytics' numbers, from ``results.csv``) at the last epoch that
  finished within ``--budget-s`` seconds of training, with that epoch's number. Every run trained with the same
  schedule for ``--epochs``, so this reads each curve at the budget; it is not a run re-scheduled to the budget
  (Ultralytics' ``time=``). Wall times depend on what else the machine runs: compare runs made side by side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = ("cfg/ibra-spikeyolo.yaml", "cfg/spikeyolo.yaml", "cfg/ann-spikeyolo.yaml", "yolov8n.yaml")
NAMES = {
    "cfg/ibra-spikeyolo.yaml": "IBRA-SpikeYOLO-n (K=9, N=100)",
    "cfg/spikeyolo.yaml": "SpikeYOLO-n, I-LIF (D=4)",
    "cfg/ann-spikeyolo.yaml": "ANN twin (ReLU)",
    "yolov8n.yaml": "YOLOv8n (stock)",
}


def run_grid(a: argparse.Namespace) -> None:
    """Train every (model, seed) not yet recorded in ``--out``, ``--jobs`` at a time (each on its own threads)."""

    def one(model: str, seed: int) -> None:
        cmd = [sys.executable, str(HERE / "accuracy.py"), "--model", model, "--seed", str(seed)]
        cmd += ["--epochs", str(a.epochs), "--out", str(a.out), "--no-spike-stats", "--set", *a.set]
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    todo = [
        (m, s)
        for s in a.seeds
        for m in a.models
        if not (a.out / f"{Path(m).stem}-s{s}.json").exists()  # resumable: a finished run is kept
    ]
    with ThreadPoolExecutor(a.jobs) as pool:
        list(pool.map(lambda ms: one(*ms), todo))


def _stats(values: list[float]) -> str:
    """``mean ± sd (min-max)`` over seeds."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f} ({min(values):.3f}-{max(values):.3f})"


def _at_budget(curve: list[dict], budget_s: float) -> dict:
    """The last epoch of a curve that finished within the budget (the first epoch if none did)."""
    inside = [row for row in curve if row["time_s"] <= budget_s]
    return inside[-1] if inside else curve[0]


def tables(folder: Path, budget_s: float) -> str:
    """The equal-epochs and the equal-time tables of the runs in ``folder`` (markdown)."""
    runs: dict[str, list[dict]] = {}
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        if "curve" in record:
            runs.setdefault(record["model"], []).append(record)
    order = [m for m in MODELS if m in runs] + sorted(set(runs) - set(MODELS))
    out = [
        "Equal epochs: final evaluation of best.pt (pycocotools), mean ± sd (min-max) over seeds",
        "",
        "| model | seeds | epochs | mAP50 | mAP50-95 | final - best epoch, mAP50-95 (Ultralytics) | s / epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    for model in order:
        rs = runs[model]
        gap = [r["ultralytics_mAP50-95"] - max(row["mAP50-95"] for row in r["curve"]) for r in rs]
        per_epoch = statistics.median(r["curve"][-1]["time_s"] / len(r["curve"]) for r in rs)
        out.append(
            f"| {NAMES.get(model, model)} | {len(rs)} | {rs[0]['epochs']} | {_stats([r['mAP50'] for r in rs])} | "
            f"{_stats([r['mAP50-95'] for r in rs])} | {max(gap, key=abs):+.4f} (largest) | {per_epoch:.0f} |"
        )
    out += [
        "",
        f"Equal time: in-training mAP (Ultralytics) at the last epoch finished within {budget_s:g} s of training",
        "",
        "| model | seeds | epochs reached | mAP50 | mAP50-95 |",
        "|---|---|---|---|---|",
    ]
    for model in order:
        rows = [_at_budget(r["curve"], budget_s) for r in runs[model]]
        reached = "-".join(sorted({str(row["epoch"]) for row in rows}, key=int))
        out.append(
            f"| {NAMES.get(model, model)} | {len(rows)} | {reached} | {_stats([row['mAP50'] for row in rows])} | "
            f"{_stats([row['mAP50-95'] for row in rows])} |"
        )
    return "\n".join(out)


def main() -> None:
    """Train the grid, or print its tables."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (each takes Ultralytics' thread count)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="yolo train arguments for every run")
    p.add_argument("--out", type=Path, default=Path("bench/seeds"))
    p.add_argument("--table", type=Path, metavar="DIR", help="print the tables of the runs in DIR and exit")
    p.add_argument("--budget-s", type=float, default=300.0, help="training time for the equal-time table")
    a = p.parse_args()
    if a.table:
        print(tables(a.table, a.budget_s))
        return
    a.out = a.out.resolve()
    run_grid(a)
    print(tables(a.out, a.budget_s))


if __name__ == "__main__":
    main()
