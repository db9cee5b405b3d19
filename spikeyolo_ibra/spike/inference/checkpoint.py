"""A trained spiking checkpoint, read once: the float model every network of a run is derived from."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from torch import nn
from ultralytics.nn.tasks import load_checkpoint

from ...neuron import IBLIF
from ...plugin import packaged_yaml
from ..errors import SpikeInferError

__all__ = ("load_spiking_checkpoint", "trained_sensor")


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


def trained_sensor(model: nn.Module) -> tuple[tuple[int, int], str] | None:
    """((height, width), data YAML name) of the event sensor ``model`` was trained on, if its data YAML says so.

    Read from the ``events:`` mapping of the data YAML the checkpoint's training arguments name (a file, or a
    YAML of this package such as ``shapes-events.yaml``); None where the checkpoint names none or it cannot be read.
    """
    data = (getattr(model, "args", None) or {}).get("data")
    if not isinstance(data, str) or not data:
        return None
    path = Path(data) if Path(data).is_file() else packaged_yaml(data)
    try:
        events = yaml.safe_load(Path(path).read_text()).get("events") if path else None
        size = (int(events["height"]), int(events["width"]))
    except (OSError, yaml.YAMLError, AttributeError, KeyError, TypeError, ValueError):
        return None
    return size, Path(path).name
