"""Hard edges of training: resume after an interruption, the multi-GPU (DDP) path on CPU, determinism."""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import yaml
from packaging.version import Version
from ultralytics import YOLO
from ultralytics.cfg import get_cfg
from ultralytics.utils import checks
from ultralytics.utils import dist as ultra_dist
from ultralytics.utils.torch_utils import init_seeds

from spikeyolo_ibra.neuron import IBLIF, NeuronConfig

CFG = Path(__file__).resolve().parents[1] / "cfg"
TINY_YAML = Path(__file__).resolve().parent / "fixtures" / "tiny-spikeyolo.yaml"


def _batch(n: int, imgsz: int, seed: int) -> dict[str, torch.Tensor]:
    """n random images with two boxes each, independent of the global random state."""
    g = torch.Generator().manual_seed(seed)
    xy, wh = torch.rand(2 * n, 2, generator=g) * 0.5 + 0.25, torch.rand(2 * n, 2, generator=g) * 0.3 + 0.1
    return {
        "img": torch.rand(n, 3, imgsz, imgsz, generator=g),
        "cls": torch.randint(0, 2, (2 * n, 1), generator=g).float(),
        "bboxes": torch.cat([xy, wh], 1),
        "batch_idx": torch.arange(n).repeat_interleave(2).float(),
    }


def _trainable(cfg: Path | str) -> torch.nn.Module:
    model = YOLO(cfg).model
    model.args = get_cfg()
    return model.train()


# --- resume ---------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_interrupted_training_resumes_with_the_same_neuron(yolo_bin: str, tiny_shapes: Path, tmp_path: Path) -> None:
    def interrupt(trainer: object) -> None:
        raise KeyboardInterrupt  # Ctrl-C right after epoch 1 of 2 wrote last.pt

    model = YOLO(TINY_YAML)
    model.add_callback("on_model_save", interrupt)
    args = {"epochs": 2, "imgsz": 64, "batch": 8, "workers": 0, "plots": False, "val": False, "device": "cpu"}
    with pytest.raises(KeyboardInterrupt):
        model.train(data=str(tiny_shapes), project=str(tmp_path), name="run", **args)
    last = tmp_path / "run" / "weights" / "last.pt"
    assert torch.load(last, weights_only=False)["epoch"] == 0

    proc = subprocess.run([yolo_bin, "train", "resume", f"model={last}"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"Resuming training {last} from epoch 2 to 2 total epochs" in proc.stdout + proc.stderr
    written = yaml.safe_load(TINY_YAML.read_text())["neuron"]
    resumed = YOLO(last).model
    assert resumed.yaml["neuron"] == written
    assert {m.config for m in resumed.modules() if isinstance(m, IBLIF)} == {NeuronConfig.from_mapping(written)}


# --- multi-GPU path -------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_ddp_entry_file_builds_our_model(tiny_shapes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file Ultralytics writes for each DDP worker, run in a fresh interpreter up to the model build."""
    from ultralytics.models.yolo.detect import DetectionTrainer

    monkeypatch.setattr(checks, "check_requirements", lambda *args, **kwargs: True)  # no cloudpickle install attempt
    overrides = {"model": str(CFG / "ibra-spikeyolo.yaml"), "data": str(tiny_shapes), "imgsz": 64, "device": "cpu"}
    trainer = DetectionTrainer(overrides={**overrides, "project": str(tmp_path), "plots": False})
    if importlib.util.find_spec("cloudpickle") is None:
        # Workers unpickle the state with plain pickle; without cloudpickle only Ultralytics' lambda callbacks cannot be
        # written, and a worker given none takes the defaults.
        monkeypatch.setitem(sys.modules, "cloudpickle", pickle)
        trainer.callbacks = {}
    file = ultra_dist.generate_ddp_file(trainer)
    try:
        source = Path(file).read_text()
        assert source.count("trainer.train()") == 1
        built = "trainer.setup_model(); print(type(trainer.model.model[-1]).__name__, trainer.model.yaml['scale'])"
        Path(file).write_text(source.replace("trainer.train()", built))
        proc = subprocess.run([sys.executable, file], capture_output=True, text=True, timeout=300)
    finally:
        ultra_dist.ddp_cleanup(trainer, file)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-2:] == ["SpikeDetect", "n"]
    assert "not registered" not in proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    """One rank of a scale-n training step, wrapped in DDP with the settings of Ultralytics' ``_setup_train``."""
    torch.set_num_threads(1)  # two ranks with two threads each on two cores run ~15x slower (spin-waiting)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        torch.manual_seed(rank)  # different initial weights: DDP must start every rank from rank 0's
        model = _trainable(CFG / "ibra-spikeyolo.yaml")
        torch_2_13 = Version(torch.__version__.split("+")[0]) >= Version("2.13")  # the argument was renamed there
        sync = {"forward_sync_buffers" if torch_2_13 else "broadcast_buffers": False}
        ddp = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True, **sync)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss, _ = ddp(_batch(2, 64, seed=rank))  # each rank its own images, as with a DistributedSampler
        loss.sum().backward()  # gradients are all-reduced (averaged) here
        grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        opt.step()
        params = torch.cat([p.detach().flatten() for p in model.parameters()])
        stats = torch.cat(
            [b.flatten() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var"))]
        )
        result = {}
        for name, local in (("grads", grads), ("params", params), ("bn_stats", stats)):
            ref = local.clone()
            dist.broadcast(ref, src=0)
            result[name] = (local - ref).abs().max().item()
        Path(out, f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_process_ddp_step_keeps_ranks_consistent(tmp_path: Path) -> None:
    torch.multiprocessing.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2)
    rank1 = json.loads((tmp_path / "rank1.json").read_text())
    assert rank1["grads"] == 0.0  # gloo all-reduce sums in the same order on both ranks
    assert rank1["params"] == 0.0
    # Ultralytics neither converts to SyncBatchNorm nor syncs buffers: each rank keeps the BN statistics of its own
    # images (rank 0's are the ones saved in the checkpoint).
    assert rank1["bn_stats"] > 0.0


# --- determinism ----------------------------------------------------------------------------------------------------
def _weights_after_steps(seed: int, steps: int = 3) -> dict[str, torch.Tensor]:
    init_seeds(seed, deterministic=True)
    model = _trainable(TINY_YAML)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    batch = _batch(4, 64, seed=123)
    for _ in range(steps):
        loss, _ = model.loss(batch)
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_same_seed_same_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("CUBLAS_WORKSPACE_CONFIG", "PYTHONHASHSEED"):  # init_seeds sets them; restored after the test
        monkeypatch.setenv(key, os.environ.get(key, ""))
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        a, b, other = _weights_after_steps(0), _weights_after_steps(0), _weights_after_steps(1)
    finally:
        torch.use_deterministic_algorithms(deterministic)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], other[k]) for k in a if a[k].is_floating_point())
