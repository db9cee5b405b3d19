"""Accuracy at equal budget on the built-in shapes set: one training run per (model, seed), pycocotools mAP.

    python benchmarks/accuracy.py --model cfg/ibra-spikeyolo.yaml --seed 0 --epochs 15 --imgsz 128 --out bench/acc

Writes ``<out>/<model stem>-s<seed>.json`` with the final pycocotools mAP50 / mAP50-95 (Ultralytics' own numbers
beside them), the per-epoch mAP50 curve from ``results.csv``, wall time and the machine. ``benchmarks/tables.py``
gathers these files into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import time
from pathlib import Path

import torch
import yaml

import spikeyolo_ibra  # noqa: F401  (registers the spiking blocks)
from spikeyolo_ibra.data.shapes import SHAPES_NAMES, build_shapes


def shapes_yaml(root: Path, n_train: int, n_val: int) -> Path:
    """Build the shapes set under ``root`` and return a dataset YAML with an absolute path."""
    data = build_shapes(root.resolve() / "shapes", n_train=n_train, n_val=n_val, seed=0)
    yaml = root / "shapes.yaml"
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(SHAPES_NAMES))
    tmp = yaml.with_suffix(f".{os.getpid()}.tmp")  # several runs may start at once
    tmp.write_text(f"path: {data}\ntrain: images/train\nval: images/val\nnames:\n{names}")
    tmp.replace(yaml)
    return yaml


def machine() -> str:
    """CPU or GPU name, for the record beside every number."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def main() -> None:
    """Train one model with one seed and record its accuracy."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="model YAML, e.g. cfg/ibra-spikeyolo.yaml or yolov8n.yaml")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--imgsz", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--n-train", type=int, default=600)
    p.add_argument("--n-val", type=int, default=150)
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--data-root", type=Path, default=Path("bench/data"))
    p.add_argument("--out", type=Path, default=Path("bench/accuracy"))
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more yolo train arguments")
    a = p.parse_args()
    a.out = a.out.resolve()
    extra = {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in a.set)}

    from ultralytics import YOLO

    data = shapes_yaml(a.data_root, a.n_train, a.n_val)
    name = f"{Path(a.model).stem}-s{a.seed}" + "".join(f"-{k}{v}" for k, v in extra.items())
    start = time.perf_counter()
    model = YOLO(a.model)
    metrics = model.train(
        data=str(data),
        epochs=a.epochs,
        imgsz=a.imgsz,
        batch=a.batch,
        seed=a.seed,
        deterministic=False,
        device=a.device,
        workers=a.workers,
        amp=False,
        plots=False,
        save_json=True,
        project=str(a.out / "runs"),
        name=name,
        exist_ok=True,
        verbose=False,
    )
    wall = time.perf_counter() - start
    with open(a.out / "runs" / name / "results.csv") as f:
        curve = [float(row["metrics/mAP50(B)"]) for row in csv.DictReader(f)]
    coco = getattr(metrics, "coco", {})
    result = {
        "model": a.model,
        "seed": a.seed,
        "epochs": a.epochs,
        "imgsz": a.imgsz,
        "batch": a.batch,
        "n_train": a.n_train,
        "n_val": a.n_val,
        "device": machine(),
        "torch": torch.__version__,
        "mAP50": coco.get("mAP50"),
        "mAP50-95": coco.get("mAP50-95"),
        "ultralytics_mAP50": metrics.box.map50,
        "ultralytics_mAP50-95": metrics.box.map,
        "mAP50_per_epoch": curve,
        "wall_s": round(wall, 1),
    }
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"{name}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "mAP50_per_epoch"}))


if __name__ == "__main__":
    main()
