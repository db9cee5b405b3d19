"""fuse() for speed: chain forms, the alignment scale folded into the weights, exact in float64, idempotent."""

import copy
from pathlib import Path

import pytest
import torch
from ultralytics.nn.tasks import DetectionModel, yaml_model_load

from spikeyolo_ibra.blocks import FactoredChain, LinearChain
from spikeyolo_ibra.fusion import (
    CHAINS_ENV,
    ChainFormError,
    chain_form,
    chains,
    fold_alignment_scale,
    fuse_synapses,
    set_chains,
)
from spikeyolo_ibra.neuron import IBLIF, NeuronConfig
from spikeyolo_ibra.spike import Equivalence, Monitor, calibrate_bn, run_pair, to_spike_driven

CFG = Path(__file__).resolve().parents[1] / "cfg"
TINY = Path(__file__).resolve().parent / "fixtures" / "tiny-spikeyolo.yaml"


@pytest.fixture(scope="module")
def firing_tiny(asset_images) -> DetectionModel:
    """The tiny model (T = 2, K = 5, N = 7.5, leak 0.5) with BN statistics that make it fire, float64, eval."""
    torch.manual_seed(0)
    return calibrate_bn(DetectionModel(yaml_model_load(TINY), verbose=False), asset_images(64)).double().eval()


def test_fuse_is_exact_idempotent_and_prescales_every_neuron(firing_tiny, asset_images):
    x = asset_images(64).double()
    fused = copy.deepcopy(firing_tiny).fuse(verbose=False)
    with torch.no_grad():
        torch.testing.assert_close(fused(x)[0], firing_tiny(x)[0], rtol=0, atol=1e-9)
        again = copy.deepcopy(fused).fuse(verbose=False)
        torch.testing.assert_close(again(x)[0], fused(x)[0], rtol=0, atol=0)
    neurons = [m for m in fused.modules() if isinstance(m, IBLIF)]
    assert neurons and all(n.prescaled for n in neurons)
    assert any(isinstance(m, FactoredChain) for m in fused.modules())


def test_prescaled_neuron_gives_the_same_codes_in_two_passes():
    config = NeuronConfig(T=3, bits=5, scale=7.5, beta=0.5)
    u = torch.randn(3 * 4, 50, dtype=torch.float64) * 2 + 1
    neuron, prescaled = IBLIF(config), IBLIF(config)
    prescaled.prescaled = True
    assert torch.equal(prescaled.codes(u * 7.5), neuron.codes(u))
    assert torch.equal(prescaled(u * 7.5), neuron.codes(u))  # emits the codes themselves
    assert prescaled.unit == 1.0 and neuron.unit == 7.5


def test_chain_form_switch(monkeypatch, firing_tiny):
    monkeypatch.setenv(CHAINS_ENV, "dense")
    assert chain_form() == "dense"
    dense = fuse_synapses(copy.deepcopy(firing_tiny))
    assert not any(isinstance(m, (LinearChain, FactoredChain)) for m in dense.modules())
    monkeypatch.setenv(CHAINS_ENV, "diagonal")
    with pytest.raises(ValueError, match=f"^{CHAINS_ENV}='diagonal' is invalid: use factored or dense.$"):
        copy.deepcopy(firing_tiny).fuse(verbose=False)
    monkeypatch.delenv(CHAINS_ENV)
    assert chain_form() == "factored"


def test_chains_set_in_code_win_over_the_command_line_default(monkeypatch, firing_tiny):
    monkeypatch.setenv(CHAINS_ENV, "factored")
    with chains("dense"):
        assert chain_form() == "dense"
        dense = copy.deepcopy(firing_tiny).fuse(verbose=False)
    assert chain_form() == "factored"
    assert not any(isinstance(m, (LinearChain, FactoredChain)) for m in dense.modules())
    set_chains("dense")
    try:
        assert chain_form() == "dense"
    finally:
        set_chains(None)
    assert chain_form() == "factored"
    with pytest.raises(ChainFormError, match="^chains='diagonal' is invalid: use factored or dense.$"):
        set_chains("diagonal")


def test_scale_n_fused_keeps_the_training_parameter_count():
    model = DetectionModel(yaml_model_load(CFG / "ibra-spikeyolo.yaml"), verbose=False).eval()
    trained = sum(p.numel() for p in model.parameters())
    fused = sum(p.numel() for p in copy.deepcopy(model).fuse(verbose=False).parameters())
    dense = sum(p.numel() for p in fuse_synapses(model, "dense").fuse(verbose=False).parameters())
    assert fused < trained < dense  # BN folded away, chains factored; dense chains grow 2.6x
    assert dense > 2.5 * fused


@pytest.mark.parametrize("form", ["factored", "dense", "unfused"])
def test_spike_mode_and_its_energy_do_not_depend_on_the_fused_form(form, firing_tiny, asset_images):
    """The spike runtime builds its own graph: from any form, the same codes, SOPs and energy, and PASS."""
    x = asset_images(64).double()
    model = copy.deepcopy(firing_tiny)
    if form != "unfused":
        fold_alignment_scale(fuse_synapses(model, form)).fuse(verbose=False)
    spike = to_spike_driven(model)
    eq = Equivalence("float64")
    with Monitor(spike) as monitor:
        run_pair(model, spike, x, eq, conf=0.001, iou=0.7)
        rows = monitor.rows()
    assert eq.passed and eq.code_flips == 0 < eq.codes
    reference = to_spike_driven(firing_tiny)
    with Monitor(reference) as ref_monitor, torch.no_grad():
        reference(x)
        ref_rows = ref_monitor.rows()
    assert [r.get("sops", 0) for r in rows] == pytest.approx([r.get("sops", 0) for r in ref_rows], rel=1e-12)
    assert [r["macs"] for r in rows] == [r["macs"] for r in ref_rows]
