"""Build a spiking model from its YAML: our own parser for YAMLs with a ``neuron:`` mapping.

Ultralytics' ``parse_model`` decides how channels flow from sets of its own classes written inside the function, so a
plugin cannot teach it new blocks without editing its source. Spiking YAMLs therefore go through this parser; stock
YAMLs keep going through Ultralytics' own, untouched. It builds exactly the rows a spiking YAML may hold, with
Ultralytics' conventions and public helpers:

- ``[from, repeats, module, args]`` rows, ``backbone`` then ``head``; ``from`` is -1 (the previous layer), an index,
  or a list of them; repeats scale as ``max(round(n * depth), 1)`` for n > 1;
- a registered ``channels`` block gets ``(c1, c2, *args)`` with ``c2 = make_divisible(min(c2, max_channels) * width,
  8)``; the ``detect`` head gets ``(*args, reg_max, end2end, [channels of each input level])``; ``Concat`` adds the
  channels of its inputs; ``nn.Upsample`` keeps them;
- ``scales: {n: [depth, width, max_channels], ...}`` with ``scale:`` choosing one (the first when none is named, with
  no warning); a block argument may itself be such a mapping from scale to value (``{n: 1, s: 1, m: 2, l: 2}``);
- the string ``nc`` in args is the class count;
- each layer carries ``i`` (index), ``f`` (from), ``type`` and ``np`` (parameters), and the returned save list holds
  every layer a later one reads, as Ultralytics' ``BaseModel.forward`` expects.

Every block is built inside the YAML's neuron settings (:func:`~spikeyolo_ibra.neuron.neuron_context`). A row that
cannot be built fails with :class:`ModelYAMLError`, naming the layer, the row and what the block takes.
"""

from __future__ import annotations

import ast
import copy
import inspect
from typing import Any

import torch
from torch import nn
from ultralytics.nn.modules import Concat
from ultralytics.utils import LOGGER
from ultralytics.utils.ops import make_divisible

from . import registry
from .errors import SpikeYoloError
from .neuron import NeuronConfig, neuron_context

__all__ = ("ModelYAMLError", "is_spiking_yaml", "parse_spiking_model", "resolve_scale")

#: Modules of Ultralytics and torch a spiking YAML may name besides our registered blocks.
STOCK = {"Concat": Concat, "nn.Upsample": nn.Upsample}


class ModelYAMLError(SpikeYoloError, ValueError):
    """A row of a spiking model YAML that cannot be built; the message names the layer, the row and the fix."""


def is_spiking_yaml(d: dict) -> bool:
    """True for a model YAML this parser builds (it has a top-level ``neuron:`` mapping)."""
    return isinstance(d, dict) and "neuron" in d


def resolve_scale(d: dict) -> str | None:
    """The scale a YAML builds: ``scale:`` if given, else the first under ``scales:`` (None without scales)."""
    scales = d.get("scales") or {}
    scale = d.get("scale") or next(iter(scales), None)
    if scales and scale not in scales:
        raise ModelYAMLError(f"scale {scale!r} is not in the YAML's scales: use one of {', '.join(map(str, scales))}.")
    return scale


def _block_args(cls: type) -> str:
    """The arguments a YAML row gives ``cls``: its constructor's positional ones, less what the parser fills in.

    Keyword-only arguments (``neuron=``, the settings the ``neuron:`` mapping gives) are not the row's.
    """
    params = [
        p
        for p in inspect.signature(cls).parameters.values()
        if p.name not in {"c1", "ch", "reg_max", "end2end"} and p.kind is not p.KEYWORD_ONLY
    ]
    return ", ".join(p.name if p.default is p.empty else f"{p.name}={p.default!r}" for p in params)


def _row_error(i: int, row: list, why: str) -> ModelYAMLError:
    f, n, name, args = row
    return ModelYAMLError(f"layer {i} of the model YAML, [{f}, {n}, {name}, {args}], {why}")


