"""The spike-driven network itself: no files, no pictures, no command line.

- :mod:`.encoding`: integer codes -> binary planes and their weights (bit-plane or unary).
- :mod:`.graph`: :func:`to_spike_driven` turns a model into its spike-driven copy (:class:`SpikeDrivenSynapse`).
- :mod:`.timesteps`: the (T * B) -> (T, B) unfold of time folded into the batch.
- :mod:`.verify`: integer mode against spike mode on the same inputs.
- :mod:`.calibrate`: BN statistics for random networks, so checks run on networks that fire.
"""

from .calibrate import calibrate_bn
from .encoding import encode, plane, plane_weights, spike_counts
from .graph import (
    ACCUMULATE,
    NotSpikingModelError,
    SpikeDrivenSynapse,
    SynapseObserver,
    require_binary,
    synapse_conv,
    to_spike_driven,
)
from .timesteps import batch_size, unfold_time
from .verify import DET_ATOL, Equivalence, detect, run_pair, same_detections

__all__ = (
    "ACCUMULATE",
    "DET_ATOL",
    "Equivalence",
    "NotSpikingModelError",
    "SpikeDrivenSynapse",
    "SynapseObserver",
    "batch_size",
    "calibrate_bn",
    "detect",
    "encode",
    "plane",
    "plane_weights",
    "require_binary",
    "run_pair",
    "same_detections",
    "spike_counts",
    "synapse_conv",
    "to_spike_driven",
    "unfold_time",
)
