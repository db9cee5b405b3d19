"""SNN against ANN-twin (and int8 quantized-ANN) energy per scale, from the spike-driven runtime's report.

    YOLO_OFFLINE=1 python benchmarks/energy_scales.py --scales n s --imgsz 640 \
        --trained n=/tmp/e2e/runs/full128/weights/best.pt --out bench/energy.json
    YOLO_OFFLINE=1 python benchmarks/energy_scales.py --scales n s m l --imgsz 64 \
        --source 'DATASETS/shapes/images/val/00000000060*.jpg' \
        --trained n=bench/accuracy/runs/ibra-spikeyolo-s0/weights/best.pt --out bench/energy-val.json

For every scale of ``cfg/ibra-spikeyolo.yaml`` the weights are either

- ``bn-calibrated``: random weights (seed 0) whose BatchNorm statistics are re-estimated on bus.jpg and zidane.jpg
  (cumulative average, as the tests do) so that the network fires, then fused; or
- ``trained``: a checkpoint given with ``--trained SCALE=PATH`` (an ibra-spikeyolo ``best.pt``).

Each weight set runs through :func:`spikeyolo_ibra.spike.spike_infer` (spike-driven, float32, sequential accumulation)
on bus.jpg and on zidane.jpg (Ultralytics assets) separately, or on ``--source``: an image glob such as the built-in
val images ``.../shapes/images/val/00000000060*.jpg`` the demo uses (figures are then means per image). The energy
numbers are the report's ``energy`` block (45 nm fp32 table by default: MAC 4.6 pJ, AC 0.9 pJ; QANN = 0.23 pJ per
MAC). Firing statistics are totals over the spike-fed layers. The energy ratio depends on the firing rates, i.e. on
the weights: random or briefly trained weights do not give the paper's figure (6.3x, COCO-trained weights).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _common import IMAGES, calibrated_model, model_yaml, run_record
from ultralytics.utils import ASSETS

from spikeyolo_ibra.energy import COSTS, totals_from_counts
from spikeyolo_ibra.neuron import NeuronConfig
from spikeyolo_ibra.spike import spike_infer
from spikeyolo_ibra.spike.measure import firing_summary

PAPER_RATIO = 6.3


def run(checkpoint: Path, imgsz: int, energy: str, work: Path, sources: list[str]) -> dict:
    """spike_infer on each source (an image or a glob) separately; the report's energy and firing summary per source.

    For a glob the report's figures are means per image over its images.
    """
    out = {}
    for source in sources:
        name = Path(source).name
        t = time.perf_counter()
        report = spike_infer(
            checkpoint,
            source,
            imgsz=imgsz,
            dtype="float32",
            accumulate="sequential",
            energy=energy,
            out=work / f"{checkpoint.stem}-{len(out)}",
        )
        out[name] = {
            "energy": report["energy"],
            "firing": firing_summary(report["layers"], NeuronConfig.from_mapping(report["neuron"])),
            "neuron": report["neuron"],
            "seconds": time.perf_counter() - t,
        }
        e = report["energy"]
        print(
            f"  {name:<11} SNN {e['snn_mJ']:.3f} mJ  ANN {e['ann_mJ']:.3f} mJ  ratio {e['ratio']:.2f}x  "
            f"QANN {e['qann_int8_mJ']:.3f} mJ ({e['qann_ratio']:.2f}x)  "
            f"spikes/neuron {out[name]['firing']['spikes_per_neuron']:.3f}",
            flush=True,
        )
    return out


def reprice(node: Any) -> Any:
    """Every energy block in a results tree recomputed from its stored operation counts with today's formulas.

    Energy is a function of three counts (encoder MACs, SOPs, ANN MACs) and a cost table, so a change of the energy
    model (e.g. pricing the quantized-ANN comparison at int8 on both sides) needs no new inference.
    """
    if isinstance(node, list):
        return [reprice(v) for v in node]
    if not isinstance(node, dict):
        return node
    if {"encoder_macs", "sops", "ann_macs", "costs"} <= node.keys():
        costs = COSTS[node["costs"]["table"]]
        return totals_from_counts(node["encoder_macs"], node["sops"], node["ann_macs"], costs)
    return {k: reprice(v) for k, v in node.items()}


def table(record: dict) -> str:
    """Markdown: a row per (scale, weights, image) of an energy_scales.py record; counts in G, energy in mJ/image."""
    lines = [
        "| scale | weights | image | spikes / neuron | firing rate / virtual step | nonzero codes | encoder GMACs | "
        "GSOPs | ANN GMACs | E_SNN mJ | E_ANN mJ | **ANN / SNN** | E_QANN int8 mJ | E_SNN int8 mJ | "
        "QANN / SNN (int8) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in record["runs"]:
        for image, r in run["images"].items():
            e, f = r["energy"], r["firing"]
            lines.append(
                f"| {run['scale']} | {run['weights']} | {image} | {f['spikes_per_neuron']:.3f} | "
                f"{f['firing_rate_per_virtual_step']:.4f} | {f['nonzero_share']:.3f} | {e['encoder_macs'] / 1e9:.4g} | "
                f"{e['sops'] / 1e9:.4g} | {e['ann_macs'] / 1e9:.4g} | {e['snn_mJ']:.4g} | {e['ann_mJ']:.4g} | "
                f"**{e['ratio']:.2f}x** | {e['qann_int8_mJ']:.4g} | {e['snn_int8_mJ']:.4g} | {e['qann_ratio']:.2f}x |"
            )
    return "\n".join(lines)


def main() -> None:
    """Energy for every requested scale and weight set; JSON to ``--out``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scales", nargs="+", default=["n", "s"])
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--energy", default="fp32", help="cost table: fp32, fp16 or int8")
    p.add_argument("--trained", nargs="*", default=[], metavar="SCALE=PATH", help="trained checkpoints per scale")
    p.add_argument("--no-calibrated", action="store_true", help="only the trained checkpoints")
    p.add_argument("--source", help="an image glob instead of bus.jpg and zidane.jpg (e.g. built-in val images)")
    p.add_argument("--out", type=Path, default=Path("bench/energy.json"))
    p.add_argument("--reprice", type=Path, nargs="+", metavar="JSON", help="recompute stored energy blocks and exit")
    p.add_argument("--table", type=Path, metavar="JSON", help="print the markdown table of a result and exit")
    a = p.parse_args()
    if a.table:
        print(table(json.loads(a.table.read_text())))
        return
    if a.reprice:
        for path in a.reprice:
            record = reprice(json.loads(path.read_text()))
            record["repriced"] = {k: v for k, v in run_record().items() if k in ("command", "date")}
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(record, indent=1))
            tmp.replace(path)
            print(f"repriced {path}")
        return
    sources = [a.source] if a.source else [str(ASSETS / name) for name in IMAGES]
    trained = dict(kv.split("=", 1) for kv in a.trained)
    result = {
        **run_record(),
        "imgsz": a.imgsz,
        "paper_ratio": PAPER_RATIO,
        "sources": sources,
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for scale in a.scales:
            sets = []
            if scale in trained:
                sets.append(("trained", Path(trained[scale])))
            if not a.no_calibrated:
                ckpt = work / f"ibra-{scale}-calibrated.pt"
                torch.save({"model": calibrated_model(model_yaml(scale), a.imgsz), "train_args": {}}, ckpt)
                sets.append(("bn-calibrated", ckpt))
            for kind, ckpt in sets:
                print(f"scale {scale}, {kind} weights ({ckpt})", flush=True)
                per_image = run(ckpt, a.imgsz, a.energy, work, sources)
                result["runs"].append({"scale": scale, "weights": kind, "checkpoint": str(ckpt), "images": per_image})
                a.out.parent.mkdir(parents=True, exist_ok=True)
                a.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
