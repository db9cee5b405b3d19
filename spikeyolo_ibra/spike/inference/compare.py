"""What a compared network is: another checkpoint, or the same weights with neuron settings changed.

``compare="other.pt"`` names another checkpoint; ``compare="scale=1"`` or ``"bits=8,scale=50"`` the run's own
weights with settings that live in the neurons alone (``bits``, ``scale``, ``coding``, ``levels``, ``beta``) replaced
in every IB-LIF neuron. Such an override is a what-if on trained weights (N = 1 on a network trained with N = 100 is
another network), which is what the range-alignment picture needs: the same membranes, coded with and without N.
The override is applied to a copy of the model already read, so the checkpoint is not read again.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch import nn

from ...neuron import IBLIF, NeuronConfigError
from ..errors import SettingError, SpikeInferError
from .checkpoint import load_spiking_checkpoint

__all__ = ("OVERRIDABLE", "Compared", "compared_model", "parse_compare")

OVERRIDABLE = ("bits", "scale", "coding", "levels", "beta")


def parse_compare(text: str) -> tuple[Path | None, dict]:
    """``compare`` as (checkpoint, {}) or (None, neuron overrides); SettingError (one sentence) otherwise."""
    text = text.strip()
    if "=" not in text or Path(text).is_file():
        return Path(text), {}
    overrides = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        key = key.strip()
        if key not in OVERRIDABLE or not value.strip():
            raise SettingError(
                "compare",
                text,
                f": {item.strip()!r} is not a neuron override: use key=value with key one of "
                f"{', '.join(OVERRIDABLE)}, or pass a .pt checkpoint.",
            )
        overrides[key] = yaml.safe_load(value)
    return None, overrides


@dataclass
class Compared:
    """The compared network before unrolling: its label, the weights it came from, the unfused float model."""

    label: str
    weights: str
    model: nn.Module


def compared_model(text: str, model: nn.Module, weights: str | Path, device: torch.device) -> Compared:
    """The network ``text`` names, beside ``model`` (read from ``weights``); SettingError for anything unusable."""
    path, overrides = parse_compare(text)
    if path is None:
        other = copy.deepcopy(model)
    else:
        try:
            other = load_spiking_checkpoint(path, device)
        except SpikeInferError as e:
            raise SettingError("compare", None, f": {e}") from e
    source = path or weights
    if "scale" in overrides and any(isinstance(m, IBLIF) and m.prescaled for m in other.modules()):
        raise SettingError(
            "compare",
            text,
            f": {source} was saved fused, with N folded into its weights: compare N on the checkpoint training "
            "wrote (best.pt).",
        )
    for m in other.modules():
        if overrides and isinstance(m, IBLIF):
            try:
                m.config = dataclasses.replace(m.config, **overrides)
            except NeuronConfigError as e:
                raise SettingError("compare", text, f": {e}") from e
    label = path.name if path else ", ".join(f"{k}={v}" for k, v in overrides.items())
    return Compared(label, str(source), other)
