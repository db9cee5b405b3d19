"""A tiny spiking checkpoint that fires and detects, for the report, video and browser tests.

Scale n of ``cfg/ibra-spikeyolo.yaml`` at 1/16 of its channels, BN statistics calibrated on bus.jpg and zidane.jpg
(so its neurons fire), class priors near 0.5 (so NMS keeps boxes); fused and saved in Ultralytics' format.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import CFG
from ultralytics.nn.tasks import DetectionModel, yaml_model_load
from ultralytics.utils import ASSETS

from spikeyolo_ibra.spike import calibrate_bn

WIDTH = 0.0625


def asset_batch(size: int) -> torch.Tensor:
    """bus.jpg and zidane.jpg resized to size x size, RGB in [0, 1], (2, 3, size, size)."""
    ims = [cv2.resize(cv2.imread(str(ASSETS / n)), (size, size))[..., ::-1] for n in ("bus.jpg", "zidane.jpg")]
    return torch.from_numpy(np.stack(ims).transpose(0, 3, 1, 2).copy()).float() / 255


def tiny_model(neuron: dict | None = None, seed: int = 0) -> DetectionModel:
    """The fused tiny detector; ``neuron`` overrides settings of the YAML's ``neuron:`` mapping."""
    cfg = yaml_model_load(CFG / "ibra-spikeyolo.yaml")  # a fresh dict: the YAML alone, no model built
    cfg["scales"] = {"n": [0.33, WIDTH, 1024]}
    cfg["neuron"] = {**cfg.get("neuron", {}), **(neuron or {})}
    torch.manual_seed(seed)
    model = calibrate_bn(DetectionModel(cfg, verbose=False), asset_batch(96))
    with torch.no_grad():
        for branch in model.model[-1].cv3:
            branch[-1].synapse.bias.zero_()
    return model.eval().fuse(verbose=False)


_SAVED: list[Path] = []


def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of the tiny checkpoint in Ultralytics' format, built once per test session whichever module asks first."""
    if not _SAVED:
        path = tmp_path_factory.mktemp("tiny") / "tiny.pt"
        torch.save({"model": tiny_model(), "train_args": {}}, path)
        _SAVED.append(path)
    return _SAVED[0]
