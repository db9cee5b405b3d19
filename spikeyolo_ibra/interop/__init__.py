"""Checkpoints of other spiking-detector code bases, read without running their code.

- :mod:`.safe_pickle`: a ``torch.save`` archive reader whose unpickler imports nothing and turns every class outside a
  small allow-list into inert data.
- :mod:`.spikeyolo`: SpikeYOLO's checkpoints (BICLab/SpikeYOLO) as ordinary checkpoints of ``cfg/spikeyolo.yaml``
  (or ``cfg/ibra-spikeyolo.yaml``); ``spikeyolo-import`` / ``tools/import_spikeyolo.py`` is its command.
"""

from .safe_pickle import Inert, SafeLoadError
from .spikeyolo import SpikeYOLOImportError, import_spikeyolo

__all__ = ("Inert", "SafeLoadError", "SpikeYOLOImportError", "import_spikeyolo")
