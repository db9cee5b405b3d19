"""Device names on our command lines and exact float32 on CUDA (the CPU proxies for the GPU path live with what they
check: fusion on ``meta`` in test_parser.py, the spike runtime in test_spike.py, autocast in test_neuron.py)."""

import pytest
import torch

from spikeyolo_ibra import device as device_module
from spikeyolo_ibra.device import DeviceError, no_tf32, resolve_device
from spikeyolo_ibra.spike.cli import main


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


def test_spike_infer_refuses_a_gpu_index_out_of_range(monkeypatch, capsys, tmp_path):
    """spike-infer on a pretend one-GPU machine: one sentence, exit 2, nothing written."""
    monkeypatch.setattr(device_module.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(device_module.torch.cuda, "device_count", lambda: 1)
    args = ["--weights", "tests/fixtures/tiny-spikeyolo.pt", "--source", "x.jpg", "--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit, match="^2$"):
        main([*args, "--device", "cuda:7"])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "asks for GPU 7, but this machine has 1" in err[0]
    assert not (tmp_path / "o").exists()
