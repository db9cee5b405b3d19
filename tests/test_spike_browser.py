"""The report page in a real browser: headless Chromium renders it; broken images, script errors, blank page fail.

Needs Debian's ``chromium`` (``apt-get install chromium``); skipped with that reason where it is absent. CI installs
it. The screenshot is kept in pytest's temporary folder and its path printed (``-s`` shows it).
"""

import shutil

import cv2
import numpy as np
import pytest
from ultralytics.utils import ASSETS

from spikeyolo_ibra.spike.cli import main
from spikeyolo_ibra.spike.report.browser import chromium, looks_blank, open_page
from spikeyolo_ibra.spike.report.page import HEALTH_SCRIPT

pytestmark = [
    pytest.mark.slow,  # a spike-infer run and three browser starts: 10-20 s
    pytest.mark.skipif(chromium() is None, reason="chromium not installed: apt-get install chromium"),
]


def test_report_page_renders_in_chromium(tiny_checkpoint, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("bus.jpg", "zidane.jpg"):
        shutil.copy(ASSETS / name, folder / name)
    out = tmp_path / "report"
    args = ["--weights", str(tiny_checkpoint), "--source", str(folder), "--imgsz", "64"]
    assert main([*args, "--verify", "--compare", "scale=1", "--out", str(out)]) == 0
    shot = tmp_path / "report-page.png"
    health = open_page(out / "report.html", shot, size=(1280, 2000))
    print(f"screenshot: {shot}")
    # summary energy chart, 2 gallery figures, levels, layers, bit planes
    assert health == {"images": 6, "broken-images": 0, "script-errors": 0, "error-text": ""}
    assert not looks_blank(shot)
    assert cv2.imread(str(shot)).shape == (2000, 1280, 3)


def test_the_check_sees_broken_images_script_errors_and_blank_pages(tmp_path):
    """The checks themselves: a page with a missing image and a throwing script fails them; so does a blank one."""
    broken = tmp_path / "broken.html"
    broken.write_text(
        f"<!doctype html><html><head>{HEALTH_SCRIPT}</head><body><h1>Report</h1>"
        '<img src="missing.png"><script>undefinedFunction();</script></body></html>'
    )
    health = open_page(broken, tmp_path / "broken.png")
    assert health["images"] == 1 and health["broken-images"] == 1 and health["script-errors"] == 1
    assert "undefinedFunction" in health["error-text"]
    blank = tmp_path / "blank.html"
    blank.write_text("<!doctype html><html><head></head><body></body></html>")
    with pytest.raises(RuntimeError, match="recorded no load checks"):
        open_page(blank, tmp_path / "blank.png")
    assert looks_blank(tmp_path / "blank.png")
    noise = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "noise.png"), noise)
    assert not looks_blank(tmp_path / "noise.png")
