"""Numbers as a reader wants them: three significant figures and a unit with an SI prefix."""

from __future__ import annotations

import math

__all__ = ("count", "energy", "percent", "si")

_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"))


def si(value: float, unit: str, digits: int = 3) -> str:
    """``value`` in ``unit`` with an SI prefix and ``digits`` significant figures: 0.00072 J -> '720 µJ'."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}".strip()
    scale, prefix = next(((s, p) for s, p in _PREFIXES if abs(value) >= s * 0.9995), _PREFIXES[-1])
    return f"{value / scale:.{digits}g} {prefix}{unit}".strip()


def energy(mj: float) -> str:
    """An energy given in millijoules as text: 0.7205 -> '720 µJ'."""
    return si(mj * 1e-3, "J")


def count(n: float, unit: str = "") -> str:
    """An operation or spike count as text: 1.86e8 SOPs -> '186 M SOPs'."""
    text = f"{n:.3g}" if abs(n) < 1000 else si(n, "")
    return f"{text} {unit}".strip()


def percent(share: float, digits: int = 3) -> str:
    """A share in [0, 1] as a percentage with ``digits`` significant figures: 0.2934 -> '29.3 %'."""
    return f"{share * 100:.{digits}g} %"
