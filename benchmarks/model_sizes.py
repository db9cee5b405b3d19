"""Parameters and GFLOPs of every scale of the spiking configs, and the layer table of scale n.

    YOLO_OFFLINE=1 .venv/bin/python benchmarks/model_sizes.py

Each model is built the way a user builds it (``YOLO('cfg/ibra-spikeyolo-n.yaml').model``), counted and profiled with
Ultralytics' ``get_flops(model, imgsz=640)`` in three forms: as trained; fused as ``yolo val`` runs it
(``model.fuse()``: BN folded, re-parameterisable chains kept factored); and dense, every chain merged into the one
k x k conv it equals (``SPIKEYOLO_CHAINS=dense``: the graph spike inference unrolls). GFLOPs are Ultralytics'
convention (2 x MACs, one 640 x 640 image, T = 1); neurons and pooling count as zero. Prints Markdown tables and
writes ``bench/model_sizes.json``.
"""

from __future__ import annotations

import copy
import json
import logging
import platform
from pathlib import Path

import torch
import ultralytics
from torch import nn
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel, yaml_model_load
from ultralytics.utils import LOGGER
from ultralytics.utils.torch_utils import get_flops

import spikeyolo_ibra  # noqa: F401  (registers the spiking blocks)
from spikeyolo_ibra.fusion import fuse_synapses

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ("ibra-spikeyolo", "spikeyolo", "ann-spikeyolo")
SCALES = ("n", "s", "m", "l", "t")  # t: our tiny scale for CPU demos, not one of SpikeYOLO's
#: SpikeYOLO's published parameter counts (snn_yolov8.yaml comments, BICLab/SpikeYOLO), in millions.
PUBLISHED_M = {"n": 13.2, "s": 23.1, "m": 47.8, "l": 68.5}
IMGSZ = 640
OUT = ROOT / "bench" / "model_sizes.json"


def n_params(model: nn.Module) -> int:
    """All parameters, trainable or not (BN affine included)."""
    return sum(p.numel() for p in model.parameters())


def gflops(model: nn.Module) -> float:
    """Ultralytics' GFLOPs at IMGSZ; fails loudly where ``get_flops`` would quietly return 0."""
    value = get_flops(model, IMGSZ)
    if not value:
        raise RuntimeError(f"get_flops returned {value!r}: is ultralytics-thop installed?")
    return value


def sizes(cfg: str, scale: str) -> dict:
    """Parameters and GFLOPs of one model: as trained, fused as ``yolo val`` runs it, and with dense chains."""
    model = YOLO(str(ROOT / "cfg" / f"{cfg}-{scale}.yaml")).model.eval()
    row = {"params": n_params(model), "gflops": gflops(model)}
    dense = fuse_synapses(copy.deepcopy(model), chains="dense").fuse(verbose=False)
    model.fuse(verbose=False)
    row.update(params_fused=n_params(model), gflops_fused=gflops(model))
    row.update(params_dense=n_params(dense), gflops_dense=gflops(dense))
    return row


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def layer_table(cfg: str = "ibra-spikeyolo", scale: str = "n") -> list[dict]:
    """One row per layer of the built model: Ultralytics' own build log plus output shape from a forward pass."""
    handler, stock = _Lines(), LOGGER.handlers[:]
    LOGGER.handlers[:] = [handler]  # capture the build log instead of printing it
    try:
        model = YOLO(str(ROOT / "cfg" / f"{cfg}-{scale}.yaml"), verbose=True).model.eval()
    finally:
        LOGGER.handlers[:] = stock
    # parse_model logs f"{i:>3}{f!s:>20}{n_:>3}{np:10.0f}  {t:<45}{args!s:<30}" per layer
    logged = {}
    for line in handler.lines:
        if line[:3].strip().isdigit() and line[23:26].strip().isdigit():
            module_and_args = line[38:].split(None, 1)
            logged[int(line[:3])] = {"repeats": int(line[23:26]), "args": module_and_args[1].strip()}
    shapes: dict[int, tuple] = {}
    hooks = [
        m.register_forward_hook(lambda mod, inp, out, i=m.i: shapes.__setitem__(i, tuple(out.shape)))
        for m in model.model[:-1]
    ]
    size = 256
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    rows = []
    for m in model.model:
        last = m is model.model[-1]
        rows.append(
            {
                "index": m.i,
                "from": m.f,
                "repeats": logged[m.i]["repeats"],
                "module": m.type.split(".")[-1],
                "args": logged[m.i]["args"],
                "out_channels": "boxes + classes" if last else shapes[m.i][1],
                "stride": "8, 16, 32" if last else size // shapes[m.i][-1],
                "params": m.np,
            }
        )
    return rows


