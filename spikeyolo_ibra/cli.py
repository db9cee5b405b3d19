"""``spikeyolo``: the stock ``yolo`` command with spikeyolo_ibra registered first, and plain errors.

``spikeyolo train|val|predict|export ...`` takes exactly what ``yolo`` takes. It is for installs without the import
hook, and it is where this package's own manners apply (the stock ``yolo`` command keeps Ultralytics' behaviour): a
bad input that we can name (a damaged checkpoint, an impossible neuron setting, a YAML row that cannot be built, a
missing file) ends with one sentence on stderr and exit status 2 instead of a traceback.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import EXIT_BAD_INPUT, SpikeYoloError

__all__ = ("CheckpointError", "MissingInput", "main")


class CheckpointError(SpikeYoloError, ValueError):
    """A checkpoint file that cannot be read (truncated, corrupt, not a checkpoint)."""


class MissingInput(SpikeYoloError, FileNotFoundError):
    """A ``model=`` or ``data=`` path that does not exist."""


def _named_checkpoint_errors(load: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap Ultralytics' ``torch_safe_load``: a damaged file names itself instead of a bare zip or pickle error."""

    def torch_safe_load(weight: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return load(weight, *args, **kwargs)
        except (OSError, RuntimeError, EOFError, TypeError, pickle.UnpicklingError) as e:  # TypeError: Ultralytics' own
            if not Path(str(weight)).is_file():  # missing (or a name Ultralytics tried to download): not damaged
                raise
            root = e.__cause__ or e  # Ultralytics' own TypeError wraps the unpickling error
            why = f"{type(root).__name__}: {str(root).splitlines()[0] if str(root) else ''}".rstrip(": ")
            raise CheckpointError(
                f"{weight} is not a loadable checkpoint: the file is truncated or corrupt ({why}). "
                "Copy it again or re-save it from training."
            ) from e

    return torch_safe_load


def _check_arguments(args: list[str]) -> None:
    """Name what we can before Ultralytics starts: a missing ``model=``/``data=`` path, an unusable ``device=``."""
    from .device import resolve_device
    from .plugin import packaged_yaml, scale_base

    def found(path: str | Path) -> bool:
        return Path(path).exists() or bool(packaged_yaml(path))

    for arg in args:
        key, _, value = arg.partition("=")
        base = scale_base(value) if key == "model" else None  # cfg/ibra-spikeyolo-t.yaml: cfg/ibra-spikeyolo.yaml at t
        missing = "/" in value and not found(value) and not (base and found(base))  # a bare name: Ultralytics'
        if key in ("model", "data") and missing:
            raise MissingInput(f"{key}={value} does not exist: check the path.")
        if key == "device" and value:  # one device or a DDP list such as 0,1
            for name in value.split(","):
                resolve_device(name)


def main(argv: list[str] | None = None) -> int:
    """Register the plugin, then run Ultralytics' command line; our bad-input errors become one sentence, exit 2."""
    from ultralytics.cfg import entrypoint
    from ultralytics.nn import tasks

    import spikeyolo_ibra  # noqa: F401 (registers the plugin)

    args = sys.argv[1:] if argv is None else argv
    stock = tasks.torch_safe_load
    tasks.torch_safe_load = _named_checkpoint_errors(stock)
    try:
        _check_arguments(args)
        entrypoint(" ".join(["yolo", *args]) if argv is not None else "")
    except (SpikeYoloError, FileNotFoundError) as e:  # ours, and Ultralytics' own for a file named on the command line
        print(f"spikeyolo: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        tasks.torch_safe_load = stock  # for callers that run main() in a process of their own making
    return 0


if __name__ == "__main__":
    sys.exit(main())
