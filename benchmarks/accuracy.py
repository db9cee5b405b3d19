"""Accuracy at equal budget on the built-in shapes set: one training run per (model, neuron setting, seed).

    python benchmarks/accuracy.py --model cfg/ibra-spikeyolo.yaml --seed 0 --epochs 10 --out bench/accuracy
    python benchmarks/accuracy.py --model cfg/ibra-spikeyolo.yaml --neuron bits=4 scale=1 --seed 0 --out bench/ablation
    python benchmarks/accuracy.py --table bench/accuracy          # markdown table over every JSON in the folder

Every run trains with the stock trainer on ``cfg/datasets/shapes.yaml`` with the CPU recipe
``cfg/train/shapes-cpu.yaml`` (the demo's: 64 px, batch 8, AdamW) for a fixed number of epochs; ``--set KEY=VALUE``
overrides any of it (e.g. ``--set imgsz=128 batch=32 device=0`` on a GPU), ``--recipe cfg/train/shapes-gpu.yaml`` picks
the GPU recipe, and ``--set time=H`` trains for H hours instead of epochs. ``--neuron KEY=VALUE`` changes the model
YAML's ``neuron:`` mapping (the paper's ablation). Torch threads are Ultralytics' own choice (one on a 2-core machine),
so two runs can share 2 cores. Writes ``<out>/<run name>.json``: pycocotools mAP50 / mAP50-95 of the final model
(Ultralytics' numbers beside them), the per-epoch mAP50 curve from ``results.csv``, the wall time, the machine and the
command; for a spiking model also the energy per image and firing statistics of the *trained* weights, from
spike-driven inference (float32, :func:`spikeyolo_ibra.spike.spike_infer`) on validation images 601-609 (as the demo).

    python benchmarks/accuracy.py --plot bench/ablation bench/accuracy --out docs/img/accuracy-energy.png
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from _common import run_record

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "cfg" / "train" / "shapes-cpu.yaml"
DATA = REPO / "cfg" / "datasets" / "shapes.yaml"


def key_values(pairs: list[str]) -> dict[str, Any]:
    """``["bits=4", "scale=1"]`` -> ``{"bits": 4, "scale": 1}`` (values parsed as YAML)."""
    return {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in pairs)}


def model_with_neuron(model: str, neuron: dict[str, Any], out: Path) -> str:
    """A copy of the model YAML with ``neuron`` merged into its ``neuron:`` mapping; the model itself if empty."""
    if not neuron:
        return model
    cfg = yaml.safe_load((REPO / model).read_text())
    cfg["neuron"] = {**cfg.get("neuron", {}), **neuron}
    tag = "_".join(f"{k}{v}" for k, v in neuron.items())
    path = out / "models" / f"{Path(model).stem}_{tag}.yaml"  # no "-n"-style suffix: that would pick a scale
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return str(path)


def recipe(path: Path = RECIPE) -> dict[str, Any]:
    """The training arguments of a recipe (the CPU one by default)."""
    return yaml.safe_load(path.read_text())


def spiking_statistics(weights: Path, imgsz: int, data: Path = DATA) -> dict[str, Any]:
    """Energy per image (SNN, ANN twin, ratio) and firing totals of a trained spiking checkpoint; {} for an ANN."""
    from ultralytics.data.utils import check_det_dataset

    from spikeyolo_ibra.neuron import NeuronConfig
    from spikeyolo_ibra.spike import spike_infer
    from spikeyolo_ibra.spike.errors import SpikeInferError
    from spikeyolo_ibra.spike.measure import firing_summary

    source = Path(check_det_dataset(str(data))["path"]) / "images" / "val" / "00000000060*.jpg"
    try:
        report = spike_infer(
            weights, source, imgsz=imgsz, dtype="float32", accumulate="sequential", out=weights.parents[1] / "spike"
        )
    except SpikeInferError:  # the ANN twin and stock YOLO have no spiking neurons
        return {}
    config = NeuronConfig.from_mapping(report["neuron"])
    return {"energy": report["energy"], "firing": firing_summary(report["layers"], config)}


def training_curve(results_csv: Path) -> list[dict[str, float]]:
    """Per epoch of ``results.csv``: epoch, cumulative training time (s), in-training mAP50 and mAP50-95."""
    with open(results_csv) as f:
        rows = [{k.strip(): v for k, v in row.items()} for row in csv.DictReader(f)]
    return [
        {
            "epoch": int(float(r["epoch"])),
            "time_s": round(float(r["time"]), 1),
            "mAP50": round(float(r["metrics/mAP50(B)"]), 5),
            "mAP50-95": round(float(r["metrics/mAP50-95(B)"]), 5),
        }
        for r in rows
    ]


def imgsz(a: argparse.Namespace, extra: dict[str, Any]) -> int:
    """The image size a run trains at: ``--set imgsz=`` or the recipe's."""
    return int(extra.get("imgsz", recipe(a.recipe)["imgsz"]))


