"""Operation counts, memory traffic and the energy model of the field (45 nm, Horowitz ISSCC 2014).

Counts, per image, on the fused model (BN folded, re-parameterised chains merged into one conv; pooling, upsampling,
concatenation and residual sums free):

- MACs of a conv: C_in * C_out * k_h * k_w * H_out * W_out / groups per logical step; ``macs`` of a spike-fed
  layer is that times T (what the integer-mode network executes), the encoding layer runs once and is repeated.
- SOPs of a spike-fed conv: the sum over input spikes of each spike's fan-out, i.e. the spike-count map convolved
  with an all-ones kernel of the conv's geometry (stride, padding, dilation), times C_out / groups.

Compute energy, with a cost table (E_MAC, E_AC):

    E_SNN  = E_MAC * MACs(encoding layer) + E_AC * SOPs(spike-fed layers)
    E_ANN  = E_MAC * sum of MACs of the same architecture at one timestep (the ReLU twin)
    E_QANN = E_MAC(int8) * the same MACs (a quantized ANN with integer weights and activations)

The quantized-ANN comparison prices both sides at int8 (``qann_ratio = E_QANN / E_SNN(int8)``, with
E_SNN(int8) = 0.23 pJ * MACs(encoding layer) + 0.03 pJ * SOPs): an int8 ANN against an fp32-priced SNN would charge
the two networks for different arithmetic.

Memory energy, per layer and image, from its :class:`LayerTraffic` (W parameters, I input and O output elements
per logical step, T logical and P virtual steps) and a :class:`MemoryTable` (e_r, e_w pJ per bit read and written).
b is the operand width of the cost table (32 for fp32, 16 for fp16, 8 for int8; the int8 ANN is always b = 8):

    ANN twin, QANN, and the SNN's encoding layer:   bits = b * W + b * I (read) + b * O (written)
    SNN spike-fed layer:                            bits = b * W * T          weights, once per logical step
                                                         + 1 * I * P * T      spike planes read, 1 bit each
                                                         + b * O * T          membranes written
                                                         + 2 * b * I * (T-1)  LIF state read and written

    E_mem = e_r * (bits read) + e_w * (bits written),    E_total = E_compute + E_mem

Every datum crosses between the memory and the datapath once per use above (weights stay in the datapath while a
layer processes one image or one logical step): this is the minimum traffic of a dataflow with full on-chip reuse,
a lower bound for all three networks alike. ``snn_inputs="membranes"`` charges the spike-fed layer's input as its
neurons' membranes (b * I * T bits) instead of its spikes: the synapse then reads what SpikeYOLO's blocks store
between layers (membranes, summed by the shortcuts) and fires the neurons on the fly. The spike default is the
field's accounting of SNN data movement; the membrane figure bounds it from above. Weights stay in a bit-serial
datapath across the P planes of one logical step and are fetched again at each logical step (neuromorphic cores
advance the whole network one step at a time). Costs and sources: :data:`COSTS`, :data:`MEMORY`, docs/energy.md.

NeuroBench (v2.3.0, ``neurobench/metrics``) definitions, per image: activation sparsity = zero neuron outputs over
all neuron outputs (here the spike planes: 1 - spikes / (I * T * P) summed over spike-fed layers); synaptic
operations = each connection layer applied to its binarised input with binarised weights and no bias, summed:
``Effective_ACs`` when the input holds only 0 and +-1, else ``Effective_MACs``; ``Dense`` = the same with all-ones
inputs and weights (padding is not counted); footprint = bytes of all parameters and buffers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .errors import SpikeYoloError

__all__ = (
    "COSTS",
    "DEFAULT_MEMORY",
    "MEMORY",
    "NETWORKS",
    "CostTable",
    "LayerTraffic",
    "MemoryTable",
    "activation_sparsity",
    "conv_macs",
    "dense_synops",
    "effective_synops",
    "energy_totals",
    "footprint_bytes",
    "layer_energy_mj",
    "memory_bits",
    "memory_energy_mj",
    "memory_totals",
    "sops_from_counts",
    "synaptic_operations",
    "totals_from_counts",
)

PJ_PER_MJ = 1e9
NETWORKS = ("snn", "ann", "qann")
SNN_INPUTS = ("spikes", "membranes")
KINDS = ("encoder", "spiking")


@dataclass(frozen=True)
class CostTable:
    """Energy per operation in picojoules (one multiply-accumulate, one accumulate) and the operand width in bits."""

    name: str
    mac_pj: float
    ac_pj: float
    bits: int = 32


COSTS = {
    "fp32": CostTable("fp32", 4.6, 0.9, 32),
    "fp16": CostTable("fp16", 1.5, 0.4, 16),
    "int8": CostTable("int8", 0.23, 0.03, 8),
}


@dataclass(frozen=True)
class MemoryTable:
    """Energy per bit read and written, in picojoules, and where the figure comes from.

    Horowitz (ISSCC 2014, "Computing's energy problem", 45 nm, 0.9 V) gives the energy of a 64-bit read: 10 pJ from
    an 8 kB SRAM cache, 20 pJ from 32 kB, 100 pJ from 1 MB, 1.3-2.6 nJ from DRAM. Per bit that is the figure / 64.
    Horowitz gives reads only; a write is taken to cost the same.
    """

    name: str
    read_pj_per_bit: float
    write_pj_per_bit: float
    source: str = field(default="", compare=False)


_HOROWITZ = "Horowitz, ISSCC 2014, 45 nm: {} pJ per 64-bit access"
MEMORY = {
    "sram_8kb": MemoryTable("sram_8kb", 10 / 64, 10 / 64, _HOROWITZ.format("8 kB SRAM cache, 10")),
    "sram_32kb": MemoryTable("sram_32kb", 20 / 64, 20 / 64, _HOROWITZ.format("32 kB SRAM cache, 20")),
    "sram_1mb": MemoryTable("sram_1mb", 100 / 64, 100 / 64, _HOROWITZ.format("1 MB SRAM cache, 100")),
    "dram": MemoryTable("dram", 1300 / 64, 1300 / 64, _HOROWITZ.format("DRAM, 1300 (lower end of 1.3-2.6 nJ)")),
}
DEFAULT_MEMORY = "sram_1mb"  # on-chip SRAM: the largest on-chip figure of the table, a layer's weights fit in it


@dataclass(frozen=True)
class LayerTraffic:
    """What one layer moves and computes per image, the contract between a measurement and the energy model.

    Fields (all per image): ``kind`` is ``encoder`` (real-valued input, runs once) or ``spiking`` (fed by spikes);
    ``weights`` the parameters of the fused dense conv (weight and bias); ``inputs`` and ``outputs`` the elements
    entering and leaving it per logical step (C * H * W); ``timesteps`` T and ``virtual_steps`` P (K bits or Q
    levels; 1 for the encoder); ``spikes`` the spikes entering it over all T and P; ``effective_ops`` NeuroBench's
    effective synaptic operations (for a spike-fed layer its SOPs, for the encoder the fan-out of its non-zero input
    elements); ``dense_ops`` NeuroBench's Dense (every call: T * P plane calls for a spike-fed layer, one for the
    encoder).
    """

    name: str
    kind: str
    weights: int
    inputs: int
    outputs: int
    timesteps: int = 1
    virtual_steps: int = 1
    spikes: float = 0.0
    effective_ops: float = 0.0
    dense_ops: float = 0.0

    def __post_init__(self) -> None:
        """Reject a kind that is not known and counts that cannot be."""
        if self.kind not in KINDS:
            raise SpikeYoloError(f"Layer {self.name!r} has kind {self.kind!r}; use one of {', '.join(KINDS)}.")
        if self.timesteps < 1 or self.virtual_steps < 1:
            raise SpikeYoloError(
                f"Layer {self.name!r} has T={self.timesteps}, P={self.virtual_steps}; give both as 1 or more."
            )
        counts = ("weights", "inputs", "outputs", "spikes", "effective_ops", "dense_ops")
        negative = [k for k in counts if getattr(self, k) < 0]
        if negative:
            raise SpikeYoloError(f"Layer {self.name!r} has negative {', '.join(negative)}; counts are 0 or more.")

    @classmethod
    def of_conv(
        cls,
        name: str,
        kind: str,
        conv: nn.Conv2d,
        in_hw: tuple[int, int],
        out_hw: tuple[int, int],
        timesteps: int = 1,
        virtual_steps: int = 1,
        spikes: float = 0.0,
        effective_ops: float = 0.0,
    ) -> LayerTraffic:
        """The traffic of ``conv`` (the fused dense conv of a layer) on inputs of spatial size ``in_hw``.

        Geometry (weights, inputs, outputs, ``dense_ops``) comes from the conv; the measured figures (``spikes``,
        ``effective_ops``) are passed in. The encoder's P is 1 and its Dense counts one call.
        """
        calls = timesteps * virtual_steps if kind == "spiking" else 1
        return cls(
            name=name,
            kind=kind,
            weights=sum(p.numel() for p in conv.parameters()),
            inputs=conv.in_channels * in_hw[0] * in_hw[1],
            outputs=conv.out_channels * out_hw[0] * out_hw[1],
            timesteps=timesteps,
            virtual_steps=virtual_steps if kind == "spiking" else 1,
            spikes=spikes,
            effective_ops=effective_ops,
            dense_ops=dense_synops(conv, in_hw) * calls,
        )


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


def dense_synops(conv: nn.Conv2d, in_hw: tuple[int, int]) -> float:
    """NeuroBench's Dense for one application of ``conv`` to one image: all-ones input and weights, no bias.

    It counts every (input element, weight) pair that reaches an output, so zero padding is not counted: for a 3x3
    pad-1 conv on 4x4 the fan-out sum is 100 positions, not the 144 of :func:`conv_macs`.
    """
    ones = torch.ones(1, conv.in_channels, *in_hw, dtype=torch.float64)
    return float(sops_from_counts(ones, conv))


def effective_synops(x: torch.Tensor, conv: nn.Conv2d) -> float:
    """NeuroBench's effective synaptic operations of ``conv`` on a batch x (N, C_in, H, W), exactly as it counts them.

    The layer is applied to (x != 0) with weights (W != 0) and no bias, and the outputs are summed: one operation per
    non-zero input and non-zero weight that reach an output. A spike-fed layer's SOPs equal it when no weight is
    exactly zero; the encoder's non-zero pixels give its effective MACs. Summed over the batch: divide by N for a
    per-image figure.
    """
    x_nz = (x != 0).to(torch.float64)
    w_nz = (conv.weight.detach() != 0).to(device=x.device, dtype=torch.float64)
    return float(F.conv2d(x_nz, w_nz, None, conv.stride, conv.padding, conv.dilation, conv.groups).sum())


def _bits(network: str, costs: CostTable) -> int:
    if network not in NETWORKS:
        raise SpikeYoloError(f"Unknown network {network!r}; use one of {', '.join(NETWORKS)}.")
    return COSTS["int8"].bits if network == "qann" else costs.bits


def memory_bits(
    layer: LayerTraffic, network: str, costs: CostTable = COSTS["fp32"], snn_inputs: str = "spikes"
) -> dict[str, float]:
    """Bits one layer moves per image in ``network`` (snn, ann, qann), term by term (see the module docstring).

    Returns ``weights``, ``inputs`` and ``state_read`` (read), ``outputs`` and ``state_written`` (written). The ANN
    twin and the encoder move each tensor once at b bits; the SNN's spike-fed layers repeat per logical step.
    """
    if snn_inputs not in SNN_INPUTS:
        raise SpikeYoloError(f"Unknown snn_inputs {snn_inputs!r}; use one of {', '.join(SNN_INPUTS)}.")
    b = _bits(network, costs)
    if network != "snn" or layer.kind == "encoder":
        return {
            "weights": b * layer.weights,
            "inputs": b * layer.inputs,
            "outputs": b * layer.outputs,
            "state_read": 0,
            "state_written": 0,
        }
    t, p = layer.timesteps, layer.virtual_steps
    state = b * layer.inputs * (t - 1)
    return {
        "weights": b * layer.weights * t,
        "inputs": layer.inputs * t * (p if snn_inputs == "spikes" else b),
        "outputs": b * layer.outputs * t,
        "state_read": state,
        "state_written": state,
    }


def memory_energy_mj(
    layer: LayerTraffic,
    network: str,
    costs: CostTable = COSTS["fp32"],
    memory: MemoryTable = MEMORY[DEFAULT_MEMORY],
    snn_inputs: str = "spikes",
) -> float:
    """A layer's memory energy in mJ per image: e_r * (bits read) + e_w * (bits written), from :func:`memory_bits`."""
    m = memory_bits(layer, network, costs, snn_inputs)
    read = m["weights"] + m["inputs"] + m["state_read"]
    written = m["outputs"] + m["state_written"]
    return (memory.read_pj_per_bit * read + memory.write_pj_per_bit * written) / PJ_PER_MJ


