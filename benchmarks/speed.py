"""Training-step and inference speed of several models, measured side by side in one process.

    python benchmarks/speed.py --mode train --imgsz 320 --batch 8 \
        --models cfg/ibra-spikeyolo.yaml cfg/ann-spikeyolo.yaml yolov8n.yaml
    python benchmarks/speed.py --mode infer --imgsz 640 --batch 1 \
        --models cfg/ibra-spikeyolo.yaml cfg/ann-spikeyolo.yaml
    python benchmarks/speed.py --mode infer --imgsz 640 --batch 1 --models cfg/ibra-spikeyolo.yaml \
        cfg/ann-spikeyolo.yaml cfg/ibra-spikeyolo.yaml@compile cfg/ann-spikeyolo.yaml@compile

Models are timed in interleaved rounds (A B C A B C ...) so drift on a shared machine hits all of them alike; the
median and the minimum per model and ratios of both against the first model are written as JSON (the docs quote
the median ratio and give the minimum's as a cross-check: on a shared CPU one lucky round can set a minimum).
``train`` is forward + loss + backward + optimizer step on a synthetic batch with boxes; ``infer`` is a forward of the
fused model in eval mode.
On CUDA, peak memory per model is ``torch.cuda.max_memory_allocated``; on CPU run one model per process and read the
peak RSS (``--models`` with one entry, the ``peak_rss_MiB`` field, and ``step_peak_rise_MiB``: the rise of the process
high-water mark over the resident size just before the warm-up steps, reset through ``/proc/self/clear_refs``).

A model given as ``cfg/ibra-spikeyolo.yaml@before`` runs with the neuron's previous straight-through function
(:class:`BeforeStraightThrough`, kept here verbatim, used with and without autograd as before) swapped in around
each of its steps, so the neuron before and after a change is timed in the same interleaved run. A model given as
``MODEL@compile`` is the fused model through ``torch.compile`` (inductor, ``infer`` mode only); it compiles during
the warm-up steps, which are not timed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

import spikeyolo_ibra  # noqa: F401  (registers the spiking blocks)
from spikeyolo_ibra import neuron as neuron_module


class BeforeStraightThrough(torch.autograd.Function):
    """The neuron's straight-through function before it was made cheaper (seven elementwise passes, two bool temps)."""

    @staticmethod
    def forward(ctx: Any, u: torch.Tensor, scale: float, max_code: int) -> torch.Tensor:  # noqa: D102
        nu = u * scale
        ctx.save_for_backward((nu >= 0) & (nu <= max_code))
        return torch.round(torch.clamp(nu, 0, max_code)) / scale

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # noqa: D102
        (window,) = ctx.saved_tensors
        return grad * window, None, None


@contextlib.contextmanager
def neuron_variant(tag: str):
    """Swap in the ``before`` neuron (its straight-through function, also under no_grad) for a step; else no-op."""
    if tag != "before":
        yield
        return
    current = neuron_module.fire
    neuron_module.fire = BeforeStraightThrough.apply
    try:
        yield
    finally:
        neuron_module.fire = current


def _status_kib(key: str) -> int:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(key + ":"))
    return int(line.split()[1])


def reset_high_water_mark() -> int:
    """Reset VmHWM to the current RSS (Linux) and return the current RSS in KiB, or -1 where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _status_kib("VmRSS")
    except OSError:
        return -1


def synthetic_batch(batch: int, imgsz: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Random images with three boxes each, in Ultralytics' training-batch layout."""
    g = torch.Generator().manual_seed(0)
    n = 3 * batch
    xy = torch.rand(n, 2, generator=g) * 0.6 + 0.2
    wh = torch.rand(n, 2, generator=g) * 0.3 + 0.1
    return {
        "img": torch.rand(batch, 3, imgsz, imgsz, generator=g).to(device),
        "cls": torch.randint(0, 80, (n, 1), generator=g).float().to(device),
        "bboxes": torch.cat([xy, wh], 1).to(device),
        "batch_idx": torch.arange(batch).repeat_interleave(3).float().to(device),
    }


def build(cfg: str, mode: str, device: torch.device) -> torch.nn.Module:
    """A model from its YAML, ready for a training step or fused for inference; ``@compile``: ``torch.compile``-d."""
    from ultralytics import YOLO
    from ultralytics.cfg import get_cfg

    model = YOLO(cfg.split("@")[0]).model.to(device)
    if mode == "train":
        model.args = get_cfg()
        return model.train()
    model = model.fuse(verbose=False).eval()
    return torch.compile(model) if cfg.partition("@")[2] == "compile" else model


def step_fn(model: torch.nn.Module, mode: str, batch: dict, tag: str = "") -> callable:
    """One timed unit of work."""
    if mode == "infer":
        img = batch["img"]

        def forward() -> None:
            with torch.no_grad(), neuron_variant(tag):
                model(img)

        return forward
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step() -> None:
        with neuron_variant(tag):
            loss, _ = model.loss(batch)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()

    return step


def timed(fn: callable, device: torch.device) -> float:
    """Seconds for one call, synchronised on CUDA."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def main() -> None:
    """Time every model in interleaved rounds and print/write medians and ratios."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--mode", choices=("train", "infer"), default="train")
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    p.add_argument("--out", type=Path, default=None, help="JSON file to write")
    a = p.parse_args()

    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(f"cuda:{a.device}" if a.device.isdigit() else a.device)
    batch = synthetic_batch(a.batch, a.imgsz, device)
    steps, peaks, rises = {}, {}, {}
    for cfg in a.models:
        model = build(cfg, a.mode, device)
        steps[cfg] = step_fn(model, a.mode, batch, cfg.partition("@")[2])
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        base = reset_high_water_mark()
        for _ in range(a.warmup):
            timed(steps[cfg], device)
        if base >= 0:
            rises[cfg] = round((_status_kib("VmHWM") - base) / 1024)
        if device.type == "cuda":
            peaks[cfg] = round(torch.cuda.max_memory_allocated() / 2**20)
    times = {cfg: [] for cfg in a.models}
    for _ in range(a.rounds):
        for cfg in a.models:
            times[cfg].append(timed(steps[cfg], device))
    first = a.models[0]
    result = {
        "mode": a.mode,
        "imgsz": a.imgsz,
        "batch": a.batch,
        "rounds": a.rounds,
        "device": a.device,
        "device_name": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "command": " ".join(sys.argv),
        "threads": torch.get_num_threads(),
        "peak_rss_MiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "models": {
            cfg: {
                "median_s": statistics.median(t),
                "min_s": min(t),
                "images_per_s": a.batch / statistics.median(t),
                "ratio_to_first": statistics.median(t) / statistics.median(times[first]),
                "min_ratio_to_first": min(t) / min(times[first]),
                "peak_cuda_MiB": peaks.get(cfg),
                "step_peak_rise_MiB": rises.get(cfg),
                "times_s": t,
            }
            for cfg, t in times.items()
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text)


if __name__ == "__main__":
    main()
