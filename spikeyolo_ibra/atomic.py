"""Folders that appear whole or not at all: build beside the target, then swap it in with renames."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

__all__ = ("sibling_dir", "swap_in")


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