def memory_totals(
    layers: Iterable[LayerTraffic],
    costs: CostTable,
    memory: MemoryTable = MEMORY[DEFAULT_MEMORY],
    ann_passes: int = 1,
) -> dict:
    """Memory energy in mJ per image of the three networks, at the table's width and at int8 for the SNN too.

    ``ann_passes``: how often the ANN twins run their layers after the encoder per image: 1 for an image, T for the
    T bins of an event sample (the encoder's traffic already covers every bin).

    Keys: ``snn_mem_mJ`` and ``ann_mem_mJ`` at ``costs.bits``, ``snn_int8_mem_mJ`` and ``qann_int8_mem_mJ`` at 8 bits,
    and ``snn_mem_membranes_mJ`` / ``snn_int8_mem_membranes_mJ``, the SNN charged for reading membranes.
    """
    layers = list(layers)
    int8 = COSTS["int8"]

    def total(network: str, table: CostTable, inputs: str = "spikes") -> float:
        def passes(layer: LayerTraffic) -> int:
            return 1 if network == "snn" or layer.kind == "encoder" else ann_passes

        return sum(memory_energy_mj(layer, network, table, memory, inputs) * passes(layer) for layer in layers)

    return {
        "snn_mem_mJ": total("snn", costs),
        "ann_mem_mJ": total("ann", costs),
        "snn_int8_mem_mJ": total("snn", int8),
        "qann_int8_mem_mJ": total("qann", int8),
        "snn_mem_membranes_mJ": total("snn", costs, "membranes"),
        "snn_int8_mem_membranes_mJ": total("snn", int8, "membranes"),
    }


