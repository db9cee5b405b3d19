"""Operation counts and energy against a network computed by hand."""

import pytest
import torch
from ultralytics.utils.torch_utils import fuse_conv_and_bn

from spikeyolo_ibra.blocks import SpikeConv, SpikeDownsample
from spikeyolo_ibra.energy import (
    COSTS,
    MEMORY,
    LayerTraffic,
    activation_sparsity,
    conv_macs,
    dense_synops,
    effective_synops,
    energy_totals,
    footprint_bytes,
    layer_energy_mj,
    memory_bits,
    memory_energy_mj,
    sops_from_counts,
    synaptic_operations,
)
from spikeyolo_ibra.errors import SpikeYoloError
from spikeyolo_ibra.neuron import NeuronConfig, neuron_context


def test_energy_of_a_two_conv_network_matches_hand_computation():
    from spikeyolo_ibra.spike import Monitor, to_spike_driven  # here, so the pure energy tests need no runtime

    with neuron_context(NeuronConfig(bits=2, scale=1.0)):
        net = torch.nn.Sequential(SpikeDownsample(3, 4, 3, 1, 1, first=True), SpikeConv(4, 2, 3, bn=False)).eval()
    encoder = net[0].conv
    encoder.conv = fuse_conv_and_bn(encoder.conv, encoder.bn)
    del encoder.bn
    encoder.forward = encoder.forward_fuse
    with torch.no_grad():  # the encoder outputs 0, 1, 2, 3.4 everywhere: codes 0, 1, 2, 3 (popcounts 0, 1, 1, 2)
        encoder.conv.weight.zero_()
        encoder.conv.bias.copy_(torch.tensor([0.0, 1.0, 2.0, 3.4]))
    spike = to_spike_driven(net)
    with Monitor(spike) as monitor, torch.no_grad():
        spike(torch.rand(1, 3, 4, 4))
    rows = monitor.rows()
    # per-layer statistics of codes 0, 1, 2, 3 (one channel each) with K = 2, Q = 3
    assert rows[1]["mean_code"] == pytest.approx(1.5)
    assert rows[1]["spikes_per_neuron"] == pytest.approx(1.0)  # popcounts 0 + 1 + 1 + 2 over 4 channels
    assert rows[1]["firing_rate"] == pytest.approx(0.5)  # per virtual step: 1 spike over K = 2 steps
    assert rows[1]["level_utilisation"] == pytest.approx(1.0)  # all Q + 1 = 4 codes seen
    assert layer_energy_mj(rows[1], COSTS["fp32"]) == pytest.approx(0.9 * 800 * 1e-9)
    assert layer_energy_mj(rows[0], COSTS["fp32"]) == pytest.approx(4.6 * 3 * 4 * 9 * 16 * 1e-9)
    # 4 spikes per input position; fan-out of a 3x3 pad-1 kernel on 4x4: 4 interior x 9 + 8 edge x 6 + 4 corner x 4
    sops = 4 * (4 * 9 + 8 * 6 + 4 * 4) * 2
    encoder_macs = 3 * 4 * 9 * 16
    ann_macs = encoder_macs + 4 * 2 * 9 * 16
    assert rows[1]["sops"] == rows[1]["sops_from_codes"] == sops == 800
    e = energy_totals(rows, COSTS["fp32"])
    assert e["snn_mJ"] == pytest.approx((4.6 * encoder_macs + 0.9 * sops) * 1e-9)  # 8668.8 pJ
    assert e["ann_mJ"] == pytest.approx(4.6 * ann_macs * 1e-9)  # 13248 pJ
    assert e["qann_int8_mJ"] == pytest.approx(0.23 * ann_macs * 1e-9)  # 662.4 pJ
    assert e["snn_int8_mJ"] == pytest.approx((0.23 * encoder_macs + 0.03 * sops) * 1e-9)  # 421.44 pJ
    assert e["ratio"] == pytest.approx(13248 / 8668.8)
    assert e["qann_ratio"] == pytest.approx(662.4 / 421.44)  # both sides int8


