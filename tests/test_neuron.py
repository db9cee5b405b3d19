"""The IB-LIF neuron against hand-computed tables."""

import pytest
import torch

from spikeyolo_ibra.neuron import IBLIF, NeuronConfig, NeuronConfigError, make_neuron, neuron_context, quantize


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_codes_table_with_boundaries_and_ties(dtype):
    # K = 2 bits (Q = 3), N = 2: q = round_half_even(clip(2u, 0, 3))
    cfg = NeuronConfig(bits=2, scale=2.0)
    u = torch.tensor([-1.0, 0.0, 0.25, 0.26, 0.5, 0.75, 1.25, 1.5, 1.75, 10.0], dtype=dtype)
    expected_q = torch.tensor([0, 0, 0, 1, 1, 2, 2, 3, 3, 3], dtype=dtype)  # 0.5 -> 0 and 2.5 -> 2 (ties to even)
    neuron = IBLIF(cfg)
    assert torch.equal(neuron.codes(u), expected_q)
    assert torch.equal(neuron(u), expected_q / 2)
    assert neuron(u).dtype == dtype


def test_default_is_the_published_ibra_setting():
    cfg = NeuronConfig()
    assert (cfg.T, cfg.bits, cfg.scale, cfg.coding) == (1, 9, 100.0, "binary")
    assert cfg.max_code == 511 and cfg.virtual_steps == 9
    assert cfg.ceiling == pytest.approx(5.11)


def test_range_alignment_uses_high_levels():
    u = torch.linspace(0, 5, 1001)
    unaligned = quantize(u, 1.0, 511).unique().numel()
    aligned = quantize(u, 100.0, 511).unique().numel()
    assert unaligned == 6 and aligned == 501


def test_i_lif_matches_spikeyolo_definition():
    # SpikeYOLO I-LIF: s = round(clamp(u, 0, 4)), u[t] = 0.25 (u[t-1] - s[t-1]) + x[t], reset detached
    cfg = NeuronConfig(T=3, coding="unary", levels=4, scale=1.0)
    x = torch.randn(3 * 5, 7) * 3
    ref, u, s = [], None, None
    for xt in x.reshape(3, 5, 7):
        u = xt if u is None else 0.25 * (u - s) + xt
        s = torch.round(torch.clamp(u, 0, 4))
        ref.append(s)
    assert torch.equal(IBLIF(cfg)(x), torch.stack(ref).reshape(15, 7))
    assert cfg.virtual_steps == 4 and cfg.max_code == 4


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_leak_and_soft_reset_over_three_steps(dtype):
    # bits 3 (Q = 7), N = 1, beta = 0.5. Inputs per step for one neuron: 2.6, 1.0, 0.2
    # t0: u = 2.6 -> q = 3, s = 3
    # t1: u = 0.5 (2.6 - 3) + 1.0 = 0.8 -> q = 1
    # t2: u = 0.5 (0.8 - 1) + 0.2 = 0.1 -> q = 0
    cfg = NeuronConfig(T=3, bits=3, scale=1.0, beta=0.5)
    x = torch.tensor([[2.6], [1.0], [0.2]], dtype=dtype)
    neuron = IBLIF(cfg)
    assert neuron.codes(x).flatten().tolist() == [3.0, 1.0, 0.0]
    assert torch.equal(neuron(x), neuron.codes(x))


def test_straight_through_gradient_window():
    cfg = NeuronConfig(bits=2, scale=2.0)  # window 0 <= 2u <= 3
    u = torch.tensor([-0.1, 0.0, 0.7, 1.5, 1.6], requires_grad=True)
    IBLIF(cfg)(u).sum().backward()
    assert u.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_reset_gradient_detached_or_not():
    x = torch.tensor([[1.0], [1.0]], requires_grad=True)
    IBLIF(NeuronConfig(T=2, bits=3, scale=1.0, beta=0.5, detach_reset=True))(x)[1].sum().backward()
    detached = x.grad.flatten().tolist()
    x.grad = None
    IBLIF(NeuronConfig(T=2, bits=3, scale=1.0, beta=0.5, detach_reset=False))(x)[1].sum().backward()
    attached = x.grad.flatten().tolist()
    assert detached == [0.5, 1.0]  # du1/dx0 = beta
    assert attached == [0.0, 1.0]  # beta * (1 - ds0/du0) = 0


@pytest.mark.parametrize(
    ("mapping", "key"),
    [
        ({"bits": 0}, "bits"),
        ({"bits": 17}, "bits"),
        ({"scale": 0}, "scale"),
        ({"scale": -1.0}, "scale"),
        ({"T": 0}, "T"),
        ({"coding": "gray"}, "coding"),
        ({"coding": "unary", "levels": 2.5}, "levels"),
        ({"beta": 2}, "beta"),
        ({"bitz": 4}, "bitz"),
    ],
)
def test_impossible_settings_name_the_key(mapping, key):
    with pytest.raises(NeuronConfigError, match=rf"neuron\.{key}"):
        NeuronConfig.from_mapping(mapping)


def test_context_sets_the_neurons_built_inside():
    with neuron_context(NeuronConfig(bits=4)):
        assert make_neuron().config.bits == 4
    assert make_neuron().config.bits == 9
    with neuron_context(NeuronConfig(type="relu")):
        assert isinstance(make_neuron(), torch.nn.ReLU)
