"""How many integer codes survive mixed precision: the network's codes under autocast against float32.

    YOLO_OFFLINE=1 python benchmarks/amp_codes.py --imgsz 160 --out bench/amp-codes.json

Under AMP the convolutions run in float16 or bfloat16, so the membranes the neurons see carry 11 or 8 significant bits.
The neuron itself computes its code in float32 (docs/neuron.md), so what is left is the membrane's own rounding: near
D = 5.11 a float16 membrane is a multiple of 2^-8 (0.39 of N = 100's levels), a bfloat16 one of 2^-5 (3.1 levels).
For each configuration (IBRA K = 9 with N = 100, IBRA K = 4 with its N, SpikeYOLO's I-LIF D = 4), scale n with random
weights and BN statistics calibrated on bus.jpg and zidane.jpg, this script runs the two images in float32 and under
``torch.autocast`` (bfloat16 on the CPU; float16 too where the device has it) and reports, over every neuron of the
network, the share of codes that equal float32's and the mean |difference| in levels; and, for scale, float32
against float64 on the same weights: a deep network amplifies any rounding, float32's too.
"""

from __future__ import annotations

import argparse
import copy
import json
from functools import partial
from pathlib import Path

import torch
from _common import calibrated_model, letterboxed, model_yaml, run_record

from spikeyolo_ibra.blocks import SpikingSynapse
from spikeyolo_ibra.device import resolve_device
from spikeyolo_ibra.neuron import IBLIF

SETTINGS = {
    "IBRA K=9, N=100": ("ibra-spikeyolo", {}),
    "IBRA K=4, N=2.94": ("ibra-spikeyolo", {"bits": 4, "scale": 2.935421}),
    "I-LIF D=4": ("spikeyolo", {}),
}


def codes_of(model: torch.nn.Module, x: torch.Tensor, dtype: torch.dtype | None) -> list[torch.Tensor]:
    """Every neuron's codes for x, in model order; under autocast to ``dtype`` when given."""
    pairs = [m for m in model.modules() if isinstance(m, SpikingSynapse) and isinstance(m.neuron, IBLIF)]
    out: list[tuple[int, torch.Tensor]] = []

    def keep(k: int, m: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        out.append((k, m.neuron.codes(args[0])))

    hooks = [m.register_forward_pre_hook(partial(keep, i)) for i, m in enumerate(pairs)]
    try:
        with torch.no_grad(), torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return [q for _, q in sorted(out, key=lambda kq: kq[0])]


def compare(a: list[torch.Tensor], b: list[torch.Tensor]) -> dict:
    """Share of equal codes and mean |difference| in levels, over all neurons."""
    total = sum(q.numel() for q in a)
    equal = sum(int((p == q).sum()) for p, q in zip(a, b, strict=True))
    diff = sum(float((p - q).abs().sum()) for p, q in zip(a, b, strict=True))
    return {"codes": total, "equal_share": equal / total, "mean_abs_level_diff": diff / total}


def main() -> None:
    """Every setting, every autocast dtype the device has; JSON to --out."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--imgsz", type=int, default=160)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    device = resolve_device(a.device)
    dtypes = {"bfloat16": torch.bfloat16, "float16": torch.float16}
    x = letterboxed(a.imgsz).to(device)
    result = {**run_record(), "imgsz": a.imgsz, "device": str(device), "settings": {}}
    for name, (config, neuron) in SETTINGS.items():
        cfg = copy.deepcopy(model_yaml("n", config))
        cfg["neuron"] = {**cfg["neuron"], **neuron}
        model = calibrated_model(cfg, a.imgsz, fuse=False).to(device).eval()
        reference = codes_of(model, x, None)
        exact = codes_of(copy.deepcopy(model).double(), x.double(), None)
        row = {"float32 vs float64": compare(exact, reference)}  # what float32 itself does, for scale
        for label, dtype in dtypes.items():
            try:
                row[label] = compare(reference, codes_of(model, x, dtype))
            except RuntimeError as e:  # the device has no autocast for this dtype
                row[label] = {"unsupported": str(e).splitlines()[0]}
        result["settings"][name] = row
        print(name, json.dumps(row))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
