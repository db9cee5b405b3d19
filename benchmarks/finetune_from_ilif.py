"""Does IBRA-LIF started from I-LIF weights recover faster than IBRA-LIF from scratch? Built-in shapes set, CPU.

    python benchmarks/finetune_from_ilif.py pretrain --epochs 10 --out bench/finetune     # the "I-LIF weights"
    python benchmarks/finetune_from_ilif.py convert --out bench/finetune                  # -> IBRA init + zero-shot
    python benchmarks/finetune_from_ilif.py run --arm ibra-from-ilif --seed 0 --epochs 5 --out bench/finetune
    python benchmarks/finetune_from_ilif.py run --arm ibra-scratch --seed 0 --epochs 5 --out bench/finetune
    python benchmarks/finetune_from_ilif.py run --arm ilif-continued --seed 0 --epochs 5 --out bench/finetune
    python benchmarks/finetune_from_ilif.py table --out bench/finetune                    # markdown table

1. ``pretrain`` trains I-LIF SpikeYOLO-n (``cfg/spikeyolo.yaml``, SpikeYOLO's neuron) with the CPU recipe. Its
   checkpoint stands in for an imported one: an import writes exactly such a file (same YAML, same keys).
2. ``convert`` turns it into an IBRA-LIF checkpoint (``cfg/ibra-spikeyolo.yaml``) with the functions
   ``spikeyolo-import --neuron ibra`` uses (:func:`target_yaml`, :func:`build_target`, :func:`save_checkpoint`), and
   scores both with pycocotools before any fine-tuning (the IBRA one is the "epoch 0" of the ``ibra-from-ilif`` arm).
3. ``run`` trains one arm for a fixed budget with ``benchmarks/accuracy.py``'s recipe and record (pycocotools mAP of
   the final model, the per-epoch mAP50 curve, energy): ``ibra-from-ilif`` from the converted file, ``ibra-scratch``
   from ``cfg/ibra-spikeyolo.yaml``, and ``ilif-continued`` (the control: the same extra epochs with I-LIF).

Each step writes ``<out>/<name>.json``; ``table`` prints the markdown of every record in ``<out>``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from _common import run_record
from accuracy import DATA, REPO, recipe
from accuracy import train as train_run

ILIF_CFG = REPO / "cfg" / "spikeyolo.yaml"
IBRA_CFG = REPO / "cfg" / "ibra-spikeyolo.yaml"
ARMS = ("ibra-from-ilif", "ibra-scratch", "ilif-continued")


def pretrained(out: Path) -> Path:
    """The I-LIF checkpoint ``pretrain`` wrote."""
    return out / "pretrain" / "runs" / "spikeyolo-s0" / "weights" / "best.pt"


def converted(out: Path) -> Path:
    """The IBRA-LIF checkpoint ``convert`` wrote."""
    return out / "init" / "ibra-from-ilif.pt"


def score(weights: Path, out: Path, name: str) -> dict:
    """pycocotools (and Ultralytics) mAP of a checkpoint on the shapes validation split, at the recipe's size."""
    from ultralytics import YOLO

    rec = recipe()
    metrics = YOLO(weights).val(
        data=str(DATA), imgsz=rec["imgsz"], batch=rec["batch"], device="cpu", save_json=True, plots=False,
        project=str(out / "val"), name=name, exist_ok=True, verbose=False,
    )  # fmt: skip
    coco = getattr(metrics, "coco", {})
    return {"mAP50": coco.get("mAP50"), "mAP50-95": coco.get("mAP50-95"), "ultralytics_mAP50": metrics.box.map50}


def convert(out: Path) -> dict:
    """I-LIF checkpoint -> IBRA-LIF checkpoint (every tensor kept), and both scored before fine-tuning."""
    from ultralytics import YOLO

    from spikeyolo_ibra.interop.convert import build_target, target_yaml
    from spikeyolo_ibra.interop.read import Shape
    from spikeyolo_ibra.interop.write import save_checkpoint

    source = pretrained(out)
    ilif = YOLO(source).model.float()
    scale = ilif.yaml["scale"]
    depth, width, _ = ilif.yaml["scales"][scale]
    neuron = ilif.yaml["neuron"]
    ratio = (ilif.yaml["backbone"] + ilif.yaml["head"])[24][3][1]
    ratio = ratio[scale] if isinstance(ratio, dict) else ratio  # the YAML gives layer 24's mixer ratio per scale
    shape = Shape(scale, depth, width, ilif.yaml["nc"], neuron["T"], neuron["levels"], ratio, dict(ilif.names))
    model = build_target(target_yaml(IBRA_CFG, shape))
    model.load_state_dict(ilif.state_dict(), strict=True)
    model.names = dict(ilif.names)
    dst = converted(out)
    provenance = {"source": str(source.relative_to(out)), "cfg": IBRA_CFG.name, "note": "benchmark conversion"}
    save_checkpoint(model, dst, {"task": "detect", "imgsz": recipe()["imgsz"]}, {"spikeyolo_import": provenance})
    record = {
        "step": "convert",
        "source_ilif": score(source, out, "ilif-source"),
        "ibra_from_ilif_epoch0": score(dst, out, "ibra-epoch0"),
        **run_record(),
    }
    (out / "convert.json").write_text(json.dumps(record, indent=2))
    return record


