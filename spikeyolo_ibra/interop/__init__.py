"""Checkpoints of other spiking-detector code bases, read without running their code.

- :mod:`.safe_pickle`: a ``torch.save`` archive reader whose unpickler imports nothing and turns every class outside a
  small allow-list into inert data.
- SpikeYOLO's checkpoints (BICLab/SpikeYOLO) as ordinary checkpoints of ``spikeyolo.yaml`` (or
  ``ibra-spikeyolo.yaml``), in four steps: :mod:`.read` their file, :mod:`.map` their tensors onto our model,
  :mod:`.write` our checkpoint, :mod:`.convert` all three; ``spikeyolo-import`` (:mod:`.cli`) is its command.
"""

from .convert import ImportReport, import_spikeyolo
from .read import SpikeYOLOImportError
from .safe_pickle import Inert, SafeLoadError

__all__ = ("ImportReport", "Inert", "SafeLoadError", "SpikeYOLOImportError", "import_spikeyolo")