# Memory traffic and NeuroBench definitions on two convs whose counts are known by hand, on 4x4 inputs:
# a 1x1 conv 2 -> 3 with bias (9 parameters, 32 inputs, 48 outputs, 96 MACs = 96 Dense, no padding) and a 3x3
# pad-1 conv 4 -> 2 without bias (72 parameters, 64 inputs, 32 outputs, 1152 MACs; Dense counts only in-bounds
# pairs: per input channel 4 interior x 9 + 8 edge x 6 + 4 corner x 4 = 100 positions, 4 x 100 x 2 = 800).


def _one_by_one() -> torch.nn.Conv2d:
    return torch.nn.Conv2d(2, 3, 1)


def _three_by_three() -> torch.nn.Conv2d:
    return torch.nn.Conv2d(4, 2, 3, padding=1, bias=False)


def test_layer_traffic_of_a_1x1_and_a_3x3_conv():
    enc = LayerTraffic.of_conv("enc", "encoder", _one_by_one(), (4, 4), (4, 4), timesteps=2, virtual_steps=9)
    assert (enc.weights, enc.inputs, enc.outputs, enc.virtual_steps, enc.dense_ops) == (9, 32, 48, 1, 96)
    spk = LayerTraffic.of_conv("spk", "spiking", _three_by_three(), (4, 4), (4, 4), timesteps=2, virtual_steps=3)
    assert (spk.weights, spk.inputs, spk.outputs) == (72, 64, 32)
    assert spk.dense_ops == 800 * 2 * 3  # one plane call per virtual step and logical step
    assert conv_macs(_three_by_three(), (4, 4)) == 1152 != dense_synops(_three_by_three(), (4, 4)) == 800
    assert dense_synops(_one_by_one(), (4, 4)) == conv_macs(_one_by_one(), (4, 4)) == 96


def test_effective_synops_counts_nonzero_inputs_and_nonzero_weights_like_neurobench():
    conv = _three_by_three()
    x = torch.zeros(1, 4, 4, 4)
    x[0, 0, 0, 0] = 0.3  # one corner element: it reaches 2 x 2 outputs in each of 2 output channels
    assert effective_synops(x, conv) == float(sops_from_counts(x != 0, conv)) == 8
    with torch.no_grad():
        conv.weight[0, 0, 1, 1] = 0.0  # the centre tap: the one joining the corner input to output (0, 0)
    assert effective_synops(x, conv) == 7  # NeuroBench skips zero weights; SOPs count every weight
    assert effective_synops(torch.ones(2, 2, 4, 4), _one_by_one()) == 2 * 96  # summed over the batch
    depthwise = torch.nn.Conv2d(4, 4, 3, padding=1, groups=4)  # each input channel reaches one output channel
    assert effective_synops(torch.ones(1, 4, 4, 4), depthwise) == dense_synops(depthwise, (4, 4)) == 4 * 100


def test_memory_bits_and_energy_of_a_spike_fed_3x3_conv_in_each_network():
    layer = LayerTraffic("spk", "spiking", weights=72, inputs=64, outputs=32, timesteps=2, virtual_steps=3)
    snn = memory_bits(layer, "snn", COSTS["fp32"])
    # weights 32 b x 72 x T, spikes 64 x T x P at 1 bit, membranes 32 b x 32 x T, LIF state 32 b x 64 x (T - 1)
    assert snn == {"weights": 4608, "inputs": 384, "outputs": 2048, "state_read": 2048, "state_written": 2048}
    sram = MEMORY["sram_8kb"]  # 10 pJ per 64 bits
    assert memory_energy_mj(layer, "snn", COSTS["fp32"], sram) == pytest.approx(11136 * 10 / 64 * 1e-9)
    assert memory_bits(layer, "snn", COSTS["fp32"], "membranes")["inputs"] == 64 * 2 * 32
    assert memory_energy_mj(layer, "snn", COSTS["fp32"], sram, "membranes") == pytest.approx(14848 * 10 / 64 * 1e-9)
    # the ANN twin and the int8 ANN run once, at 32 and 8 bits: weights + inputs + outputs = 168 elements
    assert memory_energy_mj(layer, "ann", COSTS["fp32"], sram) == pytest.approx(32 * 168 * 10 / 64 * 1e-9)
    assert memory_energy_mj(layer, "qann", COSTS["fp32"], sram) == pytest.approx(8 * 168 * 10 / 64 * 1e-9)
    assert sum(memory_bits(layer, "snn", COSTS["int8"]).values()) == 8 * 144 + 384 + 8 * 64 + 2 * 8 * 64


