"""Test session set-up: offline Ultralytics with its settings and runs in a temporary config dir, shared fixtures.

Files test by module: ``test_<module>.py`` for ``spikeyolo_ibra/<module>.py`` (``test_spike*.py`` for the spike
package, ``test_tools.py`` for ``tools/``, ``test_yolo_cli.py`` for what the stock ``yolo`` command does with our
models). Tests that spawn ``yolo``, train with Ultralytics' trainer or build every scale are marked ``slow``:
``make test-fast`` leaves them out.
"""

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import pytest

# Before anything imports ultralytics: no network, no pip installs, settings/runs isolated from the user's.
os.environ["YOLO_OFFLINE"] = "1"
os.environ["YOLO_AUTOINSTALL"] = "False"
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="spikeyolo-cfg-"))
os.environ.setdefault("OMP_NUM_THREADS", "2")

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root (configs in ``cfg/``, scripts in ``tools/``)."""
    return REPO


@pytest.fixture(scope="session")
def yolo_bin() -> str:
    """The stock ``yolo`` entry point of this environment."""
    return str(Path(sys.executable).with_name("yolo"))


@pytest.fixture(scope="session")
def fixture_model() -> ModuleType:
    """``tests/fixtures/make_fixture.py`` as a module: the tiny checkpoint's fixed input and output summary."""
    spec = importlib.util.spec_from_file_location("make_fixture", FIXTURES / "make_fixture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny_shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny built-in dataset (dataset YAML path) shared by the end-to-end tests."""
    from spikeyolo_ibra.data.shapes import build_shapes, write_data_yaml

    root = build_shapes(tmp_path_factory.mktemp("shapes") / "shapes", n_train=16, n_val=8, imgsz=128, seed=0)
    return write_data_yaml(root, root.parent / "shapes.yaml")


@pytest.fixture(scope="session")
def offline_font() -> Path:
    """Copy matplotlib's DejaVuSans.ttf to ``$YOLO_CONFIG_DIR/Ultralytics/Arial.ttf`` and return that path.

    Ultralytics' ``check_font("Arial.ttf")`` tries a download unless that file exists, even offline; the plugin puts
    one there when it builds a spiking model from YAML, this fixture makes a test independent of that.
    """
    import matplotlib
    from ultralytics.utils import USER_CONFIG_DIR

    target = Path(USER_CONFIG_DIR) / "Arial.ttf"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf", target)
    return target


@pytest.fixture(scope="session")
def asset_images():
    """``asset_images(size)``: bus.jpg and zidane.jpg (Ultralytics' assets) resized to size x size, RGB in [0, 1]."""
    import cv2
    import numpy as np
    import torch
    from ultralytics.utils import ASSETS

    def load(size: int = 64) -> "torch.Tensor":
        ims = [cv2.resize(cv2.imread(str(ASSETS / n)), (size, size))[..., ::-1] for n in ("bus.jpg", "zidane.jpg")]
        return torch.from_numpy(np.stack(ims).transpose(0, 3, 1, 2).copy()).float() / 255

    return load


@pytest.fixture(scope="module", params=["ibra-spikeyolo.yaml", "spikeyolo.yaml"])
def firing_fused(request, asset_images):
    """A scale-n model whose BN statistics are calibrated on real images (so it fires), fused, float32."""
    import torch
    from ultralytics.nn.tasks import DetectionModel, yaml_model_load

    from spikeyolo_ibra.spike import calibrate_bn

    torch.manual_seed(0)
    model = calibrate_bn(DetectionModel(yaml_model_load(REPO / "cfg" / request.param), verbose=False), asset_images())
    with torch.no_grad():
        for branch in model.model[-1].cv3:  # class priors near 0.5 instead of 1e-4, so NMS has detections to compare
            branch[-1].synapse.bias.zero_()
    return model.eval().fuse(verbose=False)


@pytest.fixture(scope="session")
def tiny_spiking_model(asset_images):
    """``make(neuron=None, seed=0)``: scale n of ibra-spikeyolo.yaml at 1/16 of its channels, BN calibrated on bus.jpg
    and zidane.jpg (so it fires), class priors near 0.5 (so NMS keeps boxes), eval, unfused as training leaves a
    checkpoint; ``neuron`` overrides settings of the YAML's ``neuron:`` mapping."""
    import torch
    from ultralytics.nn.tasks import DetectionModel, yaml_model_load

    from spikeyolo_ibra.spike import calibrate_bn

    def make(neuron: dict | None = None, seed: int = 0):
        cfg = yaml_model_load(REPO / "cfg" / "ibra-spikeyolo.yaml")  # the YAML alone, no model built
        cfg["scales"] = {"n": [0.33, 0.0625, 1024]}
        cfg["neuron"] = {**cfg.get("neuron", {}), **(neuron or {})}
        torch.manual_seed(seed)
        model = calibrate_bn(DetectionModel(cfg, verbose=False), asset_images(96))
        with torch.no_grad():
            for branch in model.model[-1].cv3:
                branch[-1].synapse.bias.zero_()
        return model.eval()

    return make


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_spiking_model, tmp_path_factory) -> Path:
    """The tiny spiking model saved in Ultralytics' checkpoint format, once per session."""
    import torch

    path = tmp_path_factory.mktemp("tiny") / "tiny.pt"
    torch.save({"model": tiny_spiking_model(), "train_args": {}}, path)
    return path
