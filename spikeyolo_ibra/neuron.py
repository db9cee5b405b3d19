"""The IBRA-LIF neuron: integer training, binary spikes at inference.

One logical timestep t of a layer of neurons, with membrane u, input x, leak beta, soft reset by the emitted value::

    u[t] = beta * (u[t-1] - s[t-1]) + x[t]          (u[0] = x[0])
    q[t] = round(clip(N * u[t], 0, Q))              integer code, Q = 2**K - 1 (binary) or Q = levels (unary)
    s[t] = q[t] / N                                 value passed on to the next synapse, in [0, Q / N]

N is the *range-alignment scale*: without it (N = 1) batch-normalised membranes of order 1..5 only reach codes 0..5,
with it they spread over the whole code range. Rounding is ``torch.round`` (half to even) in every path, computed in
float32 at least (:func:`_scaled_code`): under autocast a float16 membrane arrives with 11 significant bits, and
N * u near 511 rounded in float16 would move codes by up to half a level.

Gradient: straight-through on the window, ds/du = 1 where 0 <= N*u <= Q, else 0. The reset ``s[t-1]`` is detached
from autograd when ``detach_reset`` is set (SpikeYOLO's choice).

At inference the integer code becomes binary spikes over virtual timesteps (see :mod:`spikeyolo_ibra.spike`):
bit-plane coding sends bit k of q at virtual step k (K steps, weight 2**k / N), unary coding sends q ones (Q steps).

SpikeYOLO's I-LIF is the same neuron with ``coding=unary, levels=4, scale=1``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from .errors import SpikeYoloError
from .registry import register

__all__ = (
    "IBLIF",
    "NeuronConfig",
    "NeuronConfigError",
    "Rectifier",
    "SharedTimesteps",
    "active_config",
    "make_neuron",
    "neuron_context",
    "quantize",
    "set_timesteps",
    "unfold_time",
)

CODINGS = ("binary", "unary")
TYPES = ("lif", "relu")


class NeuronConfigError(SpikeYoloError, ValueError):
    """An impossible neuron setting in the model YAML's ``neuron:`` mapping."""


