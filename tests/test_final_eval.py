"""The final evaluation of ``best.pt`` sees the model that training validated, for every config and stock YOLOv8n.

Training validates the EMA model in memory (float32, unfused, as built). The final evaluation, ``yolo val`` and
``predict`` load ``best.pt`` instead: Ultralytics stores the EMA in float16, loads it with
``ultralytics.nn.tasks.load_checkpoint`` (float32, ``fuse()``, and ``inplace = True`` on every module that has the
attribute) and runs that. The ANN twin used ``nn.ReLU`` before its synapses, whose input is also the residual stream,
so the loader's in-place switch changed the function it computes: its final mAP50:95 fell from 0.787 (last epoch)
to 0.597 on an H200. Two tests: the loaded model against the in-memory one (fast, fails with ``nn.ReLU``), and the stock
trainer's final metrics against the curve's best epoch (slow).
"""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import pytest
import torch
import yaml
from ultralytics.nn.tasks import DetectionModel, load_checkpoint, yaml_model_load

CFG = Path(__file__).resolve().parents[1] / "cfg"
CONFIGS = ["ibra-spikeyolo.yaml", "spikeyolo.yaml", "ann-spikeyolo.yaml", "yolov8n.yaml"]


def _model(name: str, asset_images) -> DetectionModel:
    """A small trained-looking model of config ``name``: BN statistics from real images, class priors near 0.5."""
    from spikeyolo_ibra.spike import calibrate_bn

    torch.manual_seed(0)
    if name == "yolov8n.yaml":
        model = DetectionModel(name, nc=80, verbose=False)
    else:
        cfg = yaml_model_load(CFG / name)
        cfg["scales"] = {"n": [0.33, 0.0625, 1024]}
        model = DetectionModel(cfg, verbose=False)
    model = calibrate_bn(model, asset_images(96))
    head = model.model[-1]
    with torch.no_grad():
        for branch in head.cv3:
            (branch[-1].synapse if hasattr(branch[-1], "synapse") else branch[-1]).bias.zero_()
    return model.eval()


def _saved_and_loaded(model: DetectionModel, path: Path) -> torch.nn.Module:
    """``model`` through Ultralytics' own round trip: saved as training saves the EMA, loaded as the validator loads.

    The loader fuses in the checkpoint's float32; here the fuse runs after a cast to float64, where fused and unfused
    spiking models are equal (in float32 a code at a rounding boundary can move: docs/neuron.md, "Precision").
    """
    model.args = {}
    torch.save({"model": None, "ema": copy.deepcopy(model).half(), "train_args": {}}, path)
    loaded, _ = load_checkpoint(path, fuse=False)  # float32, eval, and ``inplace = True`` wherever the attribute is
    loaded = loaded.double()
    _zero_biases_in_float64(loaded)
    return loaded.fuse(verbose=False)


def _zero_biases_in_float64(model: torch.nn.Module) -> None:
    """Give each bias-free stock ``Conv`` an explicit zero bias of the model's dtype (the same function).

    Ultralytics 8.4.0's ``fuse_conv_and_bn`` builds the missing bias as a float32 zero tensor, so a float64 stock
    model cannot be fused there (``make test-low``); later releases take the weight's dtype.
    """
    from ultralytics.nn.modules.conv import Conv

    for module in model.modules():
        if type(module) is Conv and module.conv.bias is None:
            weight = module.conv.weight
            module.conv.bias = torch.nn.Parameter(torch.zeros(weight.shape[0], dtype=weight.dtype), requires_grad=False)


@pytest.mark.parametrize("name", CONFIGS)
def test_loaded_best_pt_computes_what_training_validated(name, asset_images, tmp_path) -> None:
    """The loaded, fused checkpoint predicts what the in-memory model does (same float16-rounded weights, float64)."""
    model = _model(name, asset_images)
    trained = copy.deepcopy(model).half().double().eval()  # the weights best.pt holds, as the EMA in memory
    loaded = _saved_and_loaded(model, tmp_path / "best.pt")
    x = asset_images(96).double()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)[0], trained(x)[0], rtol=0, atol=1e-9)


