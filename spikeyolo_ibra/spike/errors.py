"""The one error type the spike-inference command turns into a plain sentence on stderr."""

from __future__ import annotations

from ..errors import SpikeYoloError

__all__ = ("SpikeInferError",)


class SpikeInferError(SpikeYoloError):
    """Bad input to spike inference; the message is one sentence naming the problem and the fix."""
