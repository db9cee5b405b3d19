"""The spike-driven runtime: encoding tables, integer vs spike equivalence on firing networks, SOPs, on any device."""

import copy

import numpy as np
import pytest
import torch

from spikeyolo_ibra.blocks import SpikeConv, SpikeConvBlock
from spikeyolo_ibra.energy import sops_from_counts
from spikeyolo_ibra.neuron import IBLIF, NeuronConfig, neuron_context, set_timesteps
from spikeyolo_ibra.spike import (
    Equivalence,
    Monitor,
    calibrate_bn,
    encode,
    plane_weights,
    run_pair,
    spike_counts,
    to_spike_driven,
)
from spikeyolo_ibra.spike.measure import LayerStats
from spikeyolo_ibra.spike.runtime import SpikeDrivenSynapse, require_binary

META = torch.device("meta")


def test_encoding_tables():
    binary = NeuronConfig(bits=3, scale=2.0)
    q = torch.tensor([0.0, 1.0, 5.0, 6.0, 7.0])
    assert encode(q, binary).T.tolist() == [[0, 0, 0], [1, 0, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1]]
    assert plane_weights(binary).tolist() == [0.5, 1.0, 2.0]
    assert spike_counts(q, binary).tolist() == [0, 1, 2, 2, 3]
    unary = NeuronConfig(coding="unary", levels=4, scale=1.0)
    assert encode(torch.tensor([0.0, 2.0, 4.0]), unary).T.tolist() == [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]]
    assert plane_weights(unary).tolist() == [1.0] * 4
    for config in (binary, unary):  # q / N = sum_k w_k b_k
        codes = torch.arange(config.max_code + 1, dtype=torch.float64)
        weights = plane_weights(config).view(-1, 1)
        assert torch.equal((encode(codes, config) * weights).sum(0), codes / config.scale)


def test_non_binary_input_is_refused():
    require_binary(torch.tensor([0.0, 1.0]))
    with pytest.raises(AssertionError):
        require_binary(torch.tensor([0.0, 0.5]))


@pytest.mark.slow
@pytest.mark.parametrize("T", [1, 2])
def test_float64_equivalence_on_a_firing_network(firing_fused, asset_images, T):
    model = set_timesteps(copy.deepcopy(firing_fused), T).double()
    spike = to_spike_driven(model)
    eq = Equivalence("float64")
    with Monitor(spike) as monitor:
        _, det = run_pair(model, spike, asset_images().double(), eq, conf=0.001, iou=0.7)
    rows = [r for r in monitor.rows() if r["kind"] == "spiking"]
    config = next(m.config for m in model.modules() if isinstance(m, IBLIF))
    # the network fires: a stated share of non-zero codes, and codes in the upper half of the range
    codes = sum(r["neurons"] for r in rows)
    active = sum(r["nonzero_share"] * r["neurons"] for r in rows) / codes
    assert active >= 0.05, active
    assert max(r["max_code_seen"] for r in rows) > config.max_code / 2
    assert sum(len(d) for d in det) > 0
    assert eq.code_flips == 0 and eq.codes > 0
    assert eq.detections_identical and eq.passed
    assert eq.max_abs_diff < 1e-8
    for r in rows:  # SOPs counted on the binary planes equal SOPs derived from the integer codes
        assert r["sops"] == pytest.approx(r["sops_from_codes"], rel=1e-12, abs=0)


@pytest.mark.slow
def test_sequential_accumulation_equals_batched(firing_fused, asset_images):
    model = copy.deepcopy(firing_fused).double()
    x = asset_images()[:1].double()
    with torch.no_grad():
        batched = to_spike_driven(model)(x)[0]
        sequential = to_spike_driven(model, accumulate="sequential")(x)[0]
    assert (batched - sequential).abs().max() < 1e-8


@pytest.mark.slow
def test_float32_numbers_are_reported(firing_fused, asset_images):
    """float32: flips may occur (summation order); the numbers are reported, not asserted equal."""
    reports = {}
    for name, accumulator in (("float32", None), ("float32+float64 accumulation", torch.float64)):
        eq = Equivalence("float32")
        spike = to_spike_driven(firing_fused, accumulator=accumulator)
        run_pair(firing_fused, spike, asset_images(), eq, conf=0.001, iou=0.7)
        reports[name] = eq.as_dict()
        assert 0 <= eq.flip_fraction <= 1 and np.isfinite(eq.max_abs_diff)
    print(reports)


# --- the runtime on a device other than the CPU (the CPU proxy for CUDA) ----------------------------------------------
@pytest.mark.parametrize("config", [NeuronConfig(bits=3, scale=2.0), NeuronConfig(coding="unary", levels=4, scale=1)])
def test_encoding_and_plane_weights_on_the_data_device(config):
    q = torch.empty(2, 3, 4, 4, device=META)
    assert encode(q, config).device == META and spike_counts(q, config).device == META
    assert plane_weights(config, torch.float32, META).device == META


@pytest.mark.parametrize("accumulate", ["batched", "sequential"])
def test_spike_driven_synapse_and_statistics_on_meta(accumulate):
    config = NeuronConfig(bits=3, scale=2.0)
    with neuron_context(config):
        pair = SpikeConv(4, 6, 3).eval()
    pair.synapse.conv = torch.nn.Conv2d(4, 6, 3, padding=1, bias=True)  # what fuse() leaves: one biased conv
    synapse = SpikeDrivenSynapse(pair.neuron, pair.synapse.conv, accumulate).to(META)
    synapse.stats = LayerStats("layer", config)
    y = synapse(torch.empty(2, 4, 5, 5, device=META))
    assert y.device == META and y.shape == (2, 6, 5, 5)
    assert {t.device for t in synapse.stats.sums.values()} == {META}
    assert synapse.stats.histogram.device == META
    assert sops_from_counts(torch.empty(2, 4, 5, 5, device=META), synapse.conv).device == META


def test_a_spike_driven_model_runs_on_meta():
    block = SpikeConvBlock(8, 8, 2, 3).eval()
    block.mix1.fuse_synapse()
    block.mix2.fuse_synapse()
    for pair in (block.sep.pw1, block.sep.dw):
        pair.synapse = torch.nn.Conv2d(
            pair.synapse.conv.in_channels,
            pair.synapse.conv.out_channels,
            pair.synapse.conv.kernel_size,
            padding=pair.synapse.conv.padding,
            groups=pair.synapse.conv.groups,
        )
    block.sep.pw2.fuse_synapse()
    spike = to_spike_driven(block).to(META)
    assert spike(torch.empty(1, 8, 6, 6, device=META)).device == META


def test_calibration_sets_statistics_and_restores_momentum():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4, momentum=0.03))
    x = torch.rand(2, 3, 8, 8)
    calibrate_bn(net, x)
    with torch.no_grad():
        y = net[0](x)
    assert torch.allclose(net[1].running_mean, y.mean((0, 2, 3)), atol=1e-6)  # the data's own mean, not 0.03 of it
    assert net[1].momentum == 0.03 and not net.training
