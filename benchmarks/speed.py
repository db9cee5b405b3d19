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
model as ``yolo val`` runs it (``fuse()``, eval, and channels-last memory where Ultralytics' AutoBackend picks it:
x86 CPU inference; ``--channels-last on|off`` forces it). A model given as ``MODEL@compile`` is that through
``torch.compile`` (inductor, ``infer`` mode only; it compiles during the untimed warm-up steps), ``MODEL@unfused``
skips ``fuse()``, ``MODEL@dense`` fuses with every re-parameterisable chain merged into one dense conv (the graph
spike inference unrolls), ``MODEL@nchw`` keeps the default memory format; tags combine (``@unfused+nchw``). In
``train`` mode ``MODEL@amp`` runs the step under autocast.
On CUDA, peak memory per model is ``torch.cuda.max_memory_allocated``; on CPU run one model per process and read the
peak RSS (``--models`` with one entry, the ``peak_rss_MiB`` field, and ``step_peak_rise_MiB``: the rise of the process
high-water mark over the resident size just before the warm-up steps, reset through ``/proc/self/clear_refs``).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path

import torch
from _common import channels_last_default, reset_high_water_mark, run_record, status_kib, synthetic_batch

from spikeyolo_ibra.device import resolve_device


def split_tags(cfg: str) -> tuple[str, set[str]]:
    """``MODEL@tag1+tag2`` as (MODEL, {tag1, tag2})."""
    name, _, tag = cfg.partition("@")
    return name, set(tag.split("+")) if tag else set()


def build(cfg: str, mode: str, device: torch.device, channels_last: bool | None = False) -> torch.nn.Module:
    """A model from its YAML, ready for a training step, or for inference as the ``@tag`` after its name says.

    ``channels_last``: the memory format; None in train mode follows the plugin (channels-last for our models on a CPU).
    """
    from ultralytics import YOLO
    from ultralytics.cfg import get_cfg

    from spikeyolo_ibra.fusion import fuse_synapses
    from spikeyolo_ibra.plugin import is_spiking_model

    name, tags = split_tags(cfg)
    model = YOLO(name).model.to(device)
    if mode == "train":
        model.args = get_cfg()
        if channels_last is None:  # auto: the plugin's rule for training (our models on a CPU)
            channels_last = device.type == "cpu" and is_spiking_model(model)
        return model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format).train()
    model.eval()
    if "unfused" not in tags:
        if "dense" in tags:
            fuse_synapses(model, chains="dense")
        model = model.fuse(verbose=False)
    if channels_last and "nchw" not in tags:  # what Ultralytics' AutoBackend does for yolo val / predict
        model = model.to(memory_format=torch.channels_last)
    return torch.compile(model) if "compile" in tags else model


def step_fn(model: torch.nn.Module, mode: str, batch: dict, amp: bool = False) -> callable:
    """One timed unit of work; ``amp``: the training step under autocast (float16 with a gradient scaler on CUDA,
    bfloat16 on the CPU), as Ultralytics' trainer runs it with ``amp=True``."""
    if mode == "infer":
        img = batch["img"]

        def forward() -> None:
            with torch.no_grad():
                model(img)

        return forward
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    device = batch["img"].device
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler(device.type, enabled=amp and dtype == torch.float16)

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            loss, _ = model.loss(batch)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss.sum()).backward()
        scaler.step(opt)
        scaler.update()

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
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or N")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    p.add_argument(
        "--channels-last",
        choices=("auto", "on", "off"),
        default="auto",
        help="memory format; auto = as run for real: Ultralytics' AutoBackend rule for infer (on for x86 CPU), "
        "the plugin's for train (on for our models on a CPU)",
    )
    p.add_argument("--out", type=Path, default=None, help="JSON file to write")
    a = p.parse_args()

    if a.threads:
        torch.set_num_threads(a.threads)
    device = resolve_device(a.device)
    batch = synthetic_batch(a.batch, a.imgsz, device)
    steps, peaks, rises = {}, {}, {}
    if a.channels_last != "auto":
        channels_last = a.channels_last == "on"
    else:
        channels_last = channels_last_default(device) if a.mode == "infer" else None
    for cfg in a.models:
        model = build(cfg, a.mode, device, channels_last)
        steps[cfg] = step_fn(model, a.mode, batch, amp="amp" in split_tags(cfg)[1])
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        base = reset_high_water_mark()
        for _ in range(a.warmup):
            timed(steps[cfg], device)
        if base >= 0:
            rises[cfg] = round((status_kib("VmHWM") - base) / 1024)
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
        "channels_last": a.channels_last if channels_last is None else channels_last,
        **run_record(),
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
