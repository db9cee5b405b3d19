"""The spiking YAML parser: every config at every scale, sizes, shapes, neuron settings, and rows it must refuse."""

import copy
from pathlib import Path

import pytest
import torch
import yaml
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel, yaml_model_load

from spikeyolo_ibra.neuron import IBLIF, NeuronConfigError
from spikeyolo_ibra.parser import ModelYAMLError, parse_spiking_model

CFG = Path(__file__).resolve().parents[1] / "cfg"
CONFIGS = ("ibra-spikeyolo", "spikeyolo", "ann-spikeyolo")
# SpikeYOLO's published sizes (80 classes): n 13.2M, s 23.1M, m 47.8M, l 68.5M; ours must be within 2 %.
PUBLISHED_PARAMS = {"n": 13.2e6, "s": 23.1e6, "m": 47.8e6, "l": 68.5e6}
WIDTHS = {"n": (96, 192, 384), "s": (128, 256, 512), "m": (160, 320, 640), "l": (192, 384, 768)}


@pytest.fixture(
    scope="module",
    params=[
        pytest.param((c, s), id=f"{c}-{s}", marks=() if s == "n" else pytest.mark.slow)
        for c in CONFIGS
        for s in PUBLISHED_PARAMS
    ],
)
def built(request) -> tuple[str, str, DetectionModel]:
    """Each config at each scale, built once through the ``-<scale>`` file name (scale n fast, the rest slow)."""
    config, scale = request.param
    return config, scale, YOLO(str(CFG / f"{config}-{scale}.yaml")).model


def test_parameter_counts_match_spikeyolo(built):
    _, scale, model = built
    params = sum(p.numel() for p in model.parameters())
    assert abs(params / PUBLISHED_PARAMS[scale] - 1) < 0.02, params
    assert model.yaml["scale"] == scale


def test_feature_shapes_and_strides(built):
    _, scale, model = built
    detect = model.model[-1]
    feats = []
    hook = detect.register_forward_pre_hook(lambda m, args: feats.extend(args[0]))
    with torch.no_grad():
        y, _ = model.eval()(torch.zeros(1, 3, 64, 64))
    hook.remove()
    assert [f.shape[1] for f in feats] == list(WIDTHS[scale])
    assert [f.shape[-1] for f in feats] == [8, 4, 2]
    assert y.shape == (1, 4 + 80, 8 * 8 + 4 * 4 + 2 * 2)
    assert detect.stride.tolist() == [8.0, 16.0, 32.0]


def test_fuses_on_the_meta_device(built):
    """The CPU proxy for CUDA: a tensor made on the CPU beside weights elsewhere fails on meta as on a GPU.

    Runs last for each model (it moves the model to meta).
    """
    fused = built[2].to("meta").fuse(verbose=False)
    assert all(p.device == torch.device("meta") for p in fused.parameters())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())


def test_default_scale_without_warning(caplog):
    model = YOLO(str(CFG / "ibra-spikeyolo.yaml"))
    assert model.model.yaml["scale"] == "n"
    assert "no model scale" not in caplog.text


def test_neuron_mapping_reaches_every_neuron():
    cfg = {**yaml_model_load(CFG / "ibra-spikeyolo.yaml"), "neuron": {"bits": 4, "scale": 3.0, "T": 2}}
    model = DetectionModel(cfg, verbose=False)
    neurons = [m for m in model.modules() if isinstance(m, IBLIF)]
    assert len(neurons) > 80
    assert {(n.config.bits, n.config.scale, n.config.T) for n in neurons} == {(4, 3.0, 2)}
    assert len({id(n.config) for n in neurons} | {id(model.model[0].config), id(model.model[-1].config)}) == 1


def test_ann_twin_has_no_spiking_neurons_and_same_weights():
    ann = YOLO(str(CFG / "ann-spikeyolo.yaml")).model
    snn = YOLO(str(CFG / "ibra-spikeyolo.yaml")).model
    assert not any(isinstance(m, IBLIF) for m in ann.modules())
    assert sum(p.numel() for p in ann.parameters()) == sum(p.numel() for p in snn.parameters())


def test_layers_carry_ultralytics_bookkeeping():
    d = yaml_model_load("tests/fixtures/tiny-spikeyolo.yaml")
    layers, save = parse_spiking_model(copy.deepcopy(d), 3, verbose=False)
    rows = d["backbone"] + d["head"]
    assert [m.i for m in layers] == list(range(len(rows)))
    assert [m.f for m in layers] == [r[0] for r in rows]
    assert [m.type.rsplit(".", 1)[-1] for m in layers] == [r[2].removeprefix("nn.") for r in rows]
    assert all(m.np == sum(p.numel() for p in m.parameters()) for m in layers)
    assert save == [1, 4, 7]  # the layers a later row reads by index