def test_memory_of_a_1x1_encoder_is_one_pass_in_every_network():
    layer = LayerTraffic("enc", "encoder", weights=9, inputs=32, outputs=48, timesteps=4)
    for network, bits in (("snn", 32), ("ann", 32), ("qann", 8)):
        assert sum(memory_bits(layer, network, COSTS["fp32"]).values()) == bits * (9 + 32 + 48)
    assert memory_energy_mj(layer, "snn", COSTS["fp32"], MEMORY["dram"]) == pytest.approx(32 * 89 * 1300 / 64 * 1e-9)


def test_totals_with_memory_match_hand_computation_and_keep_the_compute_keys():
    rows = [
        {"kind": "encoder", "macs": 192, "macs_per_step": 192, "sops": 0},  # 1x1 conv 3 -> 4 on 4x4
        {"kind": "spiking", "macs": 1152, "macs_per_step": 1152, "sops": 800},  # 3x3 pad-1 conv 4 -> 2, T = 1
    ]
    traffic = [
        LayerTraffic("enc", "encoder", weights=16, inputs=48, outputs=64),
        LayerTraffic("spk", "spiking", weights=72, inputs=64, outputs=32, virtual_steps=2, spikes=32),
    ]
    plain = energy_totals(rows, COSTS["fp32"])
    e = energy_totals(rows, COSTS["fp32"], traffic, MEMORY["sram_8kb"])
    assert {k: v for k, v in e.items() if k in plain} == plain  # the compute-only figures are unchanged
    pj = 10 / 64 * 1e-9  # mJ per bit
    # bits: encoder 32 x (16 + 48 + 64) = 4096; spike-fed 32 x 72 + 64 x 2 + 32 x 32 = 3456 (SNN), 32 x 168 (ANN)
    assert e["snn_mem_mJ"] == pytest.approx(7552 * pj)  # 1180 pJ
    assert e["ann_mem_mJ"] == pytest.approx(9472 * pj)  # 1480 pJ
    assert e["snn_total_mJ"] == pytest.approx((4.6 * 192 + 0.9 * 800) * 1e-9 + 7552 * pj)  # 2783.2 pJ
    assert e["ann_total_mJ"] == pytest.approx(4.6 * 1344 * 1e-9 + 9472 * pj)  # 7662.4 pJ
    assert e["total_ratio"] == pytest.approx(7662.4 / 2783.2)
    # int8: encoder 8 x 128 = 1024; spike-fed 8 x 72 + 128 + 8 x 32 = 960 (SNN), 8 x 168 = 1344 (QANN)
    assert e["snn_int8_total_mJ"] == pytest.approx((0.23 * 192 + 0.03 * 800) * 1e-9 + 1984 * pj)  # 378.16 pJ
    assert e["qann_int8_total_mJ"] == pytest.approx(0.23 * 1344 * 1e-9 + 2368 * pj)  # 679.12 pJ
    assert e["qann_total_ratio"] == pytest.approx(679.12 / 378.16)
    # reading membranes instead of spikes: 64 x 32 bits instead of 64 x 2; at T = 1 the SNN then moves what the ANN does
    assert e["snn_mem_membranes_mJ"] == pytest.approx(e["ann_mem_mJ"])
    assert e["snn_int8_mem_membranes_mJ"] == pytest.approx(e["qann_int8_mem_mJ"])
    assert e["memory"]["table"] == "sram_8kb" and "Horowitz" in e["memory"]["source"]


