"""Training-step and inference speed of several models, measured side by side in one process.

    python benchmarks/speed.py --mode train --imgsz 320 --batch 8 \
        --models cfg/ibra-spikeyolo.yaml cfg/ann-spikeyolo.yaml yolov8n.yaml
    python benchmarks/speed.py --mode infer --imgsz 640 --batch 1 \
        --models cfg/ibra-spikeyolo.yaml cfg/ann-spikeyolo.yaml

Models are timed in interleaved rounds (A B C A B C ...) so drift on a shared machine hits all of them alike; the
median per model and ratios against the first model are written as JSON. ``train`` is forward + loss + backward +
optimizer step on a synthetic batch with boxes; ``infer`` is a forward of the fused model in eval mode. On CUDA, peak
memory per model is ``torch.cuda.max_memory_allocated``; on CPU run one model per process and read the peak RSS
(``--models`` with one entry, the ``peak_rss_MiB`` field).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path

import torch

import spikeyolo_ibra  # noqa: F401  (registers the spiking blocks)


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
    """A model from its YAML, ready for a training step or fused for inference."""
    from ultralytics import YOLO
    from ultralytics.cfg import get_cfg

    model = YOLO(cfg).model.to(device)
    if mode == "train":
        model.args = get_cfg()
        return model.train()
    return model.fuse(verbose=False).eval()


def step_fn(model: torch.nn.Module, mode: str, batch: dict) -> callable:
    """One timed unit of work."""
    if mode == "infer":
        img = batch["img"]
        return lambda: model(img)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step() -> None:
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
    with torch.no_grad() if fn.__name__ == "<lambda>" else torch.enable_grad():
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
    p.add_argument("--out", type=Path, default=None, help="JSON file to write")
    a = p.parse_args()

    device = torch.device(f"cuda:{a.device}" if a.device.isdigit() else a.device)
    batch = synthetic_batch(a.batch, a.imgsz, device)
    steps, peaks = {}, {}
    for cfg in a.models:
        model = build(cfg, a.mode, device)
        steps[cfg] = step_fn(model, a.mode, batch)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        for _ in range(a.warmup):
            timed(steps[cfg], device)
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
        "threads": torch.get_num_threads(),
        "peak_rss_MiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "models": {
            cfg: {
                "median_s": statistics.median(t),
                "images_per_s": a.batch / statistics.median(t),
                "ratio_to_first": statistics.median(t) / statistics.median(times[first]),
                "peak_cuda_MiB": peaks.get(cfg),
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
