"""Read a ``torch.save`` checkpoint without importing or running anything it names.

A checkpoint written by ``torch.save`` is a zip archive: ``<name>/data.pkl`` is a pickle of the saved object, and each
tensor's bytes sit in ``<name>/data/<key>``. Unpickling normally imports every class the pickle names and calls
whatever callable it says, which is how a checkpoint of a foreign fork (or a hostile file) runs code on load.

:func:`load` reads the archive with :mod:`zipfile` and unpickles ``data.pkl`` with a pure-Python unpickler whose
``find_class`` resolves only an explicit allow-list:

- containers and values: ``collections.OrderedDict``, ``set``, ``frozenset``, ``bytearray`` (from bytes or text),
  ``complex``, ``slice``, ``_codecs.encode`` (how protocol 2 spells ``bytes``; latin-1 text only), ``torch.Size``,
  ``torch.device`` and the ``torch`` dtypes (no callable that could be made to allocate or loop at will);
- tensor rebuilds: ``torch._utils._rebuild_tensor(_v2)``, ``_rebuild_parameter(_with_state)`` and
  ``torch._tensor._rebuild_from_type_v2``, each replaced by a local function that checks its arguments and builds a
  plain tensor from the archive's bytes (``Tensor.set_`` checks the bounds); hooks and extra state are dropped;
- the storage classes (``torch.HalfStorage``, ...) as markers carrying their dtype.

Every other name becomes a subclass of :class:`Inert`, made on the spot: an object that records its class path, the
arguments it was called with and the state it was given, and does nothing else. Modules of any library (torch's own
included) therefore load as trees of :class:`Inert` objects whose ``state`` holds ``_parameters``, ``_buffers``,
``_modules`` and attributes as plain data. ``BUILD`` (setting an object's state) is honoured only on :class:`Inert`
objects and, as plain instance attributes, on an ``OrderedDict`` (a state dict's ``_metadata``); anything else is a
:class:`SafeLoadError`. Nothing from the file is executed.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import collections
import io
import pickle
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..errors import SpikeYoloError

__all__ = ("Inert", "SafeLoadError", "load", "origin", "walk")


class SafeLoadError(SpikeYoloError, ValueError):
    """The file is not a ``torch.save`` archive this reader can read; the message is a sentence fragment."""


class Inert:
    """An object of a class that was not imported: its class path, call arguments and state, as data.

    Attributes:
        origin: ``"module.Name"`` the pickle named (a class attribute of each generated subclass).
        args: positional arguments the pickle called or instantiated it with.
        state: what the pickle's ``BUILD`` gave it (for a pickled ``nn.Module``, its ``__dict__``), else None.
        entries: key/value pairs the pickle set on it (dict subclasses); items: values it appended (list subclasses).

    """

    origin: ClassVar[str] = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> Inert:  # noqa: D102
        obj = object.__new__(cls)
        obj.args, obj.kwargs, obj.state, obj.entries, obj.items = args, kwargs, None, {}, []
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to do: ``__new__`` recorded the arguments."""

    def __setstate__(self, state: Any) -> None:  # noqa: D105
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:  # noqa: D105
        self.entries[key] = value

    def append(self, value: Any) -> None:
        """Record an appended value (``APPEND``)."""
        self.items.append(value)

    def extend(self, values: Any) -> None:
        """Record appended values (``APPENDS``)."""
        self.items.extend(values)

    def get(self, name: str, default: Any = None) -> Any:
        """Attribute ``name`` from the recorded ``__dict__`` state (or a ``(dict, slots)`` pair), else ``default``."""
        state = self.state
        if isinstance(state, tuple) and len(state) == 2:
            state = {**(state[0] or {}), **(state[1] or {})}
        return state.get(name, default) if isinstance(state, dict) else default

    @property
    def class_name(self) -> str:
        """The last part of :attr:`origin` (``"Conv2d"`` for ``torch.nn.modules.conv.Conv2d``)."""
        return self.origin.rsplit(".", 1)[-1]

    def __repr__(self) -> str:  # noqa: D105
        return f"<inert {self.origin}>"


_INERT_CLASSES: dict[str, type[Inert]] = {}


