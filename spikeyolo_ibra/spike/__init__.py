"""Spike-driven inference: integer codes become binary planes, synapses integrate them, statistics and energy follow.

- :mod:`.calibrate`: BN statistics for random networks, so checks run on networks that fire.
- :mod:`.encoding`: codes -> binary planes and plane weights (bit-plane or unary).
- :mod:`.runtime`: :func:`to_spike_driven` turns a fused model into its spike-driven copy.
- :mod:`.stats`, :mod:`.monitor`: per-layer running statistics of a spike-driven run.
- :mod:`.maps`: where the spikes go, per image: SOPs charged to the input location that sent them.
- :mod:`.levels`: level use, histograms of the integer codes.
- :mod:`.verify`: integer mode against spike mode.
- :mod:`.source`, :mod:`.compare`, :mod:`.video`: what ``--source`` names, ``--compare``, annotated videos.
- :mod:`.infer`, :mod:`.report`, :mod:`.cli`: the ``spike-infer`` command and its report.
- :mod:`.figures`, :mod:`.page`, :mod:`.units`, :mod:`.browser`: the report's charts, its HTML page, numbers with
  units, and the page checked in headless Chromium.
"""

from .calibrate import calibrate_bn
from .encoding import encode, plane_weights, spike_counts
from .errors import SpikeInferError
from .monitor import Monitor
from .runtime import NotSpikingModelError, SpikeDrivenSynapse, to_spike_driven
from .verify import Equivalence, run_pair

__all__ = (
    "Equivalence",
    "Monitor",
    "NotSpikingModelError",
    "SpikeDrivenSynapse",
    "SpikeInferError",
    "calibrate_bn",
    "encode",
    "plane_weights",
    "run_pair",
    "spike_counts",
    "spike_infer",
    "to_spike_driven",
)


def __getattr__(name: str) -> object:
    """``spike_infer`` lazily (it imports Ultralytics' loaders and matplotlib)."""
    if name == "spike_infer":
        from .infer import spike_infer

        return spike_infer
    raise AttributeError(name)
