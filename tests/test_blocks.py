"""Blocks: exact fusion of the re-parameterisable chains (borders included), whole-model fusion, width checks."""

import copy
from pathlib import Path

import pytest
import torch
from ultralytics.nn.modules import Conv
from ultralytics.nn.tasks import DetectionModel, yaml_model_load

from spikeyolo_ibra.blocks import (
    RepConv3x3,
    SpikeAllConvBlock,
    SpikeConv,
    SpikeConvBlock,
    SpikeDownsample,
    SpikeSPPF,
    SpikingSynapse,
    fold_conv_bn,
)
from spikeyolo_ibra.head import SpikeDetect
from spikeyolo_ibra.neuron import IBLIF, NeuronConfig, Rectifier

CFG = Path(__file__).resolve().parents[1] / "cfg"


def randomise_bn(model: torch.nn.Module, generator: torch.Generator | None = None) -> torch.nn.Module:
    """Non-trivial BN statistics and affine parameters, so that fusion has something to fold."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2, generator=generator)
            m.running_var.uniform_(0.5, 2.0, generator=generator)
            m.weight.data.uniform_(0.5, 1.5, generator=generator)
            m.bias.data.uniform_(-0.1, 0.3, generator=generator)
    return model


@pytest.mark.slow  # scale n in float64; the tiny model's version in test_fusion.py is fast
@pytest.mark.parametrize("T", [1, 2])
def test_fuse_keeps_outputs_equal(T):
    torch.manual_seed(0)
    cfg = {**yaml_model_load(CFG / "ibra-spikeyolo.yaml"), "neuron": {"T": T}}
    model = randomise_bn(DetectionModel(cfg, verbose=False)).double().eval()
    x = torch.rand(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        before = model(x)[0]
        fused = copy.deepcopy(model).fuse(verbose=False)
        after = fused(x)[0]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert all(
        isinstance(m.synapse, torch.nn.Conv2d) or not hasattr(m.synapse, "bn")
        for m in fused.modules()
        if isinstance(m, SpikingSynapse)
    )
    torch.testing.assert_close(after, before, rtol=0, atol=1e-9)


@pytest.mark.parametrize("part", ["mix1", "mix2", "sep"])
def test_chain_fusion_is_exact_including_borders(part):
    """Dense (one k x k conv) and factored (1x1 -> depthwise -> 1x1, one bias) both equal the training chain."""
    torch.manual_seed(0)
    block = randomise_bn(SpikeConvBlock(8, 8, 3, 7)).double().eval()
    chain = block.sep.pw2.synapse if part == "sep" else getattr(block, part).synapse
    x = torch.randn(2, chain.c1, 5, 6, dtype=torch.float64)
    factored = chain.factored()
    for fused in (chain.dense(), factored, factored.dense()):
        torch.testing.assert_close(fused(x), chain(x), rtol=0, atol=1e-12)
    assert [c.bias is not None for c in factored] == [False] * (len(factored) - 1) + [True]  # one bias, at the end
    assert sum(p.numel() for p in factored.parameters()) < sum(p.numel() for p in chain.dense().parameters())


def test_chain_fuses_where_its_weights_live():
    chain = SpikeConvBlock(8, 8, 3, 7).to("meta").mix1.synapse
    assert chain.dense().weight.device == chain.factored()[0].weight.device == torch.device("meta")


@pytest.mark.parametrize("block", [SpikeConvBlock, SpikeAllConvBlock])
def test_residual_blocks_keep_their_width(block):
    with pytest.raises(ValueError, match=f"{block.__name__} keeps its width, but the YAML gives 16 output channels"):
        block(8, 16)
    assert block(8, 8, 2, 3)(torch.rand(1, 8, 6, 6)).shape == (1, 8, 6, 6)


@pytest.mark.parametrize("block", [SpikeConvBlock, SpikeAllConvBlock])
def test_conv_blocks_share_one_layout(block):
    """The two blocks differ only in their mixer: the same state-dict keys for sep, mix1 and mix2 as in 0.2."""
    keys = {k.split(".")[0] for k in block(8, 8, 2, 3).state_dict()}
    assert keys == {"sep", "mix1", "mix2"}
    assert isinstance(block(8, 8, 2, 3).mix1.synapse, RepConv3x3 if block is SpikeConvBlock else Conv)


def test_a_block_built_outside_the_parser_takes_its_neuron_settings():
    """Without a model YAML being parsed, an explicit ``neuron=`` reaches every neuron; without it, the defaults."""
    config = NeuronConfig(T=2, bits=4, scale=10.0)
    parts = [SpikeConvBlock(8, 8, 2, 3, neuron=config), SpikeSPPF(8, 8, neuron=config)]
    parts += [SpikeDownsample(3, 8, neuron=config), SpikeDetect(6, 16, False, (8, 16), neuron=config)]
    for part in parts:
        neurons = [m for m in part.modules() if isinstance(m, IBLIF)]
        assert neurons and all(n.config is config for n in neurons)
    assert parts[2].config is config and parts[3].config is config and parts[3].T == 2
    assert all(n.config == NeuronConfig() for n in SpikeConvBlock(8, 8, 2, 3).modules() if isinstance(n, IBLIF))
    relu = SpikeConv(8, 8, neuron=NeuronConfig(type="relu"))
    assert isinstance(relu.neuron, Rectifier)


def test_bn_folding_is_exact_and_leaves_its_inputs_alone():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 6, 3, 2, 1, bias=False).double()
    bn = randomise_bn(torch.nn.Sequential(torch.nn.BatchNorm2d(6))).double().eval()[0]
    before = conv.weight.clone()
    folded = fold_conv_bn(conv, bn)
    x = torch.randn(2, 4, 7, 9, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), bn(conv(x)), rtol=0, atol=1e-12)
    assert torch.equal(conv.weight, before) and conv.bias is None
    assert (folded.stride, folded.padding, folded.weight.dtype) == ((2, 2), (1, 1), torch.float64)
