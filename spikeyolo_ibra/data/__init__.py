"""Built-in data sets. Names are imported lazily, so ``python -m spikeyolo_ibra.data.shapes`` runs cleanly."""

from __future__ import annotations

from typing import Any

__all__ = ("SHAPES_NAMES", "build_shapes")


def __getattr__(name: str) -> Any:
    """Resolve ``SHAPES_NAMES`` and ``build_shapes`` from :mod:`spikeyolo_ibra.data.shapes` on first access."""
    if name in __all__:
        from . import shapes

        return getattr(shapes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
