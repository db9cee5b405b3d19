"""A trained spiking checkpoint, read once: the float model every network of a run is derived from."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from ultralytics.nn.tasks import load_checkpoint

from ...neuron import IBLIF
from ..errors import SpikeInferError

__all__ = ("load_spiking_checkpoint",)


def load_spiking_checkpoint(weights: str | Path, device: torch.device) -> nn.Module:
    """A local Ultralytics checkpoint as an unfused float32 eval model on ``device``; SpikeInferError otherwise.

    Unfused, as training wrote it: whoever needs the fused graph fuses a copy (fusing folds N into the synapses, after
    which a neuron override of N would no longer mean N).
    """
    path = Path(weights)
    if not path.is_file():
        raise SpikeInferError(f"weights file {path} does not exist: pass the path of a trained .pt checkpoint.")
    if path.suffix != ".pt":
        raise SpikeInferError(f"weights file {path} is not a .pt checkpoint: pass an Ultralytics .pt file.")
    try:
        model, _ = load_checkpoint(path, device=device, fuse=False)
    except Exception as e:  # Ultralytics reports damaged files as TypeError, RuntimeError or pickling errors
        raise SpikeInferError(
            f"weights file {path} cannot be loaded as an Ultralytics checkpoint ({type(e).__name__}): "
            "re-save or re-export it from a trained model."
        ) from e
    if not any(isinstance(m, IBLIF) for m in model.modules()):
        raise SpikeInferError(
            f"{path} holds a non-spiking model (no IB-LIF neurons): "
            "pass a checkpoint trained from cfg/ibra-spikeyolo.yaml or cfg/spikeyolo.yaml."
        )
    return model.eval()
