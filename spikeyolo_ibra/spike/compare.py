"""``--compare``: a second network run spike-driven on the same inputs, for side-by-side level use and energy.

The second network is another checkpoint (``--compare other.pt``) or the same weights with neuron settings changed
(``--compare scale=1``, ``--compare bits=8,scale=50``): the settings that live in the neurons alone (``bits``,
``scale``, ``coding``, ``levels``, ``beta``) are replaced in every IB-LIF neuron. Such an override is a what-if on
trained weights (N = 1 on a network trained with N = 100 is another network), which is what the range-alignment
picture needs: the same membranes, coded with and without N.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import yaml
from torch import nn

from ..energy import CostTable, energy_totals, layer_energy_mj
from ..neuron import IBLIF, NeuronConfigError
from .errors import SpikeInferError
from .monitor import Monitor
from .runtime import to_spike_driven
from .source import Source

__all__ = ("OVERRIDABLE", "Comparison", "parse_compare")

OVERRIDABLE = ("bits", "scale", "coding", "levels", "beta")


def parse_compare(text: str) -> tuple[Path | None, dict]:
    """``--compare`` as (checkpoint, {}) or (None, neuron overrides); SpikeInferError (one sentence) otherwise."""
    text = text.strip()
    if "=" not in text or Path(text).is_file():
        return Path(text), {}
    overrides = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        key = key.strip()
        if key not in OVERRIDABLE or not value.strip():
            raise SpikeInferError(
                f"--compare {text}: {item.strip()!r} is not a neuron override: use key=value with key one of "
                f"{', '.join(OVERRIDABLE)}, or pass a .pt checkpoint."
            )
        overrides[key] = yaml.safe_load(value)
    return None, overrides


class Comparison:
    """The compared network, unrolled like the main one, and what a run of it over a source gives."""

    def __init__(
        self,
        text: str,
        weights: str | Path,
        device: torch.device,
        dtype: torch.dtype,
        accumulate: str,
        accumulator: torch.dtype | None,
    ) -> None:
        """Load ``--compare`` (``text``) for a run of ``weights``; SpikeInferError for anything unusable."""
        from .infer import load_spiking_model  # infer imports this module

        path, overrides = parse_compare(text)
        try:  # unfused: fuse() folds N into the synapses, after which an override of N would not mean N
            model = load_spiking_model(path or weights, device, fuse=False)
        except SpikeInferError as e:
            raise SpikeInferError(f"--compare: {e}") from e
        if "scale" in overrides and any(isinstance(m, IBLIF) and m.prescaled for m in model.modules()):
            raise SpikeInferError(
                f"--compare {text}: {path or weights} was saved fused, with N folded into its weights: "
                "compare N on the checkpoint training wrote (best.pt)."
            )
        if overrides:
            for m in model.modules():
                if isinstance(m, IBLIF):
                    try:
                        m.config = dataclasses.replace(m.config, **overrides)
                    except NeuronConfigError as e:
                        raise SpikeInferError(f"--compare {text}: {e}") from e
        self.label = path.name if path else ", ".join(f"{k}={v}" for k, v in overrides.items())
        self.weights = str(path or weights)
        self.model: nn.Module = to_spike_driven(model.to(dtype), accumulate, accumulator)

    @torch.no_grad()
    def run(self, source: Source, dtype: torch.dtype, device: torch.device, costs: CostTable) -> tuple[dict, dict]:
        """Run over ``source``: the report's ``compare`` entry and the per-layer code histograms."""
        per_image = []
        with Monitor(self.model, maps=True) as monitor:
            for frame in source.iterate(dtype, device, f"compare run ({self.label})"):
                self.model(frame.x)
                record, _ = monitor.image_figures(costs, frame.image.shape[:2])
                per_image.append({"image": frame.path, "frame": frame.index, **record})
            rows, levels = monitor.rows(), monitor.levels()
        for row in rows:
            row["energy_mJ"] = layer_energy_mj(row, costs)
        neuron = next(m.neuron.config for m in self.model.modules() if hasattr(m, "neuron")).to_mapping()
        entry = {
            "label": self.label,
            "weights": self.weights,
            "neuron": neuron,
            "images": len(per_image),
            "energy": energy_totals(rows, costs),
            "per_image": per_image,
            "layers": rows,
        }
        return entry, levels
