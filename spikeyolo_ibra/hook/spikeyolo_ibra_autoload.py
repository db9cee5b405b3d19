"""Registers spikeyolo_ibra with Ultralytics in every Python process, at the moment Ultralytics needs it.

Installed beside the package and started by ``spikeyolo_ibra.pth``. It costs nothing until Ultralytics is imported;
then it imports ``spikeyolo_ibra``, which registers the spiking blocks and the names of our YAMLs, at the first of:

- right after ``ultralytics.nn.tasks`` loads (building or loading a model: the Python API, checkpoint loading,
  Ultralytics' multi-GPU subprocesses);
- when the stock ``yolo`` command starts (``ultralytics.cfg.entrypoint``), which reads ``cfg=shapes-cpu.yaml`` before
  it builds any model.

If that import fails for any reason, Ultralytics still works and one warning line on stderr says why.
"""

import functools
import importlib.machinery
import sys

_TASKS, _CLI = "ultralytics.nn.tasks", "ultralytics.cfg"


def _register():
    try:
        import spikeyolo_ibra  # noqa: F401
    except Exception as error:  # noqa: BLE001 (whatever breaks here, other projects' Ultralytics keeps working)
        first = str(error).splitlines()[0] if str(error) else ""
        print(f"WARNING spikeyolo_ibra not registered ({type(error).__name__}: {first})", file=sys.stderr)


def _after_tasks(module):
    _register()


def _after_cli(module):
    """Wrap the command's entry point: it registers first (everything is imported by then, no cycle to trip on)."""
    entrypoint = module.entrypoint

    @functools.wraps(entrypoint)
    def register_then_run(*args, **kwargs):
        _register()
        return entrypoint(*args, **kwargs)

    module.entrypoint = register_then_run


class _RegisterWithUltralytics:
    """A meta-path finder that runs a step right after each of two Ultralytics modules loads, then leaves."""

    def __init__(self):
        self.pending = {_TASKS: _after_tasks, _CLI: _after_cli}

    def find_spec(self, name, path=None, target=None):  # noqa: D102
        step = self.pending.pop(name, None)
        if step is None:
            return None
        if not self.pending:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_step(module):
            exec_module(module)
            step(module)

        spec.loader.exec_module = exec_then_step
        return spec


if _TASKS not in sys.modules and not any(isinstance(f, _RegisterWithUltralytics) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWithUltralytics())