def test_neurobench_sparsity_and_synaptic_operations_per_image():
    layers = [
        LayerTraffic("enc", "encoder", 9, 32, 48, effective_ops=90, dense_ops=96),
        LayerTraffic("a", "spiking", 72, 32, 32, virtual_steps=2, spikes=16, effective_ops=100, dense_ops=400),
        LayerTraffic("b", "spiking", 72, 64, 32, timesteps=2, virtual_steps=3, spikes=40, effective_ops=50),
    ]
    assert activation_sparsity(layers) == pytest.approx(1 - 56 / (32 * 2 + 64 * 2 * 3))  # 0.875
    assert activation_sparsity(layers[:1]) == 0.0  # no neuron output: NeuroBench's 0.0
    assert synaptic_operations(layers) == {"Effective_MACs": 90, "Effective_ACs": 150, "Dense": 496}


def test_footprint_counts_parameters_and_buffers_once_in_bytes():
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3))
    # conv 6 + 3 and BN 3 + 3 float32 parameters; BN buffers: mean 3, var 3 float32 and one int64 counter
    assert footprint_bytes(net) == 15 * 4 + 6 * 4 + 8
    conv = _one_by_one()
    assert footprint_bytes(torch.nn.Sequential(conv, conv)) == 9 * 4  # a shared module counts once
    assert footprint_bytes(_one_by_one().half()) == 9 * 2


@pytest.mark.parametrize(
    "make",
    [
        lambda: LayerTraffic("x", "pooling", 1, 1, 1),
        lambda: LayerTraffic("x", "spiking", 1, 1, 1, timesteps=0),
        lambda: LayerTraffic("x", "spiking", -1, 1, 1),
        lambda: memory_bits(LayerTraffic("x", "spiking", 1, 1, 1), "cnn"),
        lambda: memory_bits(LayerTraffic("x", "spiking", 1, 1, 1), "snn", snn_inputs="codes"),
    ],
)
def test_bad_traffic_input_is_one_sentence(make):
    with pytest.raises(SpikeYoloError, match=r"use one of|1 or more|0 or more"):
        make()


def test_the_ann_twin_of_an_event_model_runs_every_bin():
    """An event sample's T bins each pass through the ANN twin: its MACs and its memory after the encoder are T-fold."""
    rows = [
        {"kind": "encoder", "macs": 2 * 192, "macs_per_step": 192, "sops": 0, "bins": 2},  # 2 bins through the encoder
        {"kind": "spiking", "macs": 2 * 1152, "macs_per_step": 1152, "sops": 800},
    ]
    traffic = [
        LayerTraffic("enc", "encoder", weights=16, inputs=2 * 48, outputs=2 * 64),  # covers both bins
        LayerTraffic("spk", "spiking", weights=72, inputs=64, outputs=32, timesteps=2, virtual_steps=2, spikes=32),
    ]
    e = energy_totals(rows, COSTS["fp32"], traffic, MEMORY["sram_8kb"])
    one_bin = energy_totals([{**r, "bins": 1} for r in rows], COSTS["fp32"], traffic, MEMORY["sram_8kb"])
    assert e["ann_macs"] == 2 * (192 + 1152) and one_bin["ann_macs"] == 192 + 1152
    pj = 10 / 64 * 1e-9
    encoder_bits, spiking_bits = 32 * (16 + 96 + 128), 32 * (72 + 64 + 32)
    assert e["ann_mem_mJ"] == pytest.approx((encoder_bits + 2 * spiking_bits) * pj)
    assert e["snn_mem_mJ"] == one_bin["snn_mem_mJ"]  # the SNN's own traffic already counts its T steps