def layer_energy_mj(row: dict, costs: CostTable) -> float:
    """A layer's share of E_SNN in mJ per image: E_MAC * MACs for the encoder, E_AC * SOPs for a spike-fed layer."""
    return (costs.mac_pj * row["macs"] if row["kind"] == "encoder" else costs.ac_pj * row["sops"]) / PJ_PER_MJ


def energy_totals(
    rows: Iterable[dict],
    costs: CostTable,
    traffic: Iterable[LayerTraffic] | None = None,
    memory: MemoryTable = MEMORY[DEFAULT_MEMORY],
) -> dict:
    """Energy totals in mJ per image from per-layer rows (``kind``, ``macs``, ``macs_per_step``, ``sops``).

    With ``traffic`` (one :class:`LayerTraffic` per layer) the memory term and the totals with memory are added.
    """
    rows = list(rows)
    return totals_from_counts(
        encoder_macs=sum(r["macs"] for r in rows if r["kind"] == "encoder"),
        sops=sum(r["sops"] for r in rows if r["kind"] == "spiking"),
        ann_macs=sum(r["macs_per_step"] for r in rows),
        costs=costs,
        traffic=traffic,
        memory=memory,
        ann_passes=max((r.get("bins", 1) for r in rows if r["kind"] == "encoder"), default=1),
    )