def force_amp(yolo: Any) -> None:
    """Let a spiking model train under AMP (what ``amp=`` asks), to measure what spikeyolo_ibra's float32 rule avoids.

    Removes :func:`spikeyolo_ibra.precision.keep_float32` from this model's callbacks and answers Ultralytics' AMP
    check with True (the check itself would download a model offline).
    """
    from ultralytics.engine import trainer

    from spikeyolo_ibra.precision import keep_float32

    yolo.callbacks["on_pretrain_routine_end"].remove(keep_float32)
    trainer.check_amp = lambda model, *args, **kwargs: True


def train(a: argparse.Namespace) -> dict[str, Any]:
    """Train one model with one seed and return its record."""
    from ultralytics import YOLO

    import spikeyolo_ibra  # noqa: F401  (registers the spiking blocks)

    neuron, extra = key_values(a.neuron), key_values(a.set)
    tags = [*(f"{k}{v}" for k, v in neuron.items()), *(["amp", str(extra.get("amp", True))] if a.force_amp else [])]
    name = "-".join([Path(a.model).stem, *tags, f"s{a.seed}"])
    start = time.perf_counter()
    yolo = YOLO(model_with_neuron(a.model, neuron, a.out))
    if a.force_amp:
        force_amp(yolo)
    metrics = yolo.train(
        cfg=str(a.recipe),
        data=str(a.data),
        epochs=a.epochs,
        seed=a.seed,
        deterministic=False,
        save_json=True,
        project=str(a.out / "runs"),
        name=name,
        exist_ok=True,
        verbose=False,
        **extra,
    )
    wall = time.perf_counter() - start
    run = a.out / "runs" / name
    curve = training_curve(run / "results.csv")
    coco = getattr(metrics, "coco", {})
    record = {
        "model": a.model,
        "neuron": neuron,
        "seed": a.seed,
        "epochs": a.epochs,
        "recipe": str(a.recipe.resolve().relative_to(REPO)),
        "overrides": extra,
        "forced_amp": a.force_amp,
        "mAP50": coco.get("mAP50"),
        "mAP50-95": coco.get("mAP50-95"),
        "ultralytics_mAP50": metrics.box.map50,
        "ultralytics_mAP50-95": metrics.box.map,
        "mAP50_per_epoch": [row["mAP50"] for row in curve],
        "curve": curve,
        "wall_s": round(wall, 1),
        **({} if a.no_spike_stats else spiking_statistics(run / "weights" / "best.pt", imgsz(a, extra), a.data)),
        **run_record(),
    }
    (a.out / f"{name}.json").write_text(json.dumps(record, indent=2))
    return record


def load_runs(folders: list[Path]) -> list[dict]:
    """Every run record (JSON) in the folders."""
    return [json.loads(p.read_text()) for folder in folders for p in sorted(folder.glob("*.json"))]


@functools.cache
def yaml_neuron(model: str) -> dict[str, Any]:
    """The ``neuron:`` mapping of a model YAML in the repo; {} for a stock model (read once per model)."""
    path = REPO / model
    return (yaml.safe_load(path.read_text()).get("neuron") or {}) if path.exists() else {}


