"""Spike-driven inference: integer codes become binary planes, synapses integrate them, statistics and energy follow.

Four layers, each using only those before it:

- :mod:`.runtime`: the spike-driven network (binary planes, accumulation, the equivalence check); no I/O.
- :mod:`.measure`: what a run did, as numbers (per-layer statistics, spike maps, level use, energy rows).
- :mod:`.inference`: the checkpoint read once, the networks derived from it, one loop over a source.
- :mod:`.report`: files a person reads (pictures, videos, JSON, the report page).

:func:`spike_infer` (:mod:`.infer`) joins the last two; :mod:`.cli` is the ``spike-infer`` command.
"""

from .errors import SettingError, SpikeInferError
from .measure import Monitor
from .runtime import (
    Equivalence,
    NotSpikingModelError,
    SpikeDrivenSynapse,
    calibrate_bn,
    detect,
    encode,
    plane_weights,
    run_pair,
    same_detections,
    spike_counts,
    to_spike_driven,
)

__all__ = (
    "Equivalence",
    "Inference",
    "Monitor",
    "NotSpikingModelError",
    "SettingError",
    "Settings",
    "SpikeDrivenSynapse",
    "SpikeInferError",
    "calibrate_bn",
    "detect",
    "encode",
    "plane_weights",
    "run_pair",
    "same_detections",
    "spike_counts",
    "spike_infer",
    "to_spike_driven",
)


def __getattr__(name: str) -> object:
    """``spike_infer``, ``Inference`` and ``Settings`` lazily (Ultralytics' loaders, and matplotlib for the report)."""
    if name == "spike_infer":
        from .infer import spike_infer

        return spike_infer
    if name in ("Inference", "Settings"):
        from . import inference

        return getattr(inference, name)
    raise AttributeError(name)
