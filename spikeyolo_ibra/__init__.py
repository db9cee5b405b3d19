"""spikeyolo_ibra: IBRA-LIF spiking object detection on stock Ultralytics YOLO.

Importing the package registers its blocks with Ultralytics (idempotent); the installed import hook does it for the
stock ``yolo`` command.
"""

from .neuron import IBLIF, NeuronConfig, NeuronConfigError
from .plugin import register

register()

__version__ = "0.1.0"
__all__ = ("IBLIF", "NeuronConfig", "NeuronConfigError", "__version__", "register")
