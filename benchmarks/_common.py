"""Pieces every benchmark script shares: the record beside each number, the images, a firing model, memory peaks.

Imported by the scripts in this folder as a sibling module (``python benchmarks/<script>.py`` puts the folder on the
path); library logic (statistics, energy) lives in the package instead.
"""

from __future__ import annotations

import copy
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import ultralytics
from ultralytics import YOLO
from ultralytics.data.augment import LetterBox
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import ASSETS
from ultralytics.utils.torch_utils import get_cpu_info

import spikeyolo_ibra  # noqa: F401  (registers the spiking blocks)
from spikeyolo_ibra.spike import calibrate_bn

REPO = Path(__file__).resolve().parents[1]
IMAGES = ("bus.jpg", "zidane.jpg")


def run_record() -> dict:
    """The command, date, machine and versions that go beside every number."""
    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{get_cpu_info()}, {os.cpu_count()} cores"
        + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "ultralytics": ultralytics.__version__,
        "spikeyolo_ibra": spikeyolo_ibra.__version__,
    }


def letterboxed(imgsz: int, names: tuple[str, ...] = IMAGES) -> torch.Tensor:
    """Ultralytics' assets letterboxed to imgsz x imgsz as spike_infer sees them, RGB (B, 3, H, W) in [0, 1]."""
    box = LetterBox(imgsz, auto=False, stride=32)
    ims = [box(image=cv2.imread(str(ASSETS / n)))[..., ::-1].transpose(2, 0, 1) for n in names]
    return torch.from_numpy(np.ascontiguousarray(np.stack(ims))).float() / 255


def model_yaml(scale: str, config: str = "ibra-spikeyolo") -> dict:
    """The parsed YAML of cfg/<config>-<scale>.yaml (the scale suffix picks width and depth)."""
    return YOLO(str(REPO / "cfg" / f"{config}-{scale}.yaml")).model.yaml


def calibrated_model(cfg: dict, imgsz: int, seed: int = 0, fuse: bool = True) -> DetectionModel:
    """Random weights (seeded) with BN statistics estimated on bus.jpg and zidane.jpg, eval, float32, fused."""
    torch.manual_seed(seed)
    model = calibrate_bn(DetectionModel(copy.deepcopy(cfg), verbose=False), letterboxed(imgsz))
    return model.fuse(verbose=False) if fuse else model


def status_kib(key: str) -> int:
    """A field of /proc/self/status in KiB (VmRSS, VmHWM)."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(key + ":"))
    return int(line.split()[1])


def reset_high_water_mark() -> int:
    """Reset the process's peak RSS to its current RSS (Linux); the current RSS in KiB, -1 where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return status_kib("VmRSS")
    except OSError:
        return -1


def synthetic_batch(batch: int, imgsz: int, device: torch.device, nc: int = 80) -> dict[str, torch.Tensor]:
    """Random images with three boxes each, in Ultralytics' training-batch layout, independent of global seeds."""
    g = torch.Generator().manual_seed(0)
    n = 3 * batch
    xy = torch.rand(n, 2, generator=g) * 0.6 + 0.2
    wh = torch.rand(n, 2, generator=g) * 0.3 + 0.1
    return {
        "img": torch.rand(batch, 3, imgsz, imgsz, generator=g).to(device),
        "cls": torch.randint(0, nc, (n, 1), generator=g).float().to(device),
        "bboxes": torch.cat([xy, wh], 1).to(device),
        "batch_idx": torch.arange(batch).repeat_interleave(3).float().to(device),
    }


def channels_last_default(device: torch.device) -> bool:
    """Ultralytics' own rule (AutoBackend, 8.4.1xx): channels-last memory for native models in x86 CPU inference."""
    import platform

    return (
        device.type == "cpu"
        and platform.machine() in {"AMD64", "x86_64"}
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
    )
