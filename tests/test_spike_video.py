"""Videos and streams: spike-infer on a clip or a folder of frames writes an annotated video; stock yolo predict too."""

import json
import subprocess

import cv2
import pytest
from ultralytics.utils import ASSETS

from spikeyolo_ibra.spike.cli import main

FRAMES, SIZE = 8, 96


def bus_frames() -> list:
    """FRAMES crops of bus.jpg sliding down the image, SIZE x SIZE: a short clip with motion."""
    im = cv2.imread(str(ASSETS / "bus.jpg"))
    return [cv2.resize(im[60 * i : 60 * i + 600, 100:700], (SIZE, SIZE)) for i in range(FRAMES)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """An 8-frame mp4 made at test time from bus.jpg (nothing downloads, nothing committed)."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (SIZE, SIZE))
    for frame in bus_frames():
        writer.write(frame)
    writer.release()
    return path


def read_video(path) -> tuple[int, float, tuple[int, int]]:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    fps, size = (
        cap.get(cv2.CAP_PROP_FPS),
        (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))),
    )
    cap.release()
    return n, fps, size


def test_clip_gives_an_annotated_video_with_per_frame_figures(tiny_checkpoint, clip, tmp_path, capsys):
    out = tmp_path / "report"
    args = ["--weights", str(tiny_checkpoint), "--source", str(clip), "--imgsz", "64", "--out", str(out)]
    assert main(args) == 0
    assert f"{FRAMES}/{FRAMES}" in capsys.readouterr().out  # Ultralytics' progress bar counted every frame
    frames, fps, (w, h) = read_video(out / "clip.mp4")
    assert frames == FRAMES and fps == pytest.approx(10)
    assert w >= 640 and h > w / 2  # detections | spike map, side by side, above the energy strip
    report = json.loads((out / "report.json").read_text())
    assert report["images"] == FRAMES
    assert [p["frame"] for p in report["per_image"]] == list(range(1, FRAMES + 1))
    assert {p["video"] for p in report["per_image"]} == {"clip.mp4"}
    assert len({round(p["snn_mJ"], 12) for p in report["per_image"]}) > 1  # the cost follows the content
    assert report["videos"] == [
        {"source": str(clip), "file": "clip.mp4", "poster": "clip-last.jpg", "frames": FRAMES, "fps": 10.0}
    ]
    assert (out / "clip-last.jpg").is_file() and "clip.mp4" in (out / "report.html").read_text()
    assert report["annotated_images"] == []  # frames are in the video, not saved one by one


def test_folder_of_frames_as_one_stream(tiny_checkpoint, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, frame in enumerate(bus_frames()[:4]):
        cv2.imwrite(str(frames / f"{i:04d}.jpg"), frame)
    out = tmp_path / "report"
    args = ["--weights", str(tiny_checkpoint), "--source", str(frames), "--imgsz", "64", "--out", str(out)]
    assert main([*args, "--stream", "--fps", "5"]) == 0
    n, fps, _ = read_video(out / "frames.mp4")
    assert n == 4 and fps == pytest.approx(5)
    report = json.loads((out / "report.json").read_text())
    assert [p["frame"] for p in report["per_image"]] == [1, 2, 3, 4]
    assert report["videos"][0]["source"] == str(frames) and report["annotated_images"] == []
    assert "4 frames at 5 fps" in (out / "report.html").read_text()


def test_unreadable_video_or_bad_fps_gives_one_sentence(tiny_checkpoint, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    out = tmp_path / "out"
    cases = {
        "cannot be read or has no frames": [str(bad)],
        "--fps 0.0 is not a positive number": [str(ASSETS / "bus.jpg"), "--stream", "--fps", "0"],
    }
    for phrase, source_and_more in cases.items():
        args = ["--weights", str(tiny_checkpoint), "--imgsz", "64", "--out", str(out), "--source", *source_and_more]
        with pytest.raises(SystemExit, match="^2$"):
            main(args)
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and phrase in err[0], err
        assert not out.exists() and not list(tmp_path.glob(".out.*"))


@pytest.mark.slow
def test_stock_yolo_predict_reads_the_clip(yolo_bin, tiny_checkpoint, clip, tmp_path):
    """The integer model through the ordinary ``yolo predict`` on a video: the plugin loads, frames come out."""
    cmd = [yolo_bin, "predict", f"model={tiny_checkpoint}", f"source={clip}", "imgsz=64", "device=cpu", "save=True"]
    proc = subprocess.run(
        [*cmd, f"project={tmp_path}", "name=predict", "exist_ok=True"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    videos = list((tmp_path / "predict").glob("clip.*"))
    assert len(videos) == 1 and read_video(videos[0])[0] == FRAMES