# --- rows it must refuse, each naming the layer and the fix ---------------------------------------------------------
BAD_NEURON = {
    "bits-0": ({"bits": 0}, "neuron.bits=0 is invalid: use a whole number from 1 to 16."),
    "bits-17": ({"bits": 17}, "neuron.bits=17 is invalid: use a whole number from 1 to 16."),
    "scale-0": ({"scale": 0}, "neuron.scale=0 is invalid: use a positive number (1 disables range alignment)."),
    "scale-neg": ({"scale": -2.5}, "neuron.scale=-2.5 is invalid: use a positive number (1 disables range alignment)."),
    "T-0": ({"T": 0}, "neuron.T=0 is invalid: use a whole number of timesteps, 1 or more."),
    "coding": ({"coding": "ternary"}, "neuron.coding='ternary' is invalid: use one of binary, unary."),
    "levels": (
        {"coding": "unary", "levels": 2.5},
        "neuron.levels=2.5 is invalid: use a whole number, 1 or more (the largest integer a unary neuron emits).",
    ),
}
#: Layer 1 of the real config with a width that differs from its input, or one argument too many.
BAD_ROWS = {
    "width": ([128, 4, 7], [96, 4, 7], "keeps its width, but the YAML gives 40 output channels after 48"),
    "arg-count": ([128, 4, 7], [128, 4, 7, 3], "takes from 3 to 5 positional arguments but 6 were given"),
}


def write_yaml(path: Path, change) -> Path:
    cfg = yaml.safe_load((CFG / "ibra-spikeyolo.yaml").read_text())
    change(cfg)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def bad_row(cfg: dict, old: list, new: list) -> None:
    assert cfg["backbone"][1][3] == old
    cfg["backbone"][1][3] = new


@pytest.mark.parametrize("case", BAD_NEURON)
def test_impossible_neuron_setting(case, tmp_path):
    path = write_yaml(tmp_path / "bad.yaml", lambda c: c["neuron"].update(BAD_NEURON[case][0]))
    with pytest.raises(NeuronConfigError) as info:
        YOLO(path)
    assert str(info.value) == BAD_NEURON[case][1]


@pytest.mark.parametrize("case", BAD_ROWS)
def test_block_with_wrong_args_names_the_layer(case, tmp_path):
    old, new, why = BAD_ROWS[case]
    with pytest.raises(ModelYAMLError) as info:
        YOLO(write_yaml(tmp_path / "bad.yaml", lambda c: bad_row(c, old, new)))
    message = str(info.value)
    assert message.startswith(f"layer 1 of the model YAML, [-1, 3, SpikeAllConvBlock, {new}], cannot be built")
    assert why in message
    assert message.endswith("give SpikeAllConvBlock the args [c2, ratio=4, k=7], channels before width scaling.")


def test_a_module_a_spiking_yaml_cannot_use_names_the_choices(tmp_path):
    def stock_block(cfg: dict) -> None:
        cfg["backbone"][1] = [-1, 1, "C2f", [128]]

    with pytest.raises(ModelYAMLError, match=r"^layer 1 of the model YAML, \[-1, 1, C2f, \[128\]\], names 'C2f', "):
        YOLO(write_yaml(tmp_path / "bad.yaml", stock_block))


def test_a_per_scale_argument_without_the_scale(tmp_path):
    def per_scale(cfg: dict) -> None:
        cfg["head"][-2][3][1] = {"n": 1, "s": 1}

    with pytest.raises(ModelYAMLError, match="layer 24 of the model YAML gives argument 1 per scale but not for 'm'."):
        YOLO(str(write_yaml(tmp_path / "bad.yaml", per_scale)).replace(".yaml", "-m.yaml"))


def test_a_row_that_is_not_a_row(tmp_path):
    def broken(cfg: dict) -> None:
        cfg["backbone"][2] = [-1, "SpikeDownsample", [256]]

    with pytest.raises(ModelYAMLError, match=r"layer 2 of the model YAML, .* is not a \[from, repeats, module, args\]"):
        YOLO(write_yaml(tmp_path / "bad.yaml", broken))


def test_stock_model_errors_are_not_rewrapped():
    from ultralytics.utils import ROOT

    cfg = yaml.safe_load((ROOT / "cfg" / "models" / "v8" / "yolov8.yaml").read_text())
    cfg["backbone"][1][3] = [128, 3, 2, None, 1, 1, True, 0]  # one arg too many for Conv
    with pytest.raises(TypeError):
        DetectionModel(cfg, verbose=False)
