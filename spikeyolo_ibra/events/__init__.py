"""Event cameras: Prophesee ``.dat`` files in, per-bin polarity count frames out, samples Ultralytics can train on.

- :func:`read_dat` / :func:`write_dat`: the Prophesee ``.dat`` format (:mod:`.dat`);
- :func:`to_frames`: events of a window to ``(T, 2, H, W)`` uint8 counts, bin 0 the earliest (:mod:`.frames`);
- :func:`save_sample` / :func:`load_sample`: a sample as a 2T-page TIFF for Ultralytics' loader (:mod:`.sample`);
- :mod:`.gen1`: the Gen1 automotive set to an Ultralytics data set (``spikeyolo-events gen1``, :mod:`.cli`);
- :mod:`.shapes_events`: the built-in simulated event set, written in the Gen1 layout and converted;
- :mod:`.blocks`: ``EventEncoder``, layer 0 of the event models (time bins become the neuron's timesteps);
- :mod:`.dataset`, :mod:`.training`: event data in Ultralytics' trainer, validator and predictor (borders 0, the T
  check), registered by the plugin.

Docs: docs/events.md.
"""

from .dat import EVENT_DTYPE, read_dat, write_dat
from .errors import EventDataError
from .frames import to_frames
from .sample import load_sample, save_sample

__all__ = ("EVENT_DTYPE", "EventDataError", "load_sample", "read_dat", "save_sample", "to_frames", "write_dat")
