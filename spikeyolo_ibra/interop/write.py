"""Writing the converted model as an ordinary Ultralytics checkpoint (float32), with its provenance."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import ultralytics
from ultralytics.cfg import DEFAULT_CFG_DICT
from ultralytics.nn.tasks import DetectionModel

from ..atomic import replacing
from .safe_pickle import origin

__all__ = ("plain", "save_checkpoint")


def plain(value: Any, depth: int = 0) -> Any:
    """JSON-like data for metadata: stand-ins become their class path, tensors their values if short."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict) and depth < 3:
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and depth < 3:
        return [plain(v, depth + 1) for v in value]
    if isinstance(value, torch.Tensor) and value.numel() <= 16:
        return value.tolist()
    return f"<{origin(value) or type(value).__name__}>"


def save_checkpoint(model: DetectionModel, dst: str | Path, train_args: dict, extra: dict) -> None:
    """Write ``model`` (float32) the way Ultralytics' ``Model.save`` does, plus ``extra`` keys, atomically.

    The file appears whole or not at all: written beside ``dst`` under a temporary name, then renamed over it.
    """
    dst = Path(dst)
    model.args = {**DEFAULT_CFG_DICT, **train_args}
    ckpt = {
        "date": datetime.now().astimezone().isoformat(),
        "version": ultralytics.__version__,
        "license": "AGPL-3.0 License (https://ultralytics.com/license)",
        "docs": "https://docs.ultralytics.com",
        "ema": None,
        "model": model.float().eval(),
        "modelopt": None,
        "train_args": train_args,
        **extra,
    }
    dst.parent.mkdir(parents=True, exist_ok=True)
    with replacing(dst) as tmp:
        torch.save(ckpt, tmp)
