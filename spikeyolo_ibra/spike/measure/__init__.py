"""What a spike-driven run did, as numbers: per-layer statistics, where the spikes went, level use, energy rows.

- :mod:`.stats`: running sums per spike-fed layer (codes, spikes, SOPs, a code histogram).
- :mod:`.maps`: per-image SOP maps, charged to the input location that sent each spike.
- :mod:`.levels`: summaries of code histograms (levels used, non-zero share, mean code).
- :mod:`.monitor`: :class:`Monitor` attaches all of it to a spike-driven model and reads it back as rows.
- :mod:`.pricing`: the rows priced by the energy model, compute-only and with memory; NeuroBench's metrics.

Nothing here writes a file or draws: that is :mod:`spikeyolo_ibra.spike.report`.
"""

from .levels import network, summary
from .maps import SopMaps, fanout, layer_map, to_image
from .monitor import Monitor
from .pricing import neurobench, price, traffic
from .stats import EncoderStats, LayerStats, firing_summary

__all__ = (
    "EncoderStats",
    "LayerStats",
    "Monitor",
    "SopMaps",
    "fanout",
    "firing_summary",
    "layer_map",
    "network",
    "neurobench",
    "price",
    "summary",
    "to_image",
    "traffic",
)
