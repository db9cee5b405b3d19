"""One base for every error this package raises on bad input, so each command catches one type.

A :class:`SpikeYoloError` carries one sentence that names the problem and the fix. The commands (``spikeyolo``,
``spike-infer``, ``spikeyolo-import``, ``spikeyolo-events``) print that sentence on stderr and exit 2; library users
catch :class:`SpikeYoloError` to handle all of them. Subclasses keep a second, familiar base (``ValueError``,
``ImportError``) where callers already catch that.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import TypeVar

__all__ = ("EXIT_BAD_INPUT", "SpikeYoloError", "one_sentence_errors")

EXIT_BAD_INPUT = 2

F = TypeVar("F", bound=Callable[..., int | None])


class SpikeYoloError(Exception):
    """Bad input to spikeyolo_ibra; the message is one sentence naming the problem and the fix."""


def one_sentence_errors(prog: str) -> Callable[[F], F]:
    """Decorate the ``main`` of command ``prog``: a :class:`SpikeYoloError` becomes ``prog: sentence``, exit 2."""

    def decorate(main: F) -> F:
        @wraps(main)
        def run(*args, **kwargs):
            try:
                return main(*args, **kwargs)
            except SpikeYoloError as error:
                print(f"{prog}: {error}", file=sys.stderr)
                raise SystemExit(EXIT_BAD_INPUT) from None

        return run  # type: ignore[return-value]

    return decorate
