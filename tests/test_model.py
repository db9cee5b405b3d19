"""Blocks, configs and registration: shapes, parameter counts, fusion, training signal, stock models untouched."""

import copy

import pytest
import torch
from conftest import CFG, REPO
from ultralytics import YOLO
from ultralytics.cfg import get_cfg
from ultralytics.nn.tasks import DetectionModel

from spikeyolo_ibra.blocks import SpikeConvBlock, SpikingSynapse
from spikeyolo_ibra.head import SpikeDetect
from spikeyolo_ibra.neuron import IBLIF

# SpikeYOLO's published sizes (80 classes): n 13.2M, s 23.1M, m 47.8M, l 68.5M; ours must be within 2 %.
PUBLISHED_PARAMS = {"n": 13.2e6, "s": 23.1e6, "m": 47.8e6, "l": 68.5e6}
WIDTHS = {"n": (96, 192, 384), "s": (128, 256, 512), "m": (160, 320, 640), "l": (192, 384, 768)}


def build(name: str, **overrides) -> DetectionModel:
    cfg = YOLO(str(CFG / name)).model.yaml
    cfg = {**copy.deepcopy(cfg), **overrides}
    return DetectionModel(cfg, verbose=False)


@pytest.mark.parametrize("config", ["ibra-spikeyolo", "spikeyolo"])
@pytest.mark.parametrize("scale", ["n", "s", "m", "l"])
def test_parameter_counts_match_spikeyolo(config, scale):
    model = YOLO(str(CFG / f"{config}-{scale}.yaml")).model
    params = sum(p.numel() for p in model.parameters())
    assert abs(params / PUBLISHED_PARAMS[scale] - 1) < 0.02, params
    assert model.yaml["scale"] == scale


@pytest.mark.parametrize("scale", ["n", "s", "m", "l"])
def test_feature_shapes_per_scale(scale):
    model = YOLO(str(CFG / f"ibra-spikeyolo-{scale}.yaml")).model.eval()
    detect = model.model[-1]
    feats = []
    detect.register_forward_pre_hook(lambda m, args: feats.extend(args[0]))
    with torch.no_grad():
        y, _ = model(torch.zeros(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == list(WIDTHS[scale])
    assert [f.shape[-1] for f in feats] == [8, 4, 2]
    assert y.shape == (1, 4 + 80, 8 * 8 + 4 * 4 + 2 * 2)
    assert detect.stride.tolist() == [8.0, 16.0, 32.0]


def test_default_scale_without_warning(caplog):
    model = YOLO(str(CFG / "ibra-spikeyolo.yaml"))
    assert model.model.yaml["scale"] == "n"
    assert "no model scale" not in caplog.text


def test_neuron_mapping_reaches_every_neuron():
    model = build("ibra-spikeyolo.yaml", neuron={"bits": 4, "scale": 3.0, "T": 2})
    neurons = [m for m in model.modules() if isinstance(m, IBLIF)]
    assert len(neurons) > 80
    assert {(n.config.bits, n.config.scale, n.config.T) for n in neurons} == {(4, 3.0, 2)}


def test_ann_twin_has_no_spiking_neurons_and_same_weights():
    ann = YOLO(str(CFG / "ann-spikeyolo.yaml")).model
    snn = YOLO(str(CFG / "ibra-spikeyolo.yaml")).model
    assert not any(isinstance(m, IBLIF) for m in ann.modules())
    assert sum(p.numel() for p in ann.parameters()) == sum(p.numel() for p in snn.parameters())


@pytest.mark.parametrize("T", [1, 2])
def test_fuse_keeps_outputs_equal(T):
    torch.manual_seed(0)
    model = build("ibra-spikeyolo.yaml", neuron={"T": T}).double().eval()
    for m in model.modules():  # non-trivial BN statistics so fusion has something to fold
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.3)
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


def test_loss_is_finite_and_falls():
    torch.manual_seed(0)
    model = YOLO(str(CFG / "ibra-spikeyolo.yaml")).model
    model.nc, model.names = 80, {i: str(i) for i in range(80)}
    model.args = get_cfg()
    model.train()
    batch = {
        "img": torch.rand(2, 3, 128, 128),
        "cls": torch.tensor([[1.0], [3.0], [5.0]]),
        "bboxes": torch.tensor([[0.5, 0.5, 0.4, 0.4], [0.3, 0.3, 0.2, 0.3], [0.6, 0.7, 0.5, 0.3]]),
        "batch_idx": torch.tensor([0.0, 1.0, 1.0]),
    }
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    losses = []
    for _ in range(8):
        loss, _ = model.loss(batch)
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
        losses.append(loss.sum().item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert max(losses[-3:]) < 0.9 * losses[0], losses


def test_stock_yolov8n_untouched():
    model = YOLO("yolov8n.yaml").model
    assert sum(p.numel() for p in model.parameters()) == 3_157_200
    assert not any(isinstance(m, (SpikeDetect, IBLIF)) for m in model.modules())


def test_register_is_idempotent():
    import ultralytics.nn.tasks as tasks

    import spikeyolo_ibra

    parse = tasks.parse_model
    spikeyolo_ibra.register()
    assert tasks.parse_model is parse


def test_head_init_does_not_depend_on_what_was_parsed_before():
    """Ultralytics' parser sets Detect.legacy process-wide; a seed must still build the same spiking head."""
    from ultralytics.nn.tasks import yaml_model_load

    def head_weights() -> list[torch.Tensor]:
        torch.manual_seed(0)
        model = DetectionModel(yaml_model_load(str(REPO / "tests" / "fixtures" / "tiny-spikeyolo.yaml")), verbose=False)
        return [p.detach().clone() for p in model.model[-1].parameters()]

    first = head_weights()
    DetectionModel(yaml_model_load("yolov8n.yaml"), verbose=False)  # sets Detect.legacy = True
    assert all(torch.equal(a, b) for a, b in zip(first, head_weights(), strict=True))