@register("part")
@dataclass(frozen=True)
class NeuronConfig:
    """Neuron settings, read once from the model YAML's top-level ``neuron:`` mapping.

    Attributes:
        T: logical timesteps (the image is repeated T times; leak and reset act between them).
        bits: K, bits of the integer code for binary (bit-plane) coding; codes live in [0, 2**K - 1].
        scale: N, the range-alignment scale; the neuron passes on q / N. D = Q / N is the real-valued ceiling.
        coding: ``binary`` (bit planes, K virtual steps) or ``unary`` (``levels`` virtual steps, SpikeYOLO's I-LIF).
        levels: Q for unary coding, the largest integer a neuron emits; ignored for binary coding.
        beta: membrane leak between logical timesteps.
        detach_reset: cut the soft-reset path out of autograd.
        type: ``lif`` for the spiking neuron, ``relu`` for the ANN twin of the same architecture.

    Defaults are the IBRA-LIF authors' published ImageNet defaults (T = 1, D = 5.11, N = 100, hence K = 9 since
    5.11 * 100 = 2**9 - 1) and SpikeYOLO's leak (0.25); that K and N mean this is our reading of the paper.

    """

    T: int = 1
    bits: int = 9
    scale: float = 100.0
    coding: str = "binary"
    levels: int = 4
    beta: float = 0.25
    detach_reset: bool = True
    type: str = "lif"

    def __post_init__(self) -> None:
        """Reject impossible settings with one sentence that names the key and the fix."""

        def fail(key: str, why: str) -> None:
            raise NeuronConfigError(f"neuron.{key}={getattr(self, key)!r} is invalid: {why}.")

        if self.type not in TYPES:
            fail("type", f"use one of {', '.join(TYPES)}")
        if not _is_int(self.T) or self.T < 1:
            fail("T", "use a whole number of timesteps, 1 or more")
        if not _is_int(self.bits) or not 1 <= self.bits <= 16:
            fail("bits", "use a whole number from 1 to 16")
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) or not self.scale > 0:
            fail("scale", "use a positive number (1 disables range alignment)")
        if self.coding not in CODINGS:
            fail("coding", f"use one of {', '.join(CODINGS)}")
        if not _is_int(self.levels) or self.levels < 1:
            fail("levels", "use a whole number, 1 or more (the largest integer a unary neuron emits)")
        if isinstance(self.beta, bool) or not isinstance(self.beta, (int, float)) or not 0 <= self.beta <= 1:
            fail("beta", "use a number from 0 to 1")
        if not isinstance(self.detach_reset, bool):
            fail("detach_reset", "use true or false")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> NeuronConfig:
        """Build from the YAML ``neuron:`` mapping; unknown keys are an error, missing keys take the defaults."""
        if mapping is None:
            return cls()
        if not isinstance(mapping, Mapping):
            raise NeuronConfigError(f"neuron: must be a mapping of settings, got {mapping!r}.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(mapping) - known)
        if unknown:
            raise NeuronConfigError(f"neuron.{unknown[0]} is not a neuron setting: use {', '.join(sorted(known))}.")
        return cls(**mapping)

    def to_mapping(self) -> dict[str, Any]:
        """The settings as a plain dict (what the YAML holds)."""
        return asdict(self)

    @property
    def spiking(self) -> bool:
        """True for the spiking neuron, False for the ANN twin."""
        return self.type == "lif"

    @property
    def max_code(self) -> int:
        """Q, the largest integer code: 2**K - 1 for binary coding, ``levels`` for unary coding."""
        return 2**self.bits - 1 if self.coding == "binary" else self.levels

    @property
    def virtual_steps(self) -> int:
        """Binary spikes a neuron needs per logical timestep: K (binary) or Q (unary)."""
        return self.bits if self.coding == "binary" else self.levels

    @property
    def ceiling(self) -> float:
        """D = Q / N, the largest value a neuron passes on."""
        return self.max_code / self.scale


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _scaled_code(u: torch.Tensor, scale: float, max_code: int, window: bool) -> tuple[torch.Tensor, Any]:
    """The one place the code is computed: q = round(clip(N * u, 0, Q)) as a new tensor, in float32 at least.

    A float16/bfloat16 membrane (autocast, ``half()``) is widened first: in float16, N * u near 511 has a spacing of
    0.25-0.5 levels, so rounding there would move codes; widened, q is exact for the membrane as it arrives.
    ``window`` also returns the straight-through mask 0 <= N*u <= Q (else None): the clamp leaves exactly those
    elements unchanged (NaN compares unequal, so it gets no gradient either). Passes: mul, clamp, round (+ eq); with
    N = 1 (or a membrane that arrives multiplied by N, see :attr:`IBLIF.prescaled`) clamp and round only.
    """
    wide = u.to(torch.promote_types(u.dtype, torch.float32))
    if window:
        nu = wide * scale if scale != 1 else wide
        clipped = torch.clamp(nu, 0, max_code)
        window_mask = clipped == nu  # before rounding in place
        return clipped.round_(), window_mask
    clipped = (wide * scale).clamp_(0, max_code) if scale != 1 else torch.clamp(wide, 0, max_code)
    return clipped.round_(), None


def quantize(u: torch.Tensor, scale: float, max_code: int) -> torch.Tensor:
    """Integer code q = round(clip(N * u, 0, Q)), whole numbers in float32 at least (bfloat16 cannot hold 511)."""
    return _scaled_code(u, scale, max_code, window=False)[0]


class _StraightThrough(torch.autograd.Function):
    """s = q / N with the straight-through gradient ds/du = 1 on 0 <= N*u <= Q; saves a boolean mask only."""

    @staticmethod
    def forward(ctx: Any, u: torch.Tensor, scale: float, max_code: int) -> torch.Tensor:  # noqa: D102
        q, window = _scaled_code(u, scale, max_code, window=True)
        ctx.save_for_backward(window)
        return (q.div_(scale) if scale != 1 else q).to(u.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # noqa: D102
        (window,) = ctx.saved_tensors
        return grad * window, None, None


def fire(u: torch.Tensor, scale: float, max_code: int) -> torch.Tensor:
    """Emitted value s = round(clip(N * u, 0, Q)) / N in u's dtype, with a straight-through gradient.

    Without autograd (inference, ``torch.no_grad``) the window mask is not computed: four passes on one new tensor,
    two with N = 1 (a float16 membrane adds the widening and the cast back).
    """
    if not (u.requires_grad and torch.is_grad_enabled()):
        q = _scaled_code(u, scale, max_code, window=False)[0]
        return (q.div_(scale) if scale != 1 else q).to(u.dtype)
    return _StraightThrough.apply(u, scale, max_code)


def unfold_time(x: torch.Tensor, T: int) -> torch.Tensor:  # noqa: N803 (the symbol of the paper)
    """(T * B, ...) -> (T, B, ...): time folded into the batch, x[t * B + b], as a leading dimension (a view)."""
    return x.reshape(T, -1, *x.shape[1:])


@register("part")
class IBLIF(nn.Module):
    """Integer Binary LIF neuron with range alignment, over T logical timesteps folded into the batch.

    Inputs and outputs are (T * B, C, H, W) with time as the outer factor, so stock ``Concat`` and ``nn.Upsample``
    work between blocks. Reads its settings from ``config``.

    Example:
        >>> neuron = IBLIF(NeuronConfig(bits=2, scale=1.0))
        >>> neuron(torch.tensor([-1.0, 0.4, 0.5, 1.5, 2.6, 9.0]))
        tensor([0., 0., 0., 2., 3., 3.])

    """

    #: Set by ``fuse()`` (:func:`spikeyolo_ibra.fusion.fold_alignment_scale`): the membrane arrives multiplied by N,
    #: so the neuron computes q = round(clip(u, 0, Q)) and emits q itself (the next synapse's weights carry the 1/N).
    #: Two elementwise passes at inference instead of four; the codes are the same.
    prescaled = False

    def __init__(self, config: NeuronConfig | None = None) -> None:
        """Build a neuron with the given settings (the active YAML settings by default)."""
        super().__init__()
        self.config = config or active_config()

    def extra_repr(self) -> str:
        """Show the settings that shape the code."""
        c = self.config
        text = f"T={c.T}, coding={c.coding}, max_code={c.max_code}, scale={c.scale:g}, beta={c.beta:g}"
        return text + (", prescaled" if self.prescaled else "")

    @property
    def unit(self) -> float:
        """What the membrane is multiplied by before rounding: N, or 1 for a prescaled membrane."""
        return 1.0 if self.prescaled else float(self.config.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Emitted values s = q / N for membrane inputs x (differentiable, straight-through); q if prescaled."""
        c = self.config
        if c.T == 1:
            return fire(x, self.unit, c.max_code)
        return self._run(x, codes=False)

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """Integer codes q (whole numbers, float32 or wider), the quantity spike inference expands into planes."""
        c = self.config
        if c.T == 1:
            return quantize(x, self.unit, c.max_code)
        return self._run(x, codes=True)

    def _run(self, x: torch.Tensor, codes: bool) -> torch.Tensor:
        """Membrane dynamics over T logical steps: u = beta * (u - s) + x[t], s = q / N; returns s or q."""
        c, unit = self.config, self.unit
        wide = x.to(torch.promote_types(x.dtype, torch.float32))  # the membrane integrates in float32 at least
        out, u, s = [], None, None
        for xt in unfold_time(wide, c.T):
            if u is None:
                u = xt
            else:
                u = c.beta * (u - (s.detach() if c.detach_reset else s)) + xt
            if codes:
                q = quantize(u, unit, c.max_code)
                s = q / unit
                out.append(q)
            else:
                s = fire(u, unit, c.max_code)
                out.append(s)
        out = torch.stack(out).reshape(x.shape)
        return out if codes else out.to(x.dtype)


# --- the neuron settings of the model being built -------------------------------------------------------------------
_ACTIVE: list[NeuronConfig] = []


def active_config() -> NeuronConfig:
    """The settings of the model YAML being parsed, or the defaults outside of model building.

    The fallback of every block's ``neuron=`` argument: the parser builds a YAML's blocks inside
    :func:`neuron_context`; a block built by hand takes ``neuron=NeuronConfig(...)`` (or these defaults).
    """
    return _ACTIVE[-1] if _ACTIVE else NeuronConfig()


@contextlib.contextmanager
def neuron_context(config: NeuronConfig) -> Iterator[NeuronConfig]:
    """Make ``config`` the settings every neuron built inside the block takes."""
    _ACTIVE.append(config)
    try:
        yield config
    finally:
        _ACTIVE.pop()


@register("part")
class Rectifier(nn.Module):
    """The ANN twin's activation, max(x, 0), never in place.

    Its input is also the residual stream (``x + sepconv(x)`` adds the *membrane* x), so an in-place ReLU would
    overwrite x with max(x, 0) before the sum. ``nn.ReLU`` cannot be used: Ultralytics' checkpoint loader sets
    ``inplace = True`` on every module that has the attribute, so a loaded ANN twin computed another function than
    the one it trained (and validated) as. This module has no such switch.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """max(x, 0), a new tensor."""
        return torch.relu(x)


def make_neuron(config: NeuronConfig | None = None) -> nn.Module:
    """The neuron a block places before a synapse: IB-LIF, or :class:`Rectifier` (ReLU) for the ANN twin.

    ``config`` or, building inside a model YAML, the active one.
    """
    config = config if config is not None else active_config()
    return IBLIF(config) if config.spiking else Rectifier()


def set_timesteps(model: nn.Module, T: int) -> nn.Module:  # noqa: N803 (the symbol of the paper)
    """Run ``model`` with T logical timesteps from now on; returns it.

    T lives in the neuron settings that the neurons, the encoding layer and the head share. Each holder gets the same
    settings with T replaced (one new object per old one, so what was shared stays shared), and ``model.yaml``'s
    ``neuron:`` mapping is updated so a saved checkpoint says the same.
    """
    NeuronConfig(T=T)  # validates T with the usual one-sentence error
    replaced: dict[int, NeuronConfig] = {}
    for m in model.modules():
        config = getattr(m, "config", None)
        if isinstance(config, NeuronConfig):
            m.config = replaced.setdefault(id(config), dataclasses.replace(config, T=T))
    yaml = getattr(model, "yaml", None)
    if isinstance(yaml, dict) and isinstance(yaml.get("neuron"), dict):
        yaml["neuron"]["T"] = T
    return model


def migrate_timesteps(state: dict) -> dict:
    """Unpickling state of a module saved by 0.1, which held ``T`` itself: T moves into neuron settings."""
    if "config" in state or "T" not in state:
        return state
    state = dict(state)
    state["config"] = NeuronConfig(T=state.pop("T"))
    return state


class SharedTimesteps:
    """Mixin for a module that keeps the model's shared neuron settings as ``self.config`` and reads T there.

    The encoding layer and the head need T (to repeat the image, to average over time) but hold no neuron; sharing
    the neurons' settings object keeps one T per model (:func:`set_timesteps`). Checkpoints of 0.1, whose modules kept
    their own ``T``, load through :func:`migrate_timesteps`.
    """

    config: NeuronConfig

    @property
    def T(self) -> int:  # noqa: N802 (the symbol of the paper)
        """Logical timesteps, from the shared neuron settings."""
        return self.config.T

    def __setstate__(self, state: dict) -> None:
        """Load checkpoints of 0.1, which kept their own copy of T."""
        super().__setstate__(migrate_timesteps(state))
