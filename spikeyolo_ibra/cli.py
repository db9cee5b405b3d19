"""``spikeyolo``: the stock ``yolo`` command with spikeyolo_ibra registered first (for installs without the hook)."""

from __future__ import annotations


def main() -> None:
    """Register the plugin, then hand the command line to Ultralytics."""
    from ultralytics.cfg import entrypoint

    import spikeyolo_ibra  # noqa: F401

    entrypoint()
