"""The one error type of the event tools: a file or folder that cannot be read as events, boxes or a sample."""

from __future__ import annotations

from ..errors import SpikeYoloError

__all__ = ("EventDataError",)


class EventDataError(SpikeYoloError, ValueError):
    """An event file, box file, sample or data set that cannot be used; the message names the file and the fix."""