def ratio_check() -> dict[int, dict[str, int]]:
    """Parameters of ibra-spikeyolo with layer 24's mixer ratio fixed to 1 or 2 at every scale (why it is per scale)."""
    out: dict[int, dict[str, int]] = {}
    for ratio in (1, 2):
        out[ratio] = {}
        for s in PUBLISHED_M:
            d = yaml_model_load(ROOT / "cfg" / "ibra-spikeyolo.yaml")
            d["scale"] = s
            d["head"][-2][3][1] = ratio  # layer 24: [-1, 1, SpikeConvBlock, [1024, ratio, 7]]
            out[ratio][s] = n_params(DetectionModel(d, verbose=False))
    return out


def main() -> None:
    """Measure, print Markdown, write JSON."""
    torch.manual_seed(0)
    results = {cfg: {s: sizes(cfg, s) for s in SCALES} for cfg in CONFIGS}
    layers = layer_table()
    ratios = ratio_check()

    print(
        "| scale | params, train | GFLOPs, train | params, fused | GFLOPs, fused | params, dense | GFLOPs, dense "
        "| SpikeYOLO published params | train vs published |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in SCALES:
        r = results["ibra-spikeyolo"][s]
        published = (
            f"{PUBLISHED_M[s]}M | {100 * (r['params'] / 1e6 / PUBLISHED_M[s] - 1):+.2f} %"
            if s in PUBLISHED_M
            else "- | -"
        )
        print(
            f"| {s} | {r['params']:,} | {r['gflops']:.1f} | {r['params_fused']:,} | {r['gflops_fused']:.1f} "
            f"| {r['params_dense']:,} | {r['gflops_dense']:.1f} | {published} |"
        )
    same = all(results[c] == results["ibra-spikeyolo"] for c in CONFIGS)
    print(f"\nspikeyolo.yaml and ann-spikeyolo.yaml give the same numbers as ibra-spikeyolo.yaml: {same}\n")

    print("| layer 24 mixer ratio | " + " | ".join(PUBLISHED_M) + " |")
    print("|---|" + "---:|" * len(PUBLISHED_M))
    for ratio, row in ratios.items():
        cells = [f"{row[s]:,} ({100 * (row[s] / 1e6 / PUBLISHED_M[s] - 1):+.2f} %)" for s in PUBLISHED_M]
        print(f"| {ratio} at every scale | " + " | ".join(cells) + " |")
    print()

    print("| i | from | n | module | args (after scaling) | out ch | stride | params |")
    print("|---:|---|---:|---|---|---:|---:|---:|")
    for r in layers:
        print(
            f"| {r['index']} | {r['from']} | {r['repeats']} | {r['module']} | `{r['args']}` | {r['out_channels']} "
            f"| {r['stride']} | {r['params']:,} |"
        )

    OUT.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "imgsz": IMGSZ,
        "nc": 80,
        "ultralytics": ultralytics.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "gflops": "ultralytics.utils.torch_utils.get_flops(model, 640); 2 x MACs, batch 1, T = 1",
    }
    report = {
        "meta": meta,
        "published_params_M": PUBLISHED_M,
        "sizes": results,
        "layer24_ratio_params": ratios,
        "layers_ibra_n": layers,
    }
    OUT.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
