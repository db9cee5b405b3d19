"""spikeyolo_ibra: IBRA-LIF spiking object detection on stock Ultralytics YOLO.

Importing the package registers its blocks with Ultralytics (idempotent); the installed import hook does it for the
stock ``yolo`` command.
"""

__version__ = "0.2.0"  # the one place the version is written (pyproject.toml reads it)

from .neuron import IBLIF, NeuronConfig, NeuronConfigError, set_timesteps  # noqa: E402
from .plugin import register  # noqa: E402

register()

__all__ = ("IBLIF", "NeuronConfig", "NeuronConfigError", "__version__", "register", "set_timesteps")