def _module(i: int, row: list, blocks: dict[str, registry.Entry]) -> type:
    name = row[2]
    if name in blocks:
        return blocks[name].cls
    if name in STOCK:
        return STOCK[name]
    known = ", ".join([*sorted(blocks), *STOCK])
    raise _row_error(i, row, f"names {name!r}, which a spiking YAML cannot use: use one of {known}.")


def _arg(value: Any, scale: str | None, nc: int, i: int, j: int) -> Any:
    """One YAML argument: ``nc``, a per-scale mapping, a Python literal in a string, or the value as written."""
    if isinstance(value, dict):
        if scale not in value:
            raise ModelYAMLError(f"layer {i} of the model YAML gives argument {j} per scale but not for '{scale}'.")
        value = value[scale]
    if isinstance(value, str):
        if value == "nc":
            return nc
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return value


def parse_spiking_model(d: dict, ch: int, verbose: bool = True) -> tuple[nn.Sequential, list[int]]:
    """Build the layers of a spiking model YAML ``d`` for ``ch`` input channels; return (layers, save list).

    The same contract as Ultralytics' ``parse_model``, which ``DetectionModel`` calls with the YAML dict.
    """
    config = NeuronConfig.from_mapping(d["neuron"])
    scale = resolve_scale(d)
    if scale:
        depth, width, max_channels = d["scales"][scale]
    else:
        depth, width, max_channels = d.get("depth_multiple", 1.0), d.get("width_multiple", 1.0), float("inf")
    nc, reg_max, end2end = d["nc"], d.get("reg_max", 16), d.get("end2end")
    if verbose:
        LOGGER.info(f"\n{'':>3}{'from':>20}{'n':>3}{'params':>10}  {'module':<45}{'arguments':<30}")
    channels: list[int] = [ch]
    layers, save = [], []
    rows = copy.deepcopy(d["backbone"] + d["head"])
    blocks = registry.yaml_blocks()
    with neuron_context(config):
        for i, row in enumerate(rows):
            if not (isinstance(row, (list, tuple)) and len(row) == 4 and isinstance(row[3], list)):
                raise ModelYAMLError(f"layer {i} of the model YAML, {row}, is not a [from, repeats, module, args] row.")
            f, n, name, yaml_args = row
            m = _module(i, row, blocks)
            args = [_arg(a, scale, nc, i, j) for j, a in enumerate(yaml_args)]
            n = max(round(n * depth), 1) if n > 1 else n
            role = blocks.get(name)
            try:
                c_in = [channels[x] for x in f] if isinstance(f, list) else channels[f]
                if role is not None and role.role == "channels":
                    c2 = make_divisible(min(args[0], max_channels) * width, 8)
                    args = [c_in, c2, *args[1:]]
                elif role is not None:  # the detect head
                    args = [*args, reg_max, end2end, c_in]
                    c2 = None
                else:
                    c2 = sum(c_in) if m is Concat else c_in
                module = nn.Sequential(*(m(*args) for _ in range(n))) if n > 1 else m(*args)
            except (TypeError, ValueError, IndexError) as error:
                why = f"cannot be built ({str(error).rstrip('.')})"
                hint = f": give {name} the args [{_block_args(m)}], channels before width scaling." if role else "."
                raise _row_error(i, row, why + hint) from error
            module.np = sum(p.numel() for p in module.parameters())
            module.i, module.f, module.type = i, f, f"{m.__module__}.{m.__qualname__}"
            if verbose:
                LOGGER.info(f"{i:>3}{f!s:>20}{n:>3}{module.np:10.0f}  {module.type:<45}{args!s:<30}")
            save.extend(x % i for x in ([f] if isinstance(f, int) else f) if x != -1)
            layers.append(module)
            if i == 0:
                channels = []
            channels.append(c2)
    return torch.nn.Sequential(*layers), sorted(save)