def _best_epoch(results_csv: Path) -> dict[str, float]:
    """The row of ``results.csv`` with the highest fitness (Ultralytics 8.4: mAP50-95), as training chose best.pt."""
    with open(results_csv) as f:
        rows = [{k.strip(): float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    return max(rows, key=lambda r: r["metrics/mAP50-95(B)"])


@pytest.mark.slow
@pytest.mark.parametrize("name", CONFIGS)
def test_final_validation_equals_the_best_epoch(name, tiny_shapes: Path, tmp_path: Path) -> None:
    """The stock trainer end to end: final metrics of best.pt = its epoch's in-training metrics (within 1e-3)."""
    from ultralytics import YOLO

    import spikeyolo_ibra  # noqa: F401

    if name == "yolov8n.yaml":
        model = YOLO(name)
    else:  # the config at an eighth of scale n's width, so that four trainings stay cheap
        cfg = {k: v for k, v in yaml_model_load(CFG / name).items() if k not in ("yaml_file", "scale")}
        cfg["scales"] = {"n": [0.33, 0.125, 1024]}
        (tmp_path / f"small-{name}").write_text(yaml.safe_dump(cfg, sort_keys=False))
        model = YOLO(str(tmp_path / f"small-{name}"))
    metrics = model.train(
        data=str(tiny_shapes), epochs=3, imgsz=64, batch=8, lr0=0.01, warmup_epochs=0, device="cpu", workers=0,
        plots=False, project=str(tmp_path), name="run", exist_ok=True, verbose=False, seed=0,
    )  # fmt: skip
    best = _best_epoch(tmp_path / "run" / "results.csv")
    for key, final in (("metrics/mAP50(B)", metrics.box.map50), ("metrics/mAP50-95(B)", metrics.box.map)):
        assert abs(final - best[key]) <= 1e-3, f"{key}: final {final:.5f}, best epoch {best[key]:.5f}"
    for key, final in (("metrics/precision(B)", metrics.box.mp), ("metrics/recall(B)", metrics.box.mr)):
        assert abs(final - best[key]) <= 1e-3, f"{key}: final {final:.5f}, best epoch {best[key]:.5f}"


EVENT_CONFIGS = ["ibra-spikeyolo-events.yaml", "spikeyolo-events.yaml", "ann-spikeyolo-events.yaml"]


@pytest.mark.parametrize("name", EVENT_CONFIGS)
def test_loaded_event_checkpoint_computes_what_training_validated(name, tmp_path) -> None:
    """The same round trip for event models: ``fuse()`` folds BN and the alignment scale into the event encoder too."""
    from spikeyolo_ibra.spike import calibrate_bn

    cfg = {k: v for k, v in yaml_model_load(CFG / name).items() if k not in ("yaml_file", "scale")}
    cfg["scales"] = {"t": [0.33, 0.0625, 1024]}
    bins = cfg["neuron"]["T"]
    torch.manual_seed(0)
    frames = torch.poisson(torch.full((4, 2 * bins, 64, 64), 0.7))  # event counts per bin and polarity
    model = calibrate_bn(DetectionModel(cfg, ch=2 * bins, verbose=False), frames).eval()
    trained = copy.deepcopy(model).half().double().eval()
    loaded = _saved_and_loaded(model, tmp_path / "best.pt")
    with torch.no_grad():
        torch.testing.assert_close(loaded(frames.double())[0], trained(frames.double())[0], rtol=0, atol=1e-9)


def test_ann_twin_checkpoints_of_earlier_releases_load_without_in_place_relu(asset_images, tmp_path) -> None:
    """An older checkpoint holds ``nn.ReLU`` neurons: they load as the out-of-place :class:`Rectifier`."""
    from spikeyolo_ibra.blocks import SpikingSynapse
    from spikeyolo_ibra.neuron import Rectifier

    model = _model("ann-spikeyolo.yaml", asset_images)
    old = copy.deepcopy(model)
    for m in old.modules():
        if isinstance(m, SpikingSynapse):
            m.neuron = torch.nn.ReLU()  # as the ANN twin was built before Rectifier
    loaded = _saved_and_loaded(old, tmp_path / "old.pt")
    neurons = [m.neuron for m in loaded.modules() if isinstance(m, SpikingSynapse)]
    assert neurons and all(type(n) is Rectifier for n in neurons)
    x = asset_images(96).double()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)[0], copy.deepcopy(model).half().double()(x)[0], rtol=0, atol=1e-9)
