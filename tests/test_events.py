"""Events in, frames out: the .dat format, to_frames' bins and counts, the sample file, the Gen1 box protocol."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from ultralytics.utils.patches import imread

from spikeyolo_ibra.errors import SpikeYoloError
from spikeyolo_ibra.events import EVENT_DTYPE, EventDataError, load_sample, read_dat, save_sample, to_frames, write_dat
from spikeyolo_ibra.events.dat import read_dat_header
from spikeyolo_ibra.events.frames import window
from spikeyolo_ibra.events.gen1 import Protocol, filter_boxes, read_boxes

H, W = 24, 32


def make_events(t, x, y, p) -> np.ndarray:
    ev = np.zeros(len(t), EVENT_DTYPE)
    ev["t"], ev["x"], ev["y"], ev["p"] = t, x, y, p
    return ev


def random_events(n: int, t_max: int, seed: int = 0, height: int = H, width: int = W) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, t_max, n))
    return make_events(t, rng.integers(0, width, n), rng.integers(0, height, n), rng.integers(0, 2, n))


def naive_frames(events, t_end, window_us, T, height, width) -> np.ndarray:  # noqa: N803
    """The definition, one event at a time."""
    out = np.zeros((T, 2, height, width), np.int64)
    t0 = t_end - window_us
    for t, x, y, p in zip(events["t"], events["x"], events["y"], events["p"], strict=True):
        if t0 <= t < t_end:
            out[(int(t) - t0) * T // window_us, p, y, x] += 1
    return np.minimum(out, 255).astype(np.uint8)


# --- to_frames -----------------------------------------------------------------------------------------------------
def test_events_of_the_first_sub_window_land_only_in_bin_0():
    T, t_end, win = 4, 100_000, 40_000  # noqa: N806
    first = np.sort(np.random.default_rng(1).integers(t_end - win, t_end - win + win // T, 500))
    ev = make_events(first, np.arange(500) % W, np.arange(500) % H, np.arange(500) % 2)
    frames = to_frames(ev, t_end, win, T, H, W)
    assert frames[0].sum() == 500 and frames[1:].sum() == 0


def test_bins_follow_time_order():
    T, t_end, win = 5, 50_000, 50_000  # noqa: N806
    t = np.arange(T) * (win // T) + 7  # one event early in each bin, all on one pixel
    frames = to_frames(make_events(t, [3] * T, [2] * T, [1] * T), t_end, win, T, H, W)
    assert [int(frames[k, 1, 2, 3]) for k in range(T)] == [1] * T
    assert frames.sum() == T


@pytest.mark.parametrize("n", [200, 20_000])  # a sparse window (counted by sorting) and a dense one (bincount)
def test_counts_equal_the_definition_and_clip_at_255(n: int):
    ev = random_events(n, 200_000)
    hot = make_events(np.full(300, 150_000), [5] * 300, [6] * 300, [0] * 300)  # 300 OFF events on one pixel
    ev = np.concatenate([ev, hot])
    ev = ev[np.argsort(ev["t"], kind="stable")]
    frames = to_frames(ev, 180_000, 100_000, 3, H, W)
    assert frames.dtype == np.uint8 and frames.shape == (3, 2, H, W)
    np.testing.assert_array_equal(frames, naive_frames(ev, 180_000, 100_000, 3, H, W))
    assert frames[2, 0, 6, 5] == 255


def test_window_edges_and_zero_padding():
    t_end, win, T = 10_000, 1_000, 2  # noqa: N806
    t = [t_end - win - 1, t_end - win, t_end - win // 2 - 1, t_end - win // 2, t_end - 1, t_end]
    frames = to_frames(make_events(t, [0, 1, 2, 3, 4, 5], [0] * 6, [1] * 6), t_end, win, T, H, W)
    assert frames[0, 1, 0].tolist()[:6] == [0, 1, 1, 0, 0, 0]  # before the window: out; its start: bin 0
    assert frames[1, 1, 0].tolist()[:6] == [0, 0, 0, 1, 1, 0]  # half-way: bin 1; t_end itself: out
    assert frames[:, 0].sum() == 0  # no OFF events: that channel stays 0
    assert not to_frames(make_events([], [], [], []), t_end, win, T, H, W).any()  # no events: all zeros


def test_polarity_channels_and_events_outside_the_sensor():
    ev = make_events([10, 11, 12], [1, W, 2], [1, 0, H], [0, 1, 1])  # the last two lie outside the sensor
    frames = to_frames(ev, 100, 100, 1, H, W)
    assert frames[0, 0, 1, 1] == 1 and frames.sum() == 1


def test_window_slices_time_ordered_events():
    t = np.array([0, 5, 10, 10, 15, 20])
    assert window(t, 15, 5) == slice(2, 4)  # [10, 15): both 10s, not 15


def test_bad_binning_is_one_sentence():
    with pytest.raises(EventDataError, match="window of at least T"):
        to_frames(random_events(10, 100), 100, 3, 4, H, W)


# --- .dat -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("header", [True, False])
def test_write_read_round_trip(tmp_path: Path, header: bool):
    ev = random_events(5_000, 3_000_000, height=240, width=304)
    ev["x"][-1], ev["y"][-1] = 303, 239  # the sensor's last pixel: all 14 bits of x and y kept
    path = write_dat(tmp_path / "rec_td.dat", ev, 240, 304, header=header)
    np.testing.assert_array_equal(read_dat(path), ev)
    offset, fields = read_dat_header(path)
    raw = path.read_bytes()
    if header:
        assert fields["Height"] == "240" and fields["Width"] == "304"
        assert raw[offset - 2 : offset] == bytes((0, 8))  # event type 0 (2D), size 8
    else:
        assert offset == 0 and fields == {}
    assert len(raw) - offset == 8 * len(ev)
    word = np.frombuffer(raw[offset + 4 : offset + 8], "<u4")[0]  # the first record's bit layout
    assert (word & 0x3FFF, (word >> 14) & 0x3FFF, word >> 28) == (ev["x"][0], ev["y"][0], ev["p"][0])


def test_a_recording_of_several_decode_chunks_round_trips(tmp_path: Path):
    ev = random_events(200_003, 10_000_000, height=240, width=304)  # 65536 records per chunk: 4 chunks, one partial
    np.testing.assert_array_equal(read_dat(write_dat(tmp_path / "long_td.dat", ev, 240, 304)), ev)


def test_an_empty_recording_round_trips(tmp_path: Path):
    path = write_dat(tmp_path / "empty_td.dat", make_events([], [], [], []), H, W)
    assert read_dat(path).size == 0


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda raw: raw[:-3], "partial 5-byte event"),  # truncated copy
        (lambda raw: raw.replace(bytes((0, 8)), bytes((0x41, 3)), 1), "not 2D events"),  # foreign event type
        (lambda raw: b"% Height 24\n" + bytes((0, 8)) + bytes(range(40))[::-1], "back in time"),  # not in time order
    ],
)
def test_bad_dat_files_are_one_sentence_naming_the_file(tmp_path: Path, damage, words: str):
    good = write_dat(tmp_path / "good_td.dat", random_events(100, 10_000), H, W).read_bytes()
    bad = tmp_path / "bad_td.dat"
    bad.write_bytes(damage(good))
    with pytest.raises(SpikeYoloError) as caught:
        read_dat(bad)
    message = str(caught.value)
    assert words in message and str(bad) in message and message.count(". ") == 0 and message.endswith(".")


def test_events_beyond_the_header_sensor_are_refused(tmp_path: Path):
    path = write_dat(tmp_path / "a_td.dat", random_events(50, 1_000), H, W)
    path.write_bytes(path.read_bytes().replace(b"% Width 32", b"% Width 2 "))
    with pytest.raises(EventDataError, match="outside the width of 2 its header declares"):
        read_dat(path)


def test_write_dat_refuses_events_it_cannot_encode(tmp_path: Path):
    with pytest.raises(EventDataError, match="time order"):
        write_dat(tmp_path / "x.dat", make_events([5, 4], [0, 0], [0, 0], [0, 0]), H, W)
    with pytest.raises(EventDataError, match="on the 32 x 24 sensor"):
        write_dat(tmp_path / "x.dat", make_events([5], [W], [0], [0]), H, W)
    assert not any(tmp_path.iterdir())


# --- samples ----------------------------------------------------------------------------------------------------------
def test_sample_round_trip_and_what_ultralytics_reads(tmp_path: Path):
    frames = to_frames(random_events(30_000, 50_000), 50_000, 50_000, 3, H, W)
    path = save_sample(tmp_path / "rec_50000.tif", frames)
    np.testing.assert_array_equal(load_sample(path), frames)
    channels = imread(str(path), cv2.IMREAD_UNCHANGED)  # what Ultralytics' loader does for channels: 6
    assert channels.shape == (H, W, 6)
    np.testing.assert_array_equal(channels.transpose(2, 0, 1).reshape(3, 2, H, W), frames)  # channel 2k + p
    assert [p.name for p in tmp_path.iterdir()] == ["rec_50000.tif"]  # no temporary file left


def test_a_foreign_sample_is_one_sentence(tmp_path: Path):
    path = tmp_path / "x.tif"
    cv2.imwrite(str(path), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(EventDataError, match="not an event sample"):
        load_sample(path)


# --- boxes and the protocol -------------------------------------------------------------------------------------------
def gen1_boxes(rows, time_field: str = "t") -> np.ndarray:
    dtype = [(time_field, "<u8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"), ("class_id", "u1")]
    dtype += [("track_id", "<u4"), ("class_confidence", "<f4")]
    return np.array([(*r, 0, 1.0) for r in rows], dtype=dtype)


@pytest.mark.parametrize("time_field", ["t", "ts"])
def test_read_boxes_takes_both_time_field_names(tmp_path: Path, time_field: str):
    np.save(tmp_path / "a_bbox.npy", gen1_boxes([(20, 1, 2, 3, 4, 1), (10, 5, 6, 7, 8, 0)], time_field))
    boxes = read_boxes(tmp_path / "a_bbox.npy")
    assert boxes["t"].tolist() == [10, 20] and boxes["class_id"].tolist() == [0, 1]  # sorted by time


def test_a_box_file_of_the_wrong_dtype_is_one_sentence(tmp_path: Path):
    np.save(tmp_path / "a_bbox.npy", np.zeros((3, 5), np.float32))
    with pytest.raises(EventDataError, match=r"a_bbox\.npy holds float32 records, not boxes"):
        read_boxes(tmp_path / "a_bbox.npy")


def test_the_protocol_filters_then_clips():
    boxes = gen1_boxes(
        [
            (500_000, 10, 10, 40, 40, 0),  # at the skip time: dropped (t must be later)
            (500_001, 10, 10, 40, 40, 0),  # kept
            (600_000, 10, 10, 9, 40, 1),  # a side under 10: dropped
            (600_000, 10, 10, 20, 20, 1),  # diagonal 28.3 < 30: dropped
            (600_000, 290, -5, 30, 30, 1),  # kept, clipped to x 290..304, y 0..25
            (600_000, 310, 10, 30, 30, 0),  # kept by the protocol, outside the sensor: dropped
        ]
    )
    kept = filter_boxes(read_boxes_from(boxes), Protocol(), 240, 304)
    assert kept["t"].tolist() == [500_001, 600_000]
    assert kept[1][["x", "y", "w", "h"]].tolist() == (290, 0, 14, 25)
    loose = filter_boxes(read_boxes_from(boxes), Protocol(skip_us=100_000, min_diag=0, min_side=0), 240, 304)
    assert len(loose) == 5


def read_boxes_from(records: np.ndarray) -> np.ndarray:
    from spikeyolo_ibra.events.gen1 import BOX_DTYPE

    out = np.empty(len(records), BOX_DTYPE)
    out["t"] = records["t"]
    for key in ("x", "y", "w", "h", "class_id"):
        out[key] = records[key]
    return out