def run(arm: str, seed: int, epochs: int, out: Path) -> dict:
    """Train one arm for ``epochs`` with the CPU recipe; the record gets the arm and its starting point."""
    model = {"ibra-from-ilif": converted(out), "ibra-scratch": IBRA_CFG, "ilif-continued": pretrained(out)}[arm]
    args = argparse.Namespace(model=str(model), seed=seed, epochs=epochs, neuron=[], set=[], out=out / arm)
    args.out.mkdir(parents=True, exist_ok=True)
    record = {"arm": arm, "init": str(model.relative_to(REPO) if model.is_relative_to(REPO) else model)}
    record.update(train_run(args))
    record["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    (out / f"{arm}-s{seed}.json").write_text(json.dumps(record, indent=2))
    return record


def pretrain(epochs: int, out: Path) -> dict:
    """I-LIF from scratch, seed 0: the weights every ``*-from-ilif`` arm starts from."""
    args = argparse.Namespace(model=str(ILIF_CFG), seed=0, epochs=epochs, neuron=[], set=[], out=out / "pretrain")
    args.out.mkdir(parents=True, exist_ok=True)
    record = {"step": "pretrain", **train_run(args)}
    (out / "pretrain.json").write_text(json.dumps(record, indent=2))
    return record


def table(out: Path) -> str:
    """Markdown: epoch-0 score and per-epoch mAP50 (mean of seeds) per arm, final pycocotools mAPs per seed."""
    runs = [json.loads(p.read_text()) for p in sorted(out.glob("*-s*.json"))]
    lines = []
    if (out / "pretrain.json").is_file() and (out / "convert.json").is_file():
        pre, conv = json.loads((out / "pretrain.json").read_text()), json.loads((out / "convert.json").read_text())
        src, zero = conv["source_ilif"], conv["ibra_from_ilif_epoch0"]
        lines += [
            f"I-LIF pretraining: {pre['epochs']} epochs, pycocotools mAP50 {pre['mAP50']:.3f}, "
            f"mAP50-95 {pre['mAP50-95']:.3f} ({pre['wall_s'] / 60:.1f} min).",
            f"Converted to IBRA-LIF, before fine-tuning: mAP50 {zero['mAP50']:.3f}, mAP50-95 {zero['mAP50-95']:.3f} "
            f"(the I-LIF source re-scored: {src['mAP50']:.3f} / {src['mAP50-95']:.3f}).",
            "",
        ]
    epochs = max((r["epochs"] for r in runs), default=0)
    header = " | ".join(f"ep {i + 1}" for i in range(epochs))
    lines += [
        f"| arm | starts from | seeds | {header} | final mAP50 (pycocotools) | final mAP50-95 | wall / run (min) |",
        "|---|---|---|" + "---|" * epochs + "---|---|---|",
    ]
    for arm in ARMS:
        mine = [r for r in runs if r.get("arm") == arm]
        if not mine:
            continue
        curve = [statistics.mean(r["mAP50_per_epoch"][i] for r in mine) for i in range(epochs)]
        finals = ", ".join(f"{r['mAP50']:.3f}" for r in mine)
        finals95 = ", ".join(f"{r['mAP50-95']:.3f}" for r in mine)
        wall = statistics.mean(r["wall_s"] for r in mine) / 60
        seeds = ", ".join(str(r["seed"]) for r in mine)
        cells = " | ".join(f"{v:.3f}" for v in curve)
        lines.append(f"| {arm} | `{mine[0]['init']}` | {seeds} | {cells} | {finals} | {finals95} | {wall:.1f} |")
    return "\n".join(lines)


def main() -> None:
    """One step of the experiment."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("step", choices=("pretrain", "convert", "run", "table"))
    p.add_argument("--arm", choices=ARMS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path("bench/finetune"))
    a = p.parse_args()
    a.out = a.out.resolve()
    a.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if a.step == "table":
        print(table(a.out))
        return
    if a.step == "run" and not a.arm:
        sys.exit("finetune_from_ilif.py: run needs --arm (one of " + ", ".join(ARMS) + ").")
    step = {
        "pretrain": lambda: pretrain(a.epochs, a.out),
        "convert": lambda: convert(a.out),
        "run": lambda: run(a.arm, a.seed, a.epochs, a.out),
    }[a.step]
    record = step()
    summary = {k: v for k, v in record.items() if k not in ("mAP50_per_epoch", "energy", "firing")}
    print(json.dumps(summary), f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
