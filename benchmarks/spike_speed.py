"""Wall time and peak memory of spike mode against integer mode, and the float32 equivalence numbers.

    YOLO_OFFLINE=1 python benchmarks/spike_speed.py [--imgsz 640] [--repeats 3]
    YOLO_OFFLINE=1 python benchmarks/spike_speed.py --device 0 --batch 8 --skip-float32   # GPU throughput

Scale n of cfg/ibra-spikeyolo.yaml (random weights, seed 0, BN calibrated on bus.jpg and zidane.jpg so that it fires:
``_common.calibrated_model``, as every benchmark here), bus.jpg letterboxed to imgsz and repeated ``batch`` times.
Integer mode is the model as ``yolo val`` runs it (``fuse()``); spike mode is the spike runtime's merged graph. Each
mode runs in a fresh process on a saved checkpoint; peak memory is the rise of the process high-water mark (CPU:
VmHWM, reset through /proc/self/clear_refs; CUDA: max_memory_allocated) over the forward passes; wall time is the
median of ``repeats`` passes after one warm-up (time.perf_counter, synchronised on CUDA), images per second = batch /
that. Float32 runs use IEEE float32 on CUDA (no TF32), as spike-infer does.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import calibrated_model, letterboxed, model_yaml, reset_high_water_mark, status_kib

from spikeyolo_ibra.device import no_tf32, resolve_device
from spikeyolo_ibra.neuron import IBLIF
from spikeyolo_ibra.spike import Equivalence, run_pair, to_spike_driven

MODES = {  # name: (model dtype, spike mode?, accumulate, accumulator dtype)
    "integer": ("float32", False, None, None),
    "spike batched": ("float32", True, "batched", None),
    "spike sequential": ("float32", True, "sequential", None),
    "spike batched, float64 accumulation": ("float32", True, "batched", torch.float64),
}


def worker(ckpt: str, mode: str, imgsz: int, repeats: int, device: str = "cpu", batch: int = 1) -> dict:
    dtype, spiking, accumulate, accumulator = MODES[mode]
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    model = torch.load(ckpt, weights_only=False)["model"].to(dev, getattr(torch, dtype))
    if spiking:
        model = to_spike_driven(model, accumulate, accumulator)
    x = letterboxed(imgsz, ("bus.jpg",)).repeat(batch, 1, 1, 1).to(dev, getattr(torch, dtype))
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev) / 1024
    else:
        base = reset_high_water_mark()
    times = []
    with torch.no_grad(), no_tf32():
        for _ in range(repeats + 1):
            if cuda:
                torch.cuda.synchronize(dev)
            t = time.perf_counter()
            model(x)
            if cuda:
                torch.cuda.synchronize(dev)
            times.append(time.perf_counter() - t)
    peak = (torch.cuda.max_memory_allocated(dev) / 1024 if cuda else status_kib("VmHWM")) - base
    seconds = statistics.median(times[1:])
    return {"mode": mode, "seconds": seconds, "images_per_s": batch / seconds, "peak_MiB": peak / 1024}


def float32_story(model: torch.nn.Module, imgsz: int, device: torch.device) -> dict:
    """Code flips and head differences of float32 runs against the float64 integer model (the exact answer)."""
    model = copy.deepcopy(model).to(device)
    x = letterboxed(imgsz, ("bus.jpg",)).to(device)
    ref = copy.deepcopy(model).double()
    out = {}
    for name, candidate in (
        ("float32 integer", model),
        ("float32 spike batched", to_spike_driven(model)),
        ("float32 spike, float64 accumulation", to_spike_driven(model, accumulator=torch.float64)),
    ):
        eq = Equivalence("float32")
        hooks = [
            candidate.register_forward_pre_hook(lambda _m, args: (args[0].float(),)),
            candidate.register_forward_hook(lambda _m, _a, y: (y[0].double(), *y[1:])),
        ]
        run_pair(ref, candidate, x.double(), eq, 0.25, 0.7)
        for h in hooks:
            h.remove()
        out[f"{name} vs float64 integer"] = eq.as_dict()
    eq = Equivalence("float32")
    run_pair(model, to_spike_driven(model), x, eq, 0.25, 0.7)
    out["float32 spike batched vs float32 integer"] = eq.as_dict()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu", help="cpu or a CUDA index")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--worker", nargs=2, metavar=("CKPT", "MODE"))
    p.add_argument("--skip-float32", action="store_true", help="timings only")
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.imgsz, args.repeats, args.device, args.batch)))
        return
    model = calibrated_model(model_yaml("n"), args.imgsz)
    bits = next(m.config.virtual_steps for m in model.modules() if isinstance(m, IBLIF))
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = str(Path(tmp) / "fused.pt")
        torch.save({"model": model}, ckpt)
        rows = []
        for mode in MODES:
            cmd = [sys.executable, __file__, "--worker", ckpt, mode]
            cmd += ["--imgsz", str(args.imgsz), "--repeats", str(args.repeats)]
            cmd += ["--device", args.device, "--batch", str(args.batch)]
            rows.append(json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout))
    base = rows[0]["seconds"]
    device = resolve_device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"scale n, imgsz {args.imgsz}, batch {args.batch}, bus.jpg, K = {bits}, {where}")
    for r in rows:
        ratio = r["seconds"] / base
        print(
            f"{r['mode']:<38} {r['seconds']:8.3f} s  {r['images_per_s']:8.1f} img/s  {ratio:5.2f}x integer "
            f"({ratio / bits:4.2f} K)  peak +{r['peak_MiB']:7.0f} MiB"
        )
    if not args.skip_float32:
        with no_tf32():  # IEEE float32 on CUDA, as spike-infer runs it
            print(json.dumps(float32_story(model, args.imgsz, device), indent=1))


if __name__ == "__main__":
    main()
