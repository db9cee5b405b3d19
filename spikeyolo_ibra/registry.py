"""One declaration per class: its YAML role, its place in ``__all__``, and that checkpoints may hold it.

A class decorated with :func:`register` is

- named in model YAMLs by its class name when its role is ``channels`` (the YAML gives output channels first and the
  parser passes ``(c1, c2, *args)`` with width scaling, like Ultralytics' ``Conv``) or ``detect`` (the parser appends
  ``reg_max``, ``end2end`` and the input channels of each level, like Ultralytics' ``Detect``);
- allowed when Ultralytics loads checkpoints with ``ULTRALYTICS_SAFE_LOAD=1`` (every role, ``part`` included: the
  modules inside blocks are pickled too).

Example:
    >>> @register("channels")
    ... class MyBlock(nn.Module):
    ...     def __init__(self, c1: int, c2: int, k: int = 3) -> None: ...

"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar, get_args

__all__ = ("ROLES", "Entry", "exported", "register", "safe_classes", "yaml_blocks")

Role = Literal["channels", "detect", "part"]
ROLES: tuple[str, ...] = get_args(Role)
T = TypeVar("T", bound=type)


@dataclass(frozen=True)
class Entry:
    """A registered class and how model YAMLs may use it."""

    cls: type
    role: Role


_ENTRIES: dict[str, Entry] = {}


def _where(cls: type) -> tuple[str, str]:
    return cls.__module__, cls.__qualname__


def register(role: Role = "part") -> Callable[[T], T]:
    """Class decorator: record ``cls`` under its class name with a YAML ``role`` (``part``: not named in YAMLs)."""
    if role not in ROLES:
        raise ValueError(f"role={role!r} is not one of {', '.join(ROLES)}.")

    def decorate(cls: T) -> T:
        known = _ENTRIES.get(cls.__name__)
        same_place = known is not None and _where(known.cls) == _where(cls)  # a reload of our module: replace it
        if known is not None and known.cls is not cls and not same_place:
            raise ValueError(f"{cls.__name__} is registered twice ({known.cls.__module__} and {cls.__module__}).")
        _ENTRIES[cls.__name__] = Entry(cls, role)
        return cls

    return decorate


def yaml_blocks() -> dict[str, Entry]:
    """The classes a model YAML may name (roles ``channels`` and ``detect``), by name."""
    return {name: e for name, e in _ENTRIES.items() if e.role != "part"}


def safe_classes() -> list[type]:
    """Every registered class: what ``torch.serialization.add_safe_globals`` needs for our checkpoints."""
    return [e.cls for e in _ENTRIES.values()]


def exported(module: str) -> tuple[str, ...]:
    """The sorted names registered from ``module`` (a module's ``__all__``)."""
    return tuple(sorted(name for name, e in _ENTRIES.items() if e.cls.__module__ == module))
