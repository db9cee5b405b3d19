"""Where tensors run: the device a user names on our command lines, and exact float32 on CUDA.

Every command of ours that runs a model (``spike-infer``, ``tools/demo.py``, the ``spikeyolo`` command's ``device=``,
the benchmarks) takes a device the way Ultralytics does (``cpu``, ``cuda``, ``cuda:N`` or a bare index ``N``) and
turns one this machine does not have into one sentence (:class:`DeviceError`), never a CUDA traceback halfway
through a run. Ultralytics' ``select_device`` is not used here: it changes process state (8.4.0 sets
``CUDA_VISIBLE_DEVICES``, 8.4.190 the current CUDA device) and logs a banner.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from .errors import SpikeYoloError

__all__ = ("DeviceError", "default_device", "no_tf32", "resolve_device")


class DeviceError(SpikeYoloError, ValueError):
    """A device name this machine cannot run on; the message names it and the fix."""


def default_device() -> str:
    """``cuda:0`` when CUDA is available, else ``cpu``."""
    return "cuda:0" if torch.cuda.is_available() else "cpu"


def resolve_device(name: str | int | torch.device | None) -> torch.device:
    """The torch device for ``name`` (``None`` or ``""``: :func:`default_device`), checked against this machine.

    Raises:
        DeviceError: for a name torch does not parse, CUDA on a machine without it, or a GPU index out of range.

    """
    if name is None or str(name).strip() == "":
        return torch.device(default_device())
    text = str(name).strip().lower()
    if text.isdigit():
        text = f"cuda:{text}"
    try:
        device = torch.device(text)
    except (RuntimeError, TypeError) as e:
        raise DeviceError(f"device {name!r} is not a torch device: use cpu, cuda or cuda:N.") from e
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} asks for CUDA, which this machine does not have: use --device cpu.")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DeviceError(
                f"device {name!r} asks for GPU {device.index}, but this machine has {count} (0 to {count - 1}): "
                f"use --device cuda:0."
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {name!r} asks for Apple's MPS, which this machine does not have: use --device cpu.")
    elif device.type not in ("cpu", "mps"):
        raise DeviceError(f"device {name!r} is not supported here: use cpu, cuda or cuda:N.")
    return device


@contextlib.contextmanager
def no_tf32() -> Iterator[None]:
    """Run float32 convolutions and matmuls in IEEE float32 (no TF32) inside the block, then restore the settings.

    CUDA convolutions default to TF32 on Ampere and later (10-bit mantissa inputs), which changes integer codes of a
    float32 spiking network beyond the summation-order differences that float32 itself has. Uses the
    ``fp32_precision`` settings where torch has them (2.9 and later), the ``allow_tf32`` flags before.
    """
    new_api = hasattr(torch.backends.cudnn, "conv") and hasattr(torch.backends.cudnn.conv, "fp32_precision")
    if new_api:
        backends = (torch.backends.cudnn.conv, torch.backends.cuda.matmul)
        saved = [b.fp32_precision for b in backends]
        try:
            for b in backends:
                b.fp32_precision = "ieee"
            yield
        finally:
            for b, value in zip(backends, saved, strict=True):
                b.fp32_precision = value
        return
    saved_flags = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved_flags