def _inert_class(module: str, name: str) -> type[Inert]:
    """The :class:`Inert` subclass standing in for ``module.name`` (one per name, made on first use)."""
    path = f"{module}.{name}"
    if path not in _INERT_CLASSES:
        _INERT_CLASSES[path] = type(name, (Inert,), {"origin": path, "__qualname__": f"Inert[{path}]"})
    return _INERT_CLASSES[path]


def origin(obj: Any) -> str | None:
    """The class path an :class:`Inert` object stands in for; None for anything else."""
    return obj.origin if isinstance(obj, Inert) else None


class _StorageType:
    """Marker for a pickled storage class: only its dtype matters."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


class _Storage:
    """The bytes of one archive record, typed."""

    def __init__(self, data: torch.UntypedStorage, dtype: torch.dtype) -> None:
        self.data, self.dtype = data, dtype


_STORAGE_DTYPES = {
    "HalfStorage": torch.float16,
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
    "UntypedStorage": torch.uint8,
}


def _ints(value: Any) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(type(v) is int for v in value):
        raise pickle.UnpicklingError(f"a tensor's size or stride is {type(value).__name__}, not a tuple of ints")
    return tuple(value)


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_: Any) -> torch.Tensor:
    """A tensor viewing ``storage`` (dtype from the storage); bounds are checked by ``Tensor.set_``."""
    if not isinstance(storage, _Storage) or type(offset) is not int:
        raise pickle.UnpicklingError("a tensor rebuild got arguments that are not an archive storage and an offset")
    return torch.empty(0, dtype=storage.dtype).set_(storage.data, offset, _ints(size), _ints(stride))


def _rebuild_parameter(data: Any, *_: Any) -> torch.Tensor:
    """A parameter as the plain tensor it holds (its ``requires_grad``, hooks and state are not needed)."""
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("a parameter rebuild got no tensor")
    return data


def _rebuild_from_type(func: Any, new_type: Any, args: Any, state: Any = None) -> Any:
    """A tensor subclass as a plain tensor, if ``func`` is one of the tensor rebuilds above."""
    if func not in (_rebuild_tensor, _rebuild_parameter) or not isinstance(args, tuple):
        raise pickle.UnpicklingError("a typed tensor rebuild names a function that is not a tensor rebuild")
    return func(*args)


def _bytearray(data: Any = b"", encoding: Any = "latin-1") -> bytearray:
    """``bytearray`` from bytes or text only: an integer argument would allocate that many bytes."""
    if isinstance(data, (bytes, bytearray)):
        return bytearray(data)
    if isinstance(data, str) and isinstance(encoding, str):
        return bytearray(data, encoding)
    raise pickle.UnpicklingError("bytearray is only allowed from bytes or text")


def _encode(text: Any, encoding: Any = "utf-8") -> bytes:
    """``_codecs.encode`` as protocol 2 uses it for ``bytes``: latin-1 text to bytes, nothing else."""
    if not isinstance(text, str) or codecs.lookup(str(encoding)).name != "iso8859-1":
        raise pickle.UnpicklingError("_codecs.encode is only allowed for latin-1 text (protocol 2 bytes)")
    return text.encode("latin-1")


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytearray"): _bytearray,
    ("builtins", "complex"): complex,
    ("builtins", "slice"): slice,
    ("_codecs", "encode"): _encode,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
    ("torch.tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
}


def _resolve(module: str, name: str) -> Any:
    """The allowed object for ``module.name``, a storage marker, or a fresh :class:`Inert` subclass. Imports nothing."""
    if (module, name) in _compat_pickle.NAME_MAPPING:  # Python 2 spellings protocol 2 writes (__builtin__.set, ...)
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    if (module, name) in _ALLOWED:
        return _ALLOWED[(module, name)]
    if module == "torch" and name in _STORAGE_DTYPES:
        return _StorageType(_STORAGE_DTYPES[name])
    if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
        return getattr(torch, name)
    return _inert_class(module, name)


class _Unpickler(pickle._Unpickler):  # the pure-Python unpickler: its opcode table can be changed, the C one's not
    """Unpickler with an allow-list ``find_class``, archive-backed ``persistent_load`` and ``BUILD`` on Inert only."""

    def __init__(self, file: io.BytesIO, storage: Callable[[tuple], _Storage]) -> None:
        super().__init__(file, encoding="utf-8")
        self._storage = storage

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102
        if not isinstance(module, str) or not isinstance(name, str):
            raise pickle.UnpicklingError("a global is named by something other than text")
        return _resolve(module, name)

    def persistent_load(self, pid: Any) -> _Storage:  # noqa: D102
        return self._storage(pid)

    def _build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, Inert):
            inst.__setstate__(state)
        elif type(inst) is collections.OrderedDict and isinstance(state, dict) and all(type(k) is str for k in state):
            inst.__dict__.update(state)  # a state dict's ``_metadata``: instance attributes, as plain data
        else:
            raise pickle.UnpicklingError(f"the pickle sets the state of a {type(inst).__name__}, which is refused")

    dispatch = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.BUILD[0]] = _build


def _archive_root(names: list[str]) -> str:
    """The one top folder of a ``torch.save`` archive (``<root>/data.pkl``)."""
    roots = [n[: -len("/data.pkl")] for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(roots) != 1:
        raise SafeLoadError("is a zip archive but not one written by torch.save (no single <name>/data.pkl)")
    return roots[0]


def load(path: str | Path) -> Any:
    """The object saved in the ``torch.save`` archive at ``path``, read without running anything from it.

    Tensors come back as plain CPU tensors (parameters included); objects of every class outside the allow-list as
    :class:`Inert` stand-ins. Raises :class:`SafeLoadError` (message: a sentence fragment about the file) for a file
    that is not such an archive, is truncated or damaged, is a TorchScript archive, or pickles something refused.
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] != b"PK":
        if head[:1] == b"\x80":
            raise SafeLoadError("is a pickle in torch's legacy (pre-1.6) format, not a zip archive")
        raise SafeLoadError("is not a PyTorch checkpoint (not a zip archive written by torch.save)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            root = _archive_root(names)
            if f"{root}/constants.pkl" in names or any(n.startswith(f"{root}/code/") for n in names):
                raise SafeLoadError("is a TorchScript archive, not a checkpoint of Python objects")
            swap = f"{root}/byteorder" in names and archive.read(f"{root}/byteorder").decode() != sys.byteorder
            storages: dict[str, _Storage] = {}

            def storage(pid: Any) -> _Storage:
                if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
                    raise pickle.UnpicklingError("a persistent id is not a torch storage reference")
                kind, key, _, numel = pid[1:]
                if not isinstance(kind, _StorageType) or not isinstance(key, str) or type(numel) is not int:
                    raise pickle.UnpicklingError("a storage reference has arguments of the wrong types")
                if key not in storages:
                    raw = archive.read(f"{root}/data/{key}")
                    if len(raw) != numel * kind.dtype.itemsize:
                        raise pickle.UnpicklingError(f"storage {key} holds {len(raw)} bytes, not {numel} elements")
                    data = torch.from_numpy(np.frombuffer(raw, dtype=np.uint8).copy()).untyped_storage()
                    if swap and kind.dtype.itemsize > 1:
                        data.byteswap(kind.dtype)
                    storages[key] = _Storage(data, kind.dtype)
                return storages[key]

            return _Unpickler(io.BytesIO(archive.read(f"{root}/data.pkl")), storage).load()
    except SafeLoadError:
        raise
    except (zipfile.BadZipFile, EOFError, KeyError, OSError) as e:
        raise SafeLoadError(f"is truncated or corrupt ({type(e).__name__}: {e})") from e
    except (pickle.UnpicklingError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as e:
        raise SafeLoadError(f"holds a pickle this reader refuses ({type(e).__name__}: {e})") from e


def walk(obj: Any, prefix: str = "") -> Iterator[tuple[str, Inert]]:
    """``(dotted name, module)`` for a pickled ``nn.Module`` stand-in and each submodule, as ``named_modules``."""
    if not isinstance(obj, Inert):
        return
    yield prefix, obj
    children = obj.get("_modules")
    for name, child in children.items() if isinstance(children, dict) else ():
        if child is not None:
            yield from walk(child, f"{prefix}.{name}" if prefix else name)
