"""Registers spikeyolo_ibra with Ultralytics in every Python process, at the moment Ultralytics builds models.

Installed beside the package and started by ``spikeyolo_ibra.pth``. It costs nothing until ``ultralytics.nn.tasks``
is imported; then it imports ``spikeyolo_ibra``, which registers the spiking blocks. So the stock ``yolo`` command,
checkpoint loading and Ultralytics' multi-GPU subprocesses all know our models without an explicit import. If that
import fails for any reason, ``import ultralytics`` still succeeds and one warning line on stderr says why.
"""

import importlib.machinery
import sys

_TARGET = "ultralytics.nn.tasks"


class _RegisterAfterTasks:
    """A one-shot meta-path finder that runs ``import spikeyolo_ibra`` right after ``ultralytics.nn.tasks`` loads."""

    def find_spec(self, name, path=None, target=None):  # noqa: D102
        if name != _TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            try:
                import spikeyolo_ibra  # noqa: F401
            except Exception as error:  # noqa: BLE001 (whatever breaks here, other projects' Ultralytics keeps working)
                first = str(error).splitlines()[0] if str(error) else ""
                print(f"WARNING spikeyolo_ibra not registered ({type(error).__name__}: {first})", file=sys.stderr)

        spec.loader.exec_module = exec_then_register
        return spec


if _TARGET not in sys.modules and not any(isinstance(f, _RegisterAfterTasks) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterTasks())
