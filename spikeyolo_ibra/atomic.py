"""Files and folders that appear whole or not at all: write beside the target, then rename it into place."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

__all__ = ("replacing", "sibling_dir", "swap_in")


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """A fresh temporary path beside ``path`` to write; renamed over ``path`` when the block succeeds, else removed.

    Readers see the old file or the whole new one, never a partial one; each process writes its own temporary name,
    and the file gets the mode the umask gives (unlike ``tempfile.mkstemp``'s 0600).
    """
    path = Path(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def sibling_dir(root: Path, tag: str) -> Path:
    """Create a new hidden folder beside ``root`` (mode from the umask, unlike ``tempfile.mkdtemp``'s 0700)."""
    path = root.parent / f".{root.name}.{tag}-{os.getpid()}-{secrets.token_hex(4)}"
    path.mkdir(parents=True)
    return path


def swap_in(tmp: Path, root: Path) -> None:
    """Put the finished folder ``tmp`` at ``root``; an existing ``root`` is moved aside and removed once ``tmp`` is in.

    If the final rename fails, the old ``root`` is moved back, so ``root`` is never lost.
    """
    if not root.exists():
        os.replace(tmp, root)
        return
    aside = sibling_dir(root, "old")
    os.replace(root, aside / root.name)
    try:
        os.replace(tmp, root)
    except OSError:
        os.replace(aside / root.name, root)
        aside.rmdir()
        raise
    shutil.rmtree(aside)
