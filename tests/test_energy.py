"""Operation counts and energy against a network computed by hand."""

import pytest
import torch
from ultralytics.utils.torch_utils import fuse_conv_and_bn

from spikeyolo_ibra.blocks import SpikeConv, SpikeDownsample
from spikeyolo_ibra.energy import COSTS, energy_totals, layer_energy_mj
from spikeyolo_ibra.neuron import NeuronConfig, neuron_context
from spikeyolo_ibra.spike import Monitor, to_spike_driven


def test_energy_of_a_two_conv_network_matches_hand_computation():
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
