"""Seconds per training epoch of the CPU demo's recipe under thread settings, on quiet cores and beside busy ones.

    python benchmarks/cpu_threads.py --epochs 2 --busy 0 1 --out benchmarks/results/cpu-threads.json

Each run is the stock ``yolo train`` of IBRA-SpikeYOLO-t on the demo level (``cfg/train/shapes-demo-cpu.yaml``,
``val=False``) in a fresh process, with one of the settings below in its environment; ``--busy B`` starts B
busy-looping processes beside it first (another job holding a core) and stops them afterwards. The JSON holds every
epoch's seconds per run (from ``results.csv``), the median per run, the CPU and the date. What it answers: how many
torch threads, and whether ``OMP_WAIT_POLICY=PASSIVE`` (OpenMP's waiting threads sleep instead of spinning), the demo
should use (docs/quickstart.md, "threads").
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import run_record

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {
    "1 thread": {"SPIKEYOLO_CPU_THREADS": "1"},
    "2 threads": {"SPIKEYOLO_CPU_THREADS": "2"},
    "2 threads, OMP_WAIT_POLICY=PASSIVE": {"SPIKEYOLO_CPU_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"},
}
BUSY_LOOP = "while True: pass"


def epoch_seconds(results_csv: Path) -> list[float]:
    """Each epoch's own duration, from the cumulative ``time`` column Ultralytics writes."""
    with open(results_csv) as f:
        times = [float(row["time"]) for row in csv.DictReader(f)]
    return [round(b - a, 2) for a, b in zip([0.0, *times[:-1]], times, strict=True)]


def train(env: dict[str, str], epochs: int, project: Path, name: str) -> list[float]:
    """One ``yolo train`` of the demo recipe in a fresh process with ``env`` added; its epochs' seconds."""
    cmd = [
        sys.executable,
        "-m",
        "spikeyolo_ibra.cli",
        "train",
        "model=cfg/ibra-spikeyolo-t.yaml",
        "data=cfg/datasets/shapes-demo.yaml",
        "cfg=cfg/train/shapes-demo-cpu.yaml",
        f"epochs={epochs}",
        "val=False",
        f"project={project}",
        f"name={name}",
        "exist_ok=True",
    ]
    clean = {k: v for k, v in os.environ.items() if k not in {"OMP_WAIT_POLICY", "OMP_NUM_THREADS"}}
    subprocess.run(cmd, cwd=REPO, env={**clean, **env}, check=True, stdout=subprocess.DEVNULL)
    return epoch_seconds(project / name / "results.csv")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--busy", type=int, nargs="+", default=[0, 1], help="busy processes beside the training, per round")
    p.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "cpu-threads.json")
    a = p.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for busy in a.busy:
            hogs = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(busy)]
            try:
                for setting in a.settings:
                    seconds = train(SETTINGS[setting], a.epochs, Path(tmp), f"run{len(runs)}")
                    median = statistics.median(seconds)
                    runs.append({"busy": busy, "setting": setting, "epoch_s": seconds, "median_s": median})
                    print(f"busy {busy}, {setting}: {seconds} s per epoch", flush=True)
            finally:
                for hog in hogs:
                    hog.kill()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    record = {**run_record(), "threads": "per run, see runs", "runs": runs}
    a.out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
