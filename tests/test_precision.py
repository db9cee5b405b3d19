"""Spiking models train in float32 whatever ``amp=`` says; the reason, shown on the CPU under bfloat16 autocast."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from spikeyolo_ibra.neuron import IBLIF
from spikeyolo_ibra.precision import FLOAT32_NOTICE, keep_float32, needs_float32, skip_amp_check


def _codes(model: torch.nn.Module, x: torch.Tensor, autocast: bool) -> torch.Tensor:
    """Every neuron's integer codes for one forward pass (train mode, as training sees them), concatenated."""
    seen: list[torch.Tensor] = []
    hooks = [
        m.register_forward_hook(lambda mod, args, out: seen.append(mod.codes(args[0]).flatten().double()))
        for m in model.modules()
        if isinstance(m, IBLIF)
    ]
    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return torch.cat(seen)


def test_half_precision_membranes_move_the_integer_codes(tiny_spiking_model, asset_images) -> None:
    """The mechanism behind AMP's accuracy loss: bfloat16 synapses hand the neurons rounded membranes."""
    model = tiny_spiking_model()
    x = asset_images(64)
    exact = _codes(model, x, autocast=False)
    half = _codes(model, x, autocast=True)
    assert torch.equal(_codes(model, x, autocast=False), exact)  # float32 is deterministic here
    moved = (half != exact).double().mean().item()
    assert moved > 0.2, f"only {moved:.1%} of codes moved under bfloat16"


def _trainer(model: torch.nn.Module, amp: bool | str) -> SimpleNamespace:
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    return SimpleNamespace(model=model, amp=bool(amp), args=SimpleNamespace(amp=amp), scaler=scaler)


@pytest.mark.parametrize("amp", [True, "bf16"])
def test_spiking_models_train_in_float32(tiny_spiking_model, amp) -> None:
    trainer = _trainer(tiny_spiking_model(), amp)
    keep_float32(trainer)
    assert trainer.amp is False and trainer.args.amp is False and not trainer.scaler.is_enabled()


def test_ann_twin_and_stock_models_keep_amp(tiny_spiking_model) -> None:
    from ultralytics.nn.tasks import DetectionModel

    twin = tiny_spiking_model(neuron={"type": "relu"})
    stock = DetectionModel("yolov8n.yaml", nc=2, verbose=False)
    for model in (twin, stock):
        assert not needs_float32(model)
        trainer = _trainer(model, "bf16")
        keep_float32(trainer)
        assert trainer.amp is True and trainer.args.amp == "bf16"


def test_amp_check_is_skipped_for_spiking_models(tiny_spiking_model) -> None:
    calls = []

    def stock_check(model, *args, **kwargs):  # Ultralytics' check downloads a model and runs it in half precision
        calls.append(model)
        return True

    check = skip_amp_check(stock_check)
    assert check(tiny_spiking_model()) is False and not calls
    twin = tiny_spiking_model(neuron={"type": "relu"})
    assert check(twin) is True and calls == [twin]


@pytest.mark.slow
def test_yolo_train_with_bf16_amp_runs_spiking_models_in_float32(tiny_shapes: Path, tmp_path: Path, caplog) -> None:
    """The stock trainer asked for bfloat16: the spiking model trains in float32 and says so.

    (Stock Ultralytics refuses bfloat16 autocast on the CPU, so this trains end to end only because of the guard.)
    """
    from ultralytics import YOLO

    import spikeyolo_ibra  # noqa: F401

    model = YOLO(str(Path(__file__).parents[1] / "cfg" / "ibra-spikeyolo.yaml"))
    model.train(
        data=str(tiny_shapes), epochs=1, imgsz=64, batch=8, amp="bf16", device="cpu", workers=0, val=False,
        plots=False, project=str(tmp_path), name="ibra", exist_ok=True, verbose=False,
    )  # fmt: skip
    assert model.trainer.amp is False and model.trainer.args.amp is False
    assert FLOAT32_NOTICE in caplog.text


def test_the_trainer_calls_our_amp_check() -> None:
    from ultralytics.engine import trainer

    import spikeyolo_ibra  # noqa: F401  (registers)

    assert getattr(trainer.check_amp, "spikeyolo", False)
