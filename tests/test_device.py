"""CPU proxies for the GPU path: every tensor the package makes lands on the data's device, AMP keeps codes exact.

CI has no GPU. A tensor created on the CPU next to weights on another device fails the same way on ``meta`` as on
CUDA ("Expected all tensors to be on the same device"), so fusion, the spike runtime and its statistics run on
``meta`` here; ``torch.autocast("cpu", dtype=torch.bfloat16)`` stands in for CUDA autocast.
"""

import copy

import pytest
import torch
from ultralytics.nn.tasks import DetectionModel, yaml_model_load

from spikeyolo_ibra import device as device_module
from spikeyolo_ibra.blocks import SpikeConv, SpikeConvBlock
from spikeyolo_ibra.device import DeviceError, no_tf32, resolve_device
from spikeyolo_ibra.energy import sops_from_counts
from spikeyolo_ibra.neuron import IBLIF, NeuronConfig, neuron_context, quantize
from spikeyolo_ibra.spike import encode, plane_weights, spike_counts, to_spike_driven
from spikeyolo_ibra.spike.runtime import SpikeDrivenSynapse
from spikeyolo_ibra.spike.stats import LayerStats

META = torch.device("meta")
CONFIGS = ("ibra-spikeyolo", "spikeyolo", "ann-spikeyolo")


def fuse_on_meta(name: str) -> DetectionModel:
    model = DetectionModel(yaml_model_load(name), verbose=False).to(META)
    return model.fuse(verbose=False)


def test_stock_model_fuses_on_meta():
    """The control: what Ultralytics itself supports."""
    fused = fuse_on_meta("yolov8n.yaml")
    assert all(p.device == META for p in fused.parameters())


@pytest.mark.parametrize("config", CONFIGS)
def test_every_config_fuses_on_meta(config):
    fused = fuse_on_meta(f"cfg/{config}.yaml")
    assert all(p.device == META for p in fused.parameters())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("scale", ["s", "m", "l"])
def test_every_scale_fuses_on_meta(config, scale):
    fused = fuse_on_meta(f"cfg/{config}-{scale}.yaml")
    assert all(p.device == META for p in fused.parameters())


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
    model = DetectionModel(copy.deepcopy(yaml_model_load("tests/fixtures/tiny-spikeyolo.yaml")), verbose=False)
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.rand(2, 3, 64, 64))
    loss = out["boxes"].float().abs().mean() + out["scores"].float().abs().mean()
    loss.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


# --- device names on our command lines ------------------------------------------------------------------------------
def test_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    with pytest.raises(DeviceError, match="is not a torch device: use cpu, cuda or cuda:N"):
        resolve_device("gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_cuda_is_one_sentence():
    for name in ("cuda", "cuda:1", "0"):
        with pytest.raises(DeviceError, match="asks for CUDA, which this machine does not have: use --device cpu"):
            resolve_device(name)


def test_gpu_index_out_of_range_is_one_sentence(monkeypatch):
    monkeypatch.setattr(device_module.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(device_module.torch.cuda, "device_count", lambda: 1)
    with pytest.raises(DeviceError, match=r"asks for GPU 7, but this machine has 1 \(0 to 0\): use --device cuda:0"):
        resolve_device("cuda:7")
    assert resolve_device("0") == torch.device("cuda:0")


def test_no_tf32_switches_off_and_restores():
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is None or not hasattr(conv, "fp32_precision"):
        before = torch.backends.cudnn.allow_tf32
        with no_tf32():
            assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.allow_tf32 == before
        return
    before = conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision
    with no_tf32():
        assert conv.fp32_precision == torch.backends.cuda.matmul.fp32_precision == "ieee"
    assert (conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision) == before


def test_our_commands_refuse_a_gpu_index_out_of_range(monkeypatch, capsys, tmp_path):
    """spike-infer (in process, with a pretend one-GPU machine) and the demo (a real process) say one sentence."""
    import subprocess
    import sys

    from spikeyolo_ibra.spike.cli import main

    monkeypatch.setattr(device_module.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(device_module.torch.cuda, "device_count", lambda: 1)
    args = ["--weights", "tests/fixtures/tiny-spikeyolo.pt", "--source", "x.jpg", "--out", str(tmp_path / "o")]
    assert main([*args, "--device", "cuda:7"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "asks for GPU 7, but this machine has 1" in err[0]
    assert not (tmp_path / "o").exists()
    if not torch.cuda.is_available():
        proc = subprocess.run(
            [sys.executable, "tools/demo.py", "--device", "cuda", "--out", str(tmp_path / "demo")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert proc.stderr.strip().splitlines() == [
            "demo: device 'cuda' asks for CUDA, which this machine does not have: use --device cpu."
        ]
        assert not (tmp_path / "demo").exists()
