"""Operation counts and the energy model of the field (45 nm, Horowitz ISSCC 2014).

Counts, per image, on the fused model (BN folded, re-parameterised chains merged into one conv; pooling, upsampling,
concatenation and residual sums free):

- MACs of a conv: C_in * C_out * k_h * k_w * H_out * W_out / groups per logical step; ``macs`` of a spike-fed
  layer is that times T (what the integer-mode network executes), the encoding layer runs once and is repeated.
- SOPs of a spike-fed conv: the sum over input spikes of each spike's fan-out, i.e. the spike-count map convolved
  with an all-ones kernel of the conv's geometry (stride, padding, dilation), times C_out / groups.

Energy, with a cost table (E_MAC, E_AC):

    E_SNN  = E_MAC * MACs(encoding layer) + E_AC * SOPs(spike-fed layers)
    E_ANN  = E_MAC * sum of MACs of the same architecture at one timestep (the ReLU twin)
    E_QANN = E_MAC(int8) * the same MACs (a quantized ANN with integer weights and activations)

The quantized-ANN comparison prices both sides at int8 (``qann_ratio = E_QANN / E_SNN(int8)``, with
E_SNN(int8) = 0.23 pJ * MACs(encoding layer) + 0.03 pJ * SOPs): an int8 ANN against an fp32-priced SNN would charge
the two networks for different arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = (
    "COSTS",
    "CostTable",
    "conv_macs",
    "energy_totals",
    "layer_energy_mj",
    "sops_from_counts",
    "totals_from_counts",
)

PJ_PER_MJ = 1e9


@dataclass(frozen=True)
class CostTable:
    """Energy per operation in picojoules: one multiply-accumulate, one accumulate."""

    name: str
    mac_pj: float
    ac_pj: float


COSTS = {
    "fp32": CostTable("fp32", 4.6, 0.9),
    "fp16": CostTable("fp16", 1.5, 0.4),
    "int8": CostTable("int8", 0.23, 0.03),
}


def conv_macs(conv: nn.Conv2d, out_hw: tuple[int, int]) -> int:
    """MACs of one application of ``conv`` to one image: C_in * C_out * k_h * k_w * H_out * W_out / groups."""
    kh, kw = conv.kernel_size
    return conv.in_channels * conv.out_channels * kh * kw * out_hw[0] * out_hw[1] // conv.groups


def sops_from_counts(counts: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """SOPs of spike counts (N, C_in, H, W) entering ``conv``, as a float64 scalar tensor on the counts' device.

    Every input channel reaches C_out / groups output channels through the same spatial footprint, so the channels
    are summed first: SOPs = C_out / groups * sum(conv(sum_c counts, ones(1, 1, k_h, k_w))). The result stays on the
    device (no host synchronisation); ``float()`` it to read it.
    """
    ones = torch.ones(1, 1, *conv.kernel_size, dtype=torch.float64, device=counts.device)
    total = counts.to(torch.float64).sum(1, keepdim=True)
    fan = F.conv2d(total, ones, None, conv.stride, conv.padding, conv.dilation)
    return fan.sum() * (conv.out_channels / conv.groups)


def layer_energy_mj(row: dict, costs: CostTable) -> float:
    """A layer's share of E_SNN in mJ per image: E_MAC * MACs for the encoder, E_AC * SOPs for a spike-fed layer."""
    return (costs.mac_pj * row["macs"] if row["kind"] == "encoder" else costs.ac_pj * row["sops"]) / PJ_PER_MJ


def energy_totals(rows: Iterable[dict], costs: CostTable) -> dict:
    """Energy totals in mJ per image from per-layer rows (``kind``, ``macs``, ``macs_per_step``, ``sops``)."""
    rows = list(rows)
    return totals_from_counts(
        encoder_macs=sum(r["macs"] for r in rows if r["kind"] == "encoder"),
        sops=sum(r["sops"] for r in rows if r["kind"] == "spiking"),
        ann_macs=sum(r["macs_per_step"] for r in rows),
        costs=costs,
    )


def totals_from_counts(encoder_macs: float, sops: float, ann_macs: float, costs: CostTable) -> dict:
    """Energy totals in mJ per image from the three operation counts (see the module docstring for the formulas)."""

    def snn_mj(table: CostTable) -> float:
        return (table.mac_pj * encoder_macs + table.ac_pj * sops) / PJ_PER_MJ

    snn, snn_int8 = snn_mj(costs), snn_mj(COSTS["int8"])
    ann = costs.mac_pj * ann_macs / PJ_PER_MJ
    qann = COSTS["int8"].mac_pj * ann_macs / PJ_PER_MJ
    return {
        "costs": {"table": costs.name, "mac_pJ": costs.mac_pj, "ac_pJ": costs.ac_pj},
        "encoder_macs": encoder_macs,
        "sops": sops,
        "ann_macs": ann_macs,
        "snn_mJ": snn,
        "ann_mJ": ann,
        "snn_int8_mJ": snn_int8,
        "qann_int8_mJ": qann,
        "ratio": ann / snn if snn else float("inf"),
        "qann_ratio": qann / snn_int8 if snn_int8 else float("inf"),
    }
