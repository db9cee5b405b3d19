"""The paper's ablation without training: bit width K with and without range alignment N, and unary I-LIF levels D.

    YOLO_OFFLINE=1 python benchmarks/ablation.py --imgsz 128 --out bench/ablation.json

For each neuron setting, scale n of ``cfg/ibra-spikeyolo.yaml`` is rebuilt with that ``neuron:`` mapping, given random
weights (seed 0) with BatchNorm statistics calibrated on bus.jpg and zidane.jpg (benchmarks/_common.py), fused and
run spike-driven (:func:`spikeyolo_ibra.spike.to_spike_driven`, sequential accumulation, float32) on the same two
images under :class:`spikeyolo_ibra.spike.Monitor`. Reported per setting: virtual steps, level utilisation (distinct
codes seen / (Q + 1), mean over spike-fed layers), spikes per neuron, firing rate per virtual step, SOPs and energy
per image (fp32 45 nm table) against the ANN twin, and against the int8 QANN with the SNN priced at int8 too.

Settings: binary (bit-plane) coding with K = 2..9, "with N" meaning N = (2**K - 1) / 5.11 so the ceiling D = Q / N is
the authors' 5.11 (K = 9 gives N = 100, the default), "without N" meaning N = 1 (D = 2**K - 1); unary coding
(SpikeYOLO's I-LIF) with D = levels in {1, 2, 4} and N = 1.

No training here: the statistics of random, BN-calibrated weights are not those of trained weights. Accuracy, and
the statistics of trained weights, per setting: ``benchmarks/accuracy.py --neuron bits=K scale=N`` (one training run
per setting and seed).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
from _common import calibrated_model, letterboxed, model_yaml, run_record

from spikeyolo_ibra.energy import COSTS, energy_totals
from spikeyolo_ibra.neuron import NeuronConfig
from spikeyolo_ibra.spike import Monitor, to_spike_driven
from spikeyolo_ibra.spike.measure import firing_summary

PAPER_D = 5.11


def settings() -> list[tuple[str, dict]]:
    """(label, neuron mapping) for every ablation setting."""
    out = []
    for bits in range(2, 10):
        q = 2**bits - 1
        out.append((f"K={bits}, with N", {"bits": bits, "scale": round(q / PAPER_D, 6), "coding": "binary"}))
        out.append((f"K={bits}, without N", {"bits": bits, "scale": 1.0, "coding": "binary"}))
    for d in (1, 2, 4):
        out.append((f"unary D={d}", {"coding": "unary", "levels": d, "scale": 1.0}))
    return out


def measure(neuron: dict, imgsz: int, x: torch.Tensor) -> dict:
    """Spike-driven run of a calibrated scale-n model with this neuron; energy totals and firing summary."""
    cfg = copy.deepcopy(model_yaml("n"))
    cfg["neuron"] = {**cfg.get("neuron", {}), **neuron}
    config = NeuronConfig.from_mapping(cfg["neuron"])
    model = to_spike_driven(calibrated_model(cfg, imgsz), "sequential")
    with Monitor(model) as monitor, torch.no_grad():
        model(x)
        rows = monitor.rows()
    return {
        "neuron": config.to_mapping(),
        "ceiling_D": config.ceiling,
        "energy": energy_totals(rows, COSTS["fp32"]),
        "firing": firing_summary(rows, config),
    }


def main() -> None:
    """Every setting in turn; JSON to ``--out`` after each."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--out", type=Path, default=Path("bench/ablation.json"))
    a = p.parse_args()
    x = letterboxed(a.imgsz)
    result = {
        **run_record(),
        "imgsz": a.imgsz,
        "images": "bus.jpg, zidane.jpg (letterboxed, one batch of 2)",
        "weights": "random (seed 0), BN calibrated on the same two images",
        "accuracy": "not measured (needs one training run per setting)",
        "settings": [],
    }
    for label, neuron in settings():
        t = time.perf_counter()
        row = {"setting": label, **measure(neuron, a.imgsz, x), "seconds": time.perf_counter() - t}
        result["settings"].append(row)
        f, e = row["firing"], row["energy"]
        print(
            f"{label:<18} steps {f['virtual_steps']:>2}  util {f['level_utilisation_mean']:.3f}  "
            f"spikes/neuron {f['spikes_per_neuron']:.3f}  rate {f['firing_rate_per_virtual_step']:.4f}  "
            f"SNN {e['snn_mJ']:.3f} mJ  ratio {e['ratio']:.2f}x  QANN ratio {e['qann_ratio']:.2f}x",
            flush=True,
        )
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
