"""Event models and event data in Ultralytics: the encoder's time order, the T check, the loader's borders and flips."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from ultralytics.cfg import get_cfg
from ultralytics.data import build
from ultralytics.nn.tasks import DetectionModel

from spikeyolo_ibra.events import EventDataError, save_sample
from spikeyolo_ibra.events.blocks import EventEncoder
from spikeyolo_ibra.events.dataset import EventDataset
from spikeyolo_ibra.events.shapes_events import CONVERSION, NAMES, simulate
from spikeyolo_ibra.events.training import check_events_data, check_timesteps
from spikeyolo_ibra.neuron import NeuronConfig, neuron_context, set_timesteps

REPO = Path(__file__).resolve().parents[1]
CFG = REPO / "spikeyolo_ibra" / "cfg"
EVENT_YAMLS = ["ibra-spikeyolo-events.yaml", "spikeyolo-events.yaml", "ann-spikeyolo-events.yaml"]


# --- the encoder and the models ---------------------------------------------------------------------------------------
def test_each_bin_becomes_one_timestep_in_order():
    enc = EventEncoder(6, 8, neuron=NeuronConfig(T=3)).eval()
    x = torch.zeros(2, 6, 16, 16)
    x[1, 4:6] = 1.0  # sample 1, bin 2 (channels 2k, 2k + 1)
    y = enc(x)
    assert y.shape == (6, 8, 4, 4)
    base = enc(torch.zeros(2, 6, 16, 16))
    moved = [i for i in range(6) if not torch.equal(y[i], base[i])]
    assert moved == [2 * 2 + 1]  # time outermost: index t * B + b


def test_the_encoder_refuses_channels_of_another_t():
    with neuron_context(NeuronConfig(T=2)):  # as the parser builds it
        enc = EventEncoder(4, 8)
    with pytest.raises(EventDataError, match="T = 2 reads 4 channels.*got 6.*--timesteps 2"):
        enc(torch.zeros(1, 6, 16, 16))


def test_the_event_model_builds_and_averages_over_the_bins():
    torch.manual_seed(0)
    model = DetectionModel(str(CFG / "ibra-spikeyolo-events-t.yaml"), ch=4, nc=4, verbose=False).eval()  # tiny scale
    assert model.yaml["neuron"]["T"] == 2 and type(model.model[0]).__name__ == "EventEncoder"
    out = model(torch.rand(2, 4, 64, 64))
    assert out[0].shape[0] == 2  # the head's mean over T gives one prediction set per sample
    set_timesteps(model, 1)
    assert model(torch.rand(2, 2, 64, 64))[0].shape[0] == 2  # same weights, another T


@pytest.mark.parametrize("name", EVENT_YAMLS)
def test_event_yamls_are_their_image_twins_but_for_layer_0_and_t(name: str):
    events = yaml.safe_load((CFG / name).read_text())
    image = yaml.safe_load((CFG / name.replace("-events", "")).read_text())
    assert events["backbone"][0] == [-1, 1, "EventEncoder", [128, 7, 4, 2]]
    assert events["backbone"][1:] == image["backbone"][1:] and events["head"] == image["head"]
    assert events["neuron"] == {**image["neuron"], "T": 2} and events["scales"] == image["scales"]


def test_a_t_mismatch_is_one_sentence_before_training():
    model = SimpleNamespace(yaml=yaml.safe_load((CFG / "ibra-spikeyolo-events.yaml").read_text()))  # what T reads
    data = {"yaml_file": "/x/gen1.yaml", "channels": 6, "events": {"timesteps": 3}}
    with pytest.raises(EventDataError) as caught:
        check_timesteps(model, data)
    assert str(caught.value) == (
        "the model has neuron T = 2 but gen1.yaml has events.timesteps 3: set T: 3 under neuron: in the model YAML, "
        "or convert the events again with --timesteps 2."
    )
    check_timesteps(model, {**data, "channels": 4, "events": {"timesteps": 2}})  # agreeing: no error
    with pytest.raises(EventDataError, match="set channels: 6"):
        check_events_data({**data, "channels": 4})


def test_the_built_in_set_yaml_matches_its_generator():
    data = yaml.safe_load((CFG / "datasets" / "shapes-events.yaml").read_text())
    assert data["names"] == NAMES and data["channels"] == 2 * CONVERSION.timesteps
    assert data["events"]["timesteps"] == CONVERSION.timesteps
    assert data["events"]["window_ms"] * 1000 == CONVERSION.window_us
    assert (data["events"]["height"], data["events"]["width"]) == (CONVERSION.height, CONVERSION.width)
    p = CONVERSION.protocol
    assert data["events"]["protocol"] == {"skip_ms": p.skip_us / 1000, "min_diag": p.min_diag, "min_side": p.min_side}
    model_t = yaml.safe_load((CFG / "ibra-spikeyolo-events.yaml").read_text())["neuron"]["T"]
    assert model_t == CONVERSION.timesteps


def test_the_simulated_camera_is_deterministic_and_time_ordered():
    events, boxes = simulate(3, seed=5)
    again, boxes_again = simulate(3, seed=5)
    np.testing.assert_array_equal(events, again)
    np.testing.assert_array_equal(boxes, boxes_again)
    assert np.all(np.diff(events["t"]) >= 0) and events["x"].max() < 64 and events["y"].max() < 64
    assert 0.3 < events["p"].mean() < 0.7  # ON and OFF both present
    assert not np.array_equal(simulate(3, seed=6)[0][:100], events[:100])


# --- the loader -------------------------------------------------------------------------------------------------------
@pytest.fixture
def constant_set(tmp_path: Path) -> tuple[Path, dict]:
    """Four T = 1 samples whose channels are constant (OFF = 7, ON = 3) and one box each."""
    frames = np.zeros((1, 2, 64, 64), np.uint8)
    frames[0, 0], frames[0, 1] = 7, 3
    for i in range(4):
        (tmp_path / "images" / "train").mkdir(parents=True, exist_ok=True)
        save_sample(tmp_path / "images" / "train" / f"rec_{i}.tif", frames)
        (tmp_path / "labels" / "train").mkdir(parents=True, exist_ok=True)
        (tmp_path / "labels" / "train" / f"rec_{i}.txt").write_text("0 0.25 0.5 0.2 0.4\n")
    data = {"names": {0: "car"}, "nc": 1, "channels": 2, "events": {"timesteps": 1}, "path": tmp_path}
    return tmp_path / "images" / "train", data


def load(constant_set, monkeypatch, **hyp) -> EventDataset:
    random.seed(0)  # Ultralytics' augmentations draw from Python's random
    img_path, data = constant_set
    monkeypatch.setattr(build, "YOLODataset", EventDataset)  # what the wrapped build_dataset does
    cfg = get_cfg(overrides={"imgsz": 64, "hsv_h": 0.5, "hsv_s": 0.9, "hsv_v": 0.9, **hyp})
    dataset = build.build_yolo_dataset(cfg, str(img_path), 4, data, mode="train", stride=32)
    assert isinstance(dataset, EventDataset)
    return dataset


def test_mosaic_and_affine_borders_are_zero_and_channels_keep_their_order(constant_set, monkeypatch):
    dataset = load(constant_set, monkeypatch, mosaic=1.0, degrees=30.0, translate=0.3, scale=0.5, fliplr=0.0)
    images = np.stack([dataset[i]["img"].numpy() for i in range(4) for _ in range(3)])
    assert images.shape[1:] == (2, 64, 64)  # the validity plane is gone, no channel added or reversed
    off, on = images[:, 0], images[:, 1]
    assert off.max() == 7 and on.max() == 3 and (off == 0).any()  # borders are "no event", not 114
    assert np.all(off <= 7) and np.all(on <= 3)  # edges blend towards 0, never towards 114
    assert set(np.unique(on[off == 7])) == {3}  # inside the picture HSV changed nothing


def test_flips_move_frames_and_boxes_together(constant_set, monkeypatch):
    img_path, data = constant_set
    frames = np.zeros((1, 2, 64, 64), np.uint8)
    frames[0, 1, 20:40, 4:16] = 9  # ON events where the box is: x 4..16, y 20..40
    save_sample(img_path / "rec_0.tif", frames)
    (img_path.parent.parent / "labels" / "train" / "rec_0.txt").write_text(
        f"0 {10 / 64} {30 / 64} {12 / 64} {20 / 64}\n"
    )
    sample = load(constant_set, monkeypatch, mosaic=0.0, degrees=0.0, translate=0.0, scale=0.0, fliplr=1.0)[0]
    on = sample["img"].numpy()[1]
    cx, cy, w, h = (sample["bboxes"][0] * 64).tolist()
    assert cx == pytest.approx(64 - 10) and cy == pytest.approx(30)
    ys, xs = np.nonzero(on == 9)
    assert (xs.min(), xs.max() + 1) == (48, 60) and (ys.min(), ys.max() + 1) == (20, 40)


@pytest.mark.parametrize("cache", [False, "ram", "disk"])
def test_cached_samples_are_the_samples(constant_set, monkeypatch, cache):
    img_path, data = constant_set
    frames = np.random.default_rng(0).integers(0, 256, (1, 2, 64, 64), dtype=np.uint8)
    save_sample(img_path / "rec_0.tif", frames)
    monkeypatch.setattr(build, "YOLODataset", EventDataset)
    cfg = get_cfg(overrides={"imgsz": 64, "cache": cache})
    dataset = build.build_yolo_dataset(cfg, str(img_path), 4, data, mode="val", stride=32)
    index = next(i for i, f in enumerate(dataset.im_files) if Path(f).stem == "rec_0")
    for _ in range(2):  # the second read comes from the cache
        np.testing.assert_array_equal(dataset[index]["img"].numpy(), frames[0])
    assert (img_path / "rec_0.npy").is_file() == (cache == "disk")  # Ultralytics' .npy of what it read


def test_predict_with_an_event_model_pads_with_zero(tmp_path: Path):
    from ultralytics import YOLO

    frames = np.full((2, 2, 40, 56), 5, np.uint8)  # not a multiple of the stride: the letterbox must pad
    sample = save_sample(tmp_path / "rec_1000.tif", frames)
    model = YOLO(str(CFG / "ibra-spikeyolo-events-t.yaml"))
    model.model = DetectionModel(str(CFG / "ibra-spikeyolo-events-t.yaml"), ch=4, nc=4, verbose=False)
    model.predict(str(sample), imgsz=64, device="cpu", verbose=False)  # sets up Ultralytics' predictor
    padded = model.predictor.pre_transform([np.full((40, 56, 4), 5, np.uint8)])[0]
    assert padded.shape[2] == 4 and padded.shape[:2] != (40, 56)
    assert set(np.unique(padded)) == {0, 5}  # events where the sample is, 0 ("no event") where it pads, never 114
