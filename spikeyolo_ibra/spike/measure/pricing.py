"""Rows priced: each layer's energy, compute-only and its memory traffic, and a run's totals and NeuroBench metrics.

A measurement's row carries the fields of :class:`~spikeyolo_ibra.energy.LayerTraffic` (:mod:`.stats`), so the
energy model prices it as it stands: per layer ``energy_mJ`` (its share of the SNN's compute energy), ``memory_mJ``
(the SNN's memory energy of the layer) and ``ann_memory_mJ`` (the ANN twin's); per run the totals of
:func:`~spikeyolo_ibra.energy.energy_totals` with memory. The NeuroBench metrics (activation sparsity, synaptic
operations) use NeuroBench's definitions, as :mod:`spikeyolo_ibra.energy` implements them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields

from ...energy import (
    CostTable,
    LayerTraffic,
    MemoryTable,
    activation_sparsity,
    energy_totals,
    layer_energy_mj,
    memory_energy_mj,
    synaptic_operations,
)

__all__ = ("neurobench", "price", "traffic")

TRAFFIC_FIELDS = tuple(f.name for f in fields(LayerTraffic))


def traffic(rows: Iterable[dict]) -> list[LayerTraffic]:
    """The energy model's view of measured rows: one :class:`LayerTraffic` per row."""
    return [LayerTraffic(**{k: r[k] for k in TRAFFIC_FIELDS}) for r in rows]


def neurobench(layers: Iterable[LayerTraffic]) -> dict:
    """NeuroBench's per-image metrics of one image (or of per-image means): activation sparsity, synaptic operations."""
    layers = list(layers)
    return {"activation_sparsity": activation_sparsity(layers), "synaptic_operations": synaptic_operations(layers)}


def price(rows: list[dict], costs: CostTable, memory: MemoryTable) -> dict:
    """Add ``energy_mJ``, ``memory_mJ`` and ``ann_memory_mJ`` to each row (in place); the totals with memory."""
    layers = traffic(rows)
    for row, layer in zip(rows, layers, strict=True):
        row["energy_mJ"] = layer_energy_mj(row, costs)
        row["memory_mJ"] = memory_energy_mj(layer, "snn", costs, memory)
        row["ann_memory_mJ"] = memory_energy_mj(layer, "ann", costs, memory)
    return energy_totals(rows, costs, layers, memory)
