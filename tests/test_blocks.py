"""Blocks: exact fusion of the re-parameterisable chains (borders included), whole-model fusion, width checks."""

import copy
from pathlib import Path

import pytest
import torch
from ultralytics.nn.tasks import DetectionModel, yaml_model_load

from spikeyolo_ibra.blocks import SpikeAllConvBlock, SpikeConvBlock, SpikingSynapse

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


def test_chain_fusion_is_exact_including_borders():
    torch.manual_seed(0)
    block = SpikeConvBlock(8, 8, 3, 7).double().eval()
    for m in block.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
    chain = block.mix1.synapse
    x = torch.randn(2, 8, 5, 6, dtype=torch.float64)
    torch.testing.assert_close(chain.fused()(x), chain(x), rtol=0, atol=1e-12)


def test_chain_fuses_where_its_weights_live():
    block = SpikeConvBlock(8, 8, 3, 7).to("meta")
    assert block.mix1.synapse.fused().weight.device == torch.device("meta")


@pytest.mark.parametrize("block", [SpikeConvBlock, SpikeAllConvBlock])
def test_residual_blocks_keep_their_width(block):
    with pytest.raises(ValueError, match=f"{block.__name__} keeps its width, but the YAML gives 16 output channels"):
        block(8, 16)
    assert block(8, 8, 2, 3)(torch.rand(1, 8, 6, 6)).shape == (1, 8, 6, 6)
