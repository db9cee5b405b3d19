"""Accuracy on event data at equal budget, and whether the model uses time: the same validation with the bins reversed.

    python benchmarks/events_accuracy.py --model cfg/ibra-spikeyolo-events.yaml --seed 0 --epochs 30
    python benchmarks/events_accuracy.py --model cfg/ann-spikeyolo-events.yaml --seed 0 --epochs 30 --set device=0
    python benchmarks/events_accuracy.py --table bench/events-accuracy       # markdown table over the JSONs there

One run trains the model with the stock trainer on an event data set (default: the built-in ``shapes-events``) for a
fixed number of epochs, then scores the final weights with pycocotools twice on the same validation samples: as they
are, and with the order of their T time bins reversed (each bin's ON/OFF frame unchanged). A model that reads time
loses accuracy on the reversed copy; one that only counts events does not. Writes ``<out>/<run name>.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import yaml
from _common import REPO, run_record
from ultralytics import YOLO
from ultralytics.data.utils import check_det_dataset

from spikeyolo_ibra.atomic import replacing
from spikeyolo_ibra.events import load_sample, save_sample

DATA = REPO / "cfg" / "datasets" / "shapes-events.yaml"


def reversed_copy(data: dict[str, Any], out: Path) -> Path:
    """A data YAML whose val split is the original's with the time bins of every sample in reverse order."""
    root, val = Path(data["path"]), Path(data["val"])
    done = out / "reversed.yaml"
    if done.is_file():
        return done
    images = out / "images" / "val"
    images.mkdir(parents=True, exist_ok=True)
    for sample in sorted(val.glob("*.tif")):
        save_sample(images / sample.name, load_sample(sample)[::-1].copy())
    shutil.copytree(root / "labels" / "val", out / "labels" / "val", dirs_exist_ok=True)
    (out / "annotations").mkdir(exist_ok=True)
    shutil.copy(root / "annotations" / "instances_val2017.json", out / "annotations")
    keys = ("channels", "names", "events")
    spec = {"path": str(out.resolve()), "train": "images/val", "val": "images/val", **{k: data[k] for k in keys}}
    with replacing(done) as tmp:
        tmp.write_text(yaml.safe_dump(spec, sort_keys=False))
    return done


def coco(model: YOLO, data: Path, project: Path, name: str, args: dict[str, Any]) -> dict[str, float]:
    """pycocotools mAP50 and mAP50-95 of ``model`` on the val split of ``data``."""
    metrics = model.val(data=str(data), save_json=True, plots=False, project=str(project), name=name, **args)
    return {k: metrics.coco[k] for k in ("mAP50", "mAP50-95")}


def training_seconds(results_csv: Path) -> float:
    """Seconds of training by Ultralytics' own clock: the ``time`` column of the last row of ``results.csv``."""
    last = results_csv.read_text().strip().splitlines()[-1].split(",")
    header = results_csv.read_text().splitlines()[0].split(",")
    return float(last[[h.strip() for h in header].index("time")])


def run(a: argparse.Namespace) -> dict[str, Any]:
    extra = {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in a.set)}
    name = f"{Path(a.model).stem}_seed{a.seed}_e{a.epochs}"
    project = (a.out / "runs").resolve()
    common = {"imgsz": 64, "batch": 16, "workers": 0, **extra}
    weights = project / name / "weights" / "best.pt"
    start = time.time()
    if not (a.score_only and weights.is_file()):
        YOLO(a.model).train(
            data=str(a.data), epochs=a.epochs, seed=a.seed, deterministic=True, plots=False, project=str(project),
            name=name, exist_ok=True, **common,
        )  # fmt: skip
    wall = time.time() - start
    best = YOLO(weights)
    val_args = {k: v for k, v in common.items() if k not in {"batch"}}
    data = check_det_dataset(str(a.data))
    return {
        "model": a.model,
        "seed": a.seed,
        "epochs": a.epochs,
        "train_args": common,
        "wall_min": wall / 60,  # training wall time in this call (0 with --score-only)
        "train_min": float(training_seconds(project / name / "results.csv")) / 60,
        "val": coco(best, a.data, project, f"{name}_val", val_args),
        "val_bins_reversed": coco(best, reversed_copy(data, a.out / "reversed"), project, f"{name}_rev", val_args),
        "run": run_record(),
    }


def table(folder: Path) -> str:
    """Markdown: one row per model, mean and range over seeds, original and reversed bins."""
    runs: dict[str, list[dict]] = {}
    for path in sorted(folder.glob("*.json")):
        r = json.loads(path.read_text())
        runs.setdefault(Path(r["model"]).stem, []).append(r)

    def cell(rs: list[dict], split: str, key: str) -> str:
        v = [r[split][key] for r in rs]
        return f"{statistics.mean(v):.3f} ({min(v):.3f}-{max(v):.3f})"

    lines = [
        "| model | seeds | epochs | mAP50 | mAP50-95 | mAP50, bins reversed | mAP50-95, bins reversed |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for model, rs in runs.items():
        cells = [cell(rs, s, k) for s in ("val", "val_bins_reversed") for k in ("mAP50", "mAP50-95")]
        lines.append(f"| {model} | {len(rs)} | {rs[0]['epochs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="cfg/ibra-spikeyolo-events.yaml", help="event model YAML")
    p.add_argument("--data", type=Path, default=DATA, help="event data YAML (default: the built-in shapes-events)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more yolo train arguments")
    p.add_argument("--out", type=Path, default=Path("bench/events-accuracy"))
    p.add_argument("--score-only", action="store_true", help="score the run's best.pt again if it exists; no training")
    p.add_argument("--table", type=Path, metavar="DIR", help="print the table of the runs in DIR and exit")
    a = p.parse_args()
    if a.table:
        print(table(a.table))
        return
    result = run(a)
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / f"{Path(a.model).stem}_seed{a.seed}_e{a.epochs}.json"
    with replacing(path) as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("val", "val_bins_reversed", "wall_min")}, indent=2))


if __name__ == "__main__":
    main()