def totals_from_counts(
    encoder_macs: float,
    sops: float,
    ann_macs: float,
    costs: CostTable,
    traffic: Iterable[LayerTraffic] | None = None,
    memory: MemoryTable = MEMORY[DEFAULT_MEMORY],
    ann_passes: int = 1,
) -> dict:
    """Energy totals in mJ per image from the three operation counts (see the module docstring for the formulas).

    ``ann_macs`` is one pass of the ANN twin; it runs ``ann_passes`` of them per image: 1 for an image (a spiking
    model's repeated timesteps are its own cost), T for an event sample, whose T bins the twin reads one by one.

    The compute-only keys (``snn_mJ``, ``ann_mJ``, ``snn_int8_mJ``, ``qann_int8_mJ``, ``ratio``, ``qann_ratio``)
    are always there. With ``traffic`` the keys of :func:`memory_totals` are added, with ``memory`` (the table's
    name and costs), ``*_total_mJ`` = compute + memory for the four figures and for the SNN reading membranes
    (``snn_total_membranes_mJ``, ``snn_int8_total_membranes_mJ``), and ``total_ratio`` = ANN / SNN and
    ``qann_total_ratio`` = QANN / SNN(int8), both with memory.
    """

    def snn_mj(table: CostTable) -> float:
        return (table.mac_pj * encoder_macs + table.ac_pj * sops) / PJ_PER_MJ

    snn, snn_int8 = snn_mj(costs), snn_mj(COSTS["int8"])
    ann_macs = ann_macs * ann_passes
    ann = costs.mac_pj * ann_macs / PJ_PER_MJ
    qann = COSTS["int8"].mac_pj * ann_macs / PJ_PER_MJ
    out = {
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
    if traffic is None:
        return out
    mem = memory_totals(traffic, costs, memory, ann_passes)
    totals = {
        "snn_total_mJ": snn + mem["snn_mem_mJ"],
        "ann_total_mJ": ann + mem["ann_mem_mJ"],
        "snn_int8_total_mJ": snn_int8 + mem["snn_int8_mem_mJ"],
        "qann_int8_total_mJ": qann + mem["qann_int8_mem_mJ"],
        "snn_total_membranes_mJ": snn + mem["snn_mem_membranes_mJ"],
        "snn_int8_total_membranes_mJ": snn_int8 + mem["snn_int8_mem_membranes_mJ"],
    }
    return {
        **out,
        "memory": {
            "table": memory.name,
            "read_pJ_per_bit": memory.read_pj_per_bit,
            "write_pJ_per_bit": memory.write_pj_per_bit,
            "source": memory.source,
        },
        **mem,
        **totals,
        "total_ratio": totals["ann_total_mJ"] / totals["snn_total_mJ"],
        "qann_total_ratio": totals["qann_int8_total_mJ"] / totals["snn_int8_total_mJ"],
    }


def activation_sparsity(layers: Iterable[LayerTraffic]) -> float:
    """NeuroBench's activation sparsity of one image: zero neuron outputs / all neuron outputs, over all layers.

    The neurons are those feeding the spike-fed layers; each emits one binary output per virtual and logical step,
    so sparsity = 1 - sum(spikes) / sum(I * T * P). The encoder has no neuron. As in NeuroBench, 0.0 when there
    are no neuron outputs.
    """
    spiking = [layer for layer in layers if layer.kind == "spiking"]
    total = sum(layer.inputs * layer.timesteps * layer.virtual_steps for layer in spiking)
    return 1.0 - sum(layer.spikes for layer in spiking) / total if total else 0.0


def synaptic_operations(layers: Iterable[LayerTraffic]) -> dict[str, float]:
    """NeuroBench's synaptic operations of one image: ``Effective_MACs``, ``Effective_ACs``, ``Dense``.

    The encoder's input is real-valued, so its effective operations are MACs; a spike-fed layer receives binary
    planes, so its are ACs (its SOPs). Dense sums every layer's ``dense_ops``.
    """
    layers = list(layers)
    return {
        "Effective_MACs": sum(layer.effective_ops for layer in layers if layer.kind == "encoder"),
        "Effective_ACs": sum(layer.effective_ops for layer in layers if layer.kind == "spiking"),
        "Dense": sum(layer.dense_ops for layer in layers),
    }


def footprint_bytes(model: nn.Module) -> int:
    """NeuroBench's footprint: bytes of every parameter and buffer of ``model`` (numel * element size).

    Shared tensors count once (``parameters()`` and ``buffers()`` do not repeat them), as in NeuroBench.
    """
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    return params + sum(b.numel() * b.element_size() for b in model.buffers())