def neuron_of(run: dict) -> dict[str, Any]:
    """The neuron settings a run trained with: its model YAML's ``neuron:`` mapping plus the run's changes."""
    return {**yaml_neuron(run["model"]), **run["neuron"]}


FAMILIES = ("bit planes, with N (D = 5.11)", "bit planes, N = 1", "unary (I-LIF), N = 1", "ANN")


def family(n: dict[str, Any]) -> str:
    """Which curve of the ablation a setting belongs to (one of FAMILIES)."""
    if not n or n.get("type") == "relu":
        return FAMILIES[3]
    if n.get("coding") == "unary":
        return FAMILIES[2]
    return FAMILIES[1] if n.get("scale", 100) == 1 else FAMILIES[0]


def steps(n: dict[str, Any]) -> int:
    """Virtual steps per logical step: K for bit planes, D for unary."""
    return n.get("levels", 4) if n.get("coding") == "unary" else n.get("bits", 9)


def groups(runs: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """Runs grouped by (model, neuron change), ordered by model, family and number of virtual steps."""
    out: dict[tuple[str, str], list[dict]] = {}
    for r in sorted(
        runs, key=lambda r: (r["model"], FAMILIES.index(family(neuron_of(r))), steps(neuron_of(r)), r["seed"])
    ):
        neuron = ", ".join(f"{k}={v}" for k, v in r["neuron"].items()) or "as in the YAML"
        out.setdefault((r["model"], neuron), []).append(r)
    return out


def table(folder: Path) -> str:
    """Markdown: one row per (model, neuron setting), mean and half-range over seeds of the pycocotools mAPs."""

    def spread(values: list[float]) -> str:
        half = (max(values) - min(values)) / 2
        return f"{statistics.mean(values):.3f} ± {half:.3f}"

    def spiking(runs: list[dict], key: tuple[str, str], fmt: str) -> str:
        values = [r[key[0]][key[1]] for r in runs if key[0] in r]
        return format(statistics.mean(values), fmt) if values else "n/a (ANN)"

    lines = [
        "| model | neuron | seeds | epochs | mAP50 (pycocotools) | mAP50-95 (pycocotools) | virtual steps | "
        "level use | spikes / neuron | SNN energy / image (mJ) | ANN twin / SNN | wall per run (min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (model, neuron), runs in groups(load_runs([folder])).items():
        seeds = ", ".join(str(r["seed"]) for r in runs)
        wall = statistics.mean(r["wall_s"] for r in runs) / 60
        lines.append(
            f"| `{model}` | {neuron} | {seeds} | {runs[0]['epochs']} | {spread([r['mAP50'] for r in runs])} | "
            f"{spread([r['mAP50-95'] for r in runs])} | {spiking(runs, ('firing', 'virtual_steps'), 'g')} | "
            f"{spiking(runs, ('firing', 'level_utilisation_mean'), '.3f')} | "
            f"{spiking(runs, ('firing', 'spikes_per_neuron'), '.3f')} | {spiking(runs, ('energy', 'snn_mJ'), '.4f')} | "
            f"{spiking(runs, ('energy', 'ratio'), '.2f')} | {wall:.1f} |"
        )
    return "\n".join(lines)


def plot(folders: list[Path], path: Path) -> None:
    """mAP50 against virtual steps (left) and against SNN energy per image (right), one curve per coding family.

    One point per setting: the mean of its seeds, the bar from the lowest to the highest seed. Settings of one family
    that land on (almost) the same point share one label (e.g. ``K=6-9``). The ANNs (no energy of their own here) are
    horizontal lines at their mean mAP50.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = load_runs(folders)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True, gridspec_kw={"width_ratios": [1, 1.4]})
    curves: dict[str, list[tuple[int, float, float, float, float]]] = {}
    anns = 0
    for seeded in groups(runs).values():
        n = neuron_of(seeded[0])
        maps = [r["mAP50"] for r in seeded]
        if "energy" not in seeded[0]:  # an ANN
            label = f"{Path(seeded[0]['model']).stem} (no spikes), mean of {len(maps)} seeds"
            for ax in axes:
                ax.axhline(statistics.mean(maps), color="grey", ls=(0, (4, 2 + 2 * anns)), lw=1, label=label)
            anns += 1
            continue
        energy = statistics.mean(r["energy"]["snn_mJ"] for r in seeded)
        curves.setdefault(family(n), []).append((steps(n), energy, statistics.mean(maps), min(maps), max(maps)))
    x_span = max(p[1] for points in curves.values() for p in points)
    y_span = max(p[2] for points in curves.values() for p in points)
    for i, (name, points) in enumerate(curves.items()):
        k, x, y, lo, hi = np.array(sorted(points)).T
        letter = "D" if name.startswith("unary") else "K"
        for ax, xs in zip(axes, (k, x), strict=True):
            ax.errorbar(xs, y, yerr=[y - lo, hi - y], marker="o", ms=4, capsize=2, color=f"C{i}", label=name)
        near: list[tuple[float, float, list[int]]] = []  # label groups: points closer than 1 % of the axes
        for kk, xx, yy in zip(k, x, y, strict=True):
            group = next((g for g in near if abs(g[0] - xx) < 0.01 * x_span and abs(g[1] - yy) < 0.01 * y_span), None)
            if group:
                group[2].append(int(kk))
            else:
                near.append((xx, yy, [int(kk)]))
        for xx, yy, ks in near:
            text = f"{letter}={ks[0]}" if len(ks) == 1 else f"{letter}={ks[0]}-{ks[-1]}"
            axes[1].annotate(text, (xx, yy), xytext=(3, 3), textcoords="offset points", fontsize=7, color=f"C{i}")
    axes[0].set(xlabel="virtual steps (K bit planes, or D for unary)", ylabel="mAP50 (pycocotools)")
    axes[1].set(xlabel="SNN energy per image (mJ, 45 nm fp32, trained weights)")
    fig.suptitle("Accuracy against coding and energy, built-in shapes set, equal training budget", fontsize=10)
    for ax in axes:
        ax.margins(x=0.08, y=0.1)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    """Train and record one run, or print the table of a folder of runs."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model YAML, e.g. cfg/ibra-spikeyolo.yaml or yolov8n.yaml")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--neuron", nargs="*", default=[], metavar="KEY=VALUE", help="neuron settings to change")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more yolo train arguments")
    p.add_argument("--recipe", type=Path, default=RECIPE, help="training recipe (an Ultralytics cfg= file)")
    p.add_argument("--data", type=Path, default=DATA, help="data set YAML (default: the built-in shapes set)")
    p.add_argument("--out", type=Path, default=Path("bench/accuracy"))
    p.add_argument("--no-spike-stats", action="store_true", help="skip energy and firing of the trained weights")
    p.add_argument("--force-amp", action="store_true", help="train a spiking model under AMP anyway (to measure it)")
    p.add_argument("--table", type=Path, metavar="DIR", help="print the table of the runs in DIR and exit")
    p.add_argument("--plot", type=Path, nargs="+", metavar="DIR", help="plot mAP50 against energy to --out (.png)")
    a = p.parse_args()
    if a.table:
        print(table(a.table))
        return
    if a.plot:
        if a.out.suffix != ".png":
            sys.exit("accuracy.py: --plot writes a picture: give --out FILE.png.")
        plot(a.plot, a.out)
        return
    if not a.model:
        sys.exit("accuracy.py: give --model MODEL_YAML (or --table DIR).")
    a.out = a.out.resolve()
    a.out.mkdir(parents=True, exist_ok=True)
    record = train(a)
    print(json.dumps({k: v for k, v in record.items() if k not in ("mAP50_per_epoch", "curve")}))


if __name__ == "__main__":
    main()
