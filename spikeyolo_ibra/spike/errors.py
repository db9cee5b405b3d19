"""Bad input to spike inference, in one sentence; a bad setting names itself as its caller spelled it.

The library speaks Python (``imgsz=100``), the ``spike-infer`` command its flags (``--imgsz 100``):
:class:`SettingError` keeps the setting's name and values apart from the sentence, so each side can say it in its
own words (``str(error)`` and :meth:`SettingError.in_flags`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import SpikeYoloError

__all__ = ("SettingError", "SpikeInferError")


class SpikeInferError(SpikeYoloError):
    """Bad input to spike inference; the message is one sentence naming the problem and the fix."""


class SettingError(SpikeInferError, ValueError):
    """A setting spike inference cannot use: the setting (with its value), the problem, and a value that works.

    ``SettingError("imgsz", 100, " is not a positive multiple of 32", example=128)`` reads
    ``imgsz=100 is not a positive multiple of 32: use e.g. imgsz=128.``, and :meth:`in_flags`
    ``--imgsz 100 is not ... use e.g. --imgsz 128.``. A value of None names the setting alone.
    """

    def __init__(self, name: str, value: Any, problem: str, example: Any = None) -> None:
        """The sentence about ``name``; ``problem`` follows the setting as written (``" is ..."``, ``": ..."``)."""
        self.name, self.value, self.problem, self.example = name, value, problem, example
        super().__init__(self._say(self._python))

    def _python(self, value: Any) -> str:
        if value is None:
            return self.name
        return f"{self.name}={value!r}" if isinstance(value, str) else f"{self.name}={value}"

    def _say(self, spell: Callable[[Any], str]) -> str:
        fix = "" if self.example is None else f": use e.g. {spell(self.example)}."
        return f"{spell(self.value)}{self.problem}{fix}"

    def in_flags(self) -> SpikeInferError:
        """The same error in the words of the command line (``--name value``)."""
        flag = "--" + self.name.replace("_", "-")  # window_ms -> --window-ms, as argparse spells it
        return SpikeInferError(self._say(lambda v: flag if v is None else f"{flag} {v}"))
