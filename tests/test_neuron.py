"""The IB-LIF neuron against hand-computed tables, under autocast, and the one home of T."""

import copy
from pathlib import Path

import pytest
import torch
from ultralytics.nn.tasks import DetectionModel, yaml_model_load

from spikeyolo_ibra.neuron import (
    IBLIF,
    NeuronConfig,
    NeuronConfigError,
    Rectifier,
    make_neuron,
    migrate_timesteps,
    neuron_context,
    quantize,
    set_timesteps,
)

TINY = Path(__file__).resolve().parent / "fixtures" / "tiny-spikeyolo.yaml"


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
        assert isinstance(make_neuron(), Rectifier)


# --- AMP: autocast hands the neuron float16/bfloat16 membranes ------------------------------------------------------
def test_codes_under_autocast_equal_float32_codes():
    """A bfloat16 membrane (what autocast produces) gets the codes float32 arithmetic gives that same membrane."""
    torch.manual_seed(0)
    u = (torch.randn(64, 257) * 2 + 2.5).to(torch.bfloat16)  # values that reach the top of the 9-bit range
    config = NeuronConfig()  # K = 9, N = 100
    expected = quantize(u.float(), config.scale, config.max_code)
    neuron = IBLIF(config)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        codes = neuron.codes(u)
        s = neuron(u)
    assert s.dtype == torch.bfloat16  # the emitted value keeps the input's dtype: a half-precision model keeps working
    assert codes.dtype == torch.float32  # codes stay wide: bfloat16 holds integers only up to 256
    assert torch.equal(codes, expected)
    naive = torch.round(torch.clamp(u * config.scale, 0, config.max_code))  # the same arithmetic in bfloat16
    assert not torch.equal(naive.float(), expected)  # what the widening is for


def test_straight_through_gradient_under_autocast():
    u = torch.tensor([-0.125, 0.0, 2.0, 5.0, 5.25], dtype=torch.bfloat16, requires_grad=True)  # exact in bf16
    with torch.autocast("cpu", dtype=torch.bfloat16):
        IBLIF(NeuronConfig())(u).float().sum().backward()
    assert u.grad.dtype == torch.bfloat16
    assert u.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_membrane_over_timesteps_integrates_in_float32():
    config = NeuronConfig(T=4, bits=9, scale=100.0, beta=0.25)
    torch.manual_seed(0)
    x = (torch.rand(4 * 3, 50) * 4).to(torch.bfloat16)
    neuron = IBLIF(config)
    assert torch.equal(neuron.codes(x), neuron.codes(x.float()))


def test_model_trains_a_step_under_cpu_autocast():
    model = DetectionModel(yaml_model_load(TINY), verbose=False)
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.rand(2, 3, 64, 64))
    loss = out["boxes"].float().abs().mean() + out["scores"].float().abs().mean()
    loss.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


# --- T lives in the shared neuron settings --------------------------------------------------------------------------
def test_set_timesteps_changes_every_holder_and_the_yaml():
    model = DetectionModel(yaml_model_load(TINY), verbose=False)  # T = 2
    holders = [m for m in model.modules() if isinstance(getattr(m, "config", None), NeuronConfig)]
    assert {id(m.config) for m in holders} == {id(model.model[0].config)}  # one shared object
    set_timesteps(model, 3)
    assert {m.config.T for m in holders} == {3} and model.model[0].T == model.model[-1].T == 3
    assert len({id(m.config) for m in holders}) == 1 and model.yaml["neuron"]["T"] == 3
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        y = model.eval()(x)[0]
    assert y.shape[0] == 2  # the head averaged the 3 logical steps away
    with pytest.raises(NeuronConfigError, match="neuron.T=0 is invalid"):
        set_timesteps(model, 0)


def test_state_of_0_1_moves_t_into_the_settings():
    state = {"first": True, "T": 4, "training": False}
    migrated = migrate_timesteps(state)
    assert "T" not in migrated and migrated["config"].T == 4 and state["T"] == 4
    assert migrate_timesteps(migrated) is migrated


def test_copies_share_settings_among_themselves():
    model = DetectionModel(yaml_model_load(TINY), verbose=False)
    clone = copy.deepcopy(model)
    assert len({id(m.config) for m in clone.modules() if isinstance(getattr(m, "config", None), NeuronConfig)}) == 1
