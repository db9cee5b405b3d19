"""Integer codes to binary spike planes, and the weight each plane carries.

A neuron's code q (a whole number in [0, Q]) is sent over P virtual steps as binary planes b_0 .. b_{P-1} with
weights w_k such that q / N = sum_k w_k * b_k exactly:

- ``binary`` (bit-plane) coding: P = K, b_k = bit k of q, w_k = 2**k / N; a neuron sends popcount(q) spikes.
- ``unary`` coding: P = Q, b_j = [q > j], w_j = 1 / N; a neuron sends q spikes.
"""

from __future__ import annotations

import torch

from ...neuron import NeuronConfig

__all__ = ("encode", "plane", "plane_weights", "spike_counts")


def plane_weights(
    config: NeuronConfig,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    unit: float | None = None,
) -> torch.Tensor:
    """The P plane weights w_k (2**k / N for binary coding, 1 / N for unary coding), plane 0 first, on ``device``.

    ``unit`` replaces N: 1 for a prescaled neuron, whose next synapse already carries the 1 / N.
    """
    n = config.scale if unit is None else unit
    if config.coding == "binary":
        return torch.tensor([2.0**k / n for k in range(config.bits)], dtype=dtype, device=device)
    return torch.full((config.levels,), 1.0 / n, dtype=dtype, device=device)


def encode(q: torch.Tensor, config: NeuronConfig) -> torch.Tensor:
    """Binary planes (P, *q.shape) of the codes q, in q's dtype; plane 0 is the least significant (binary coding)."""
    steps = torch.arange(config.virtual_steps, device=q.device).view(-1, *([1] * q.dim()))
    if config.coding == "binary":
        return torch.bitwise_and(q.long().unsqueeze(0) >> steps, 1).to(q.dtype)
    return (q.unsqueeze(0) > steps).to(q.dtype)


def plane(q: torch.Tensor, k: int, config: NeuronConfig) -> torch.Tensor:
    """Binary plane k of the codes q alone (bit k, or [q > k] for unary coding), in q's dtype."""
    if config.coding == "binary":
        return torch.bitwise_and(q.long() >> k, 1).to(q.dtype)
    return (q > k).to(q.dtype)


def spike_counts(q: torch.Tensor, config: NeuronConfig) -> torch.Tensor:
    """Spikes each neuron sends for code q, in q's dtype: popcount(q) (binary coding) or q (unary coding)."""
    if config.coding == "unary":
        return q
    return encode(q, config).sum(0)
