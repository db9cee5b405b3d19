"""A spike-driven run: the checkpoint read once, the networks derived from it, one loop over a source.

- :mod:`.checkpoint`: the trained model, read once.
- :mod:`.compare`: what ``compare`` names (another checkpoint, or neuron overrides on the same weights).
- :mod:`.sources`: images, videos, streams as :class:`Frame` s; new kinds join :data:`SOURCE_KINDS`.
- :mod:`.events`: event-camera samples and ``.dat`` recordings, a kind of source.
- :mod:`.run`: :class:`Settings`, :class:`Inference` and the :class:`FrameResult` s it yields.
"""

from .checkpoint import load_spiking_checkpoint
from .compare import Compared, compared_model, parse_compare
from .events import EventRecording, EventSamples, colour, event_input, open_events
from .run import DTYPES, FrameResult, Inference, RunSummary, Settings
from .sources import SOURCE_KINDS, STRIDE, Clip, Frame, ImagesAndVideos, Source, Stream, letterboxed, open_source

__all__ = (
    "DTYPES",
    "SOURCE_KINDS",
    "STRIDE",
    "Clip",
    "Compared",
    "EventRecording",
    "EventSamples",
    "Frame",
    "FrameResult",
    "ImagesAndVideos",
    "Inference",
    "RunSummary",
    "Settings",
    "Source",
    "Stream",
    "colour",
    "compared_model",
    "event_input",
    "letterboxed",
    "load_spiking_checkpoint",
    "open_events",
    "open_source",
    "parse_compare",
)
