"""Regenerate the documentation's pictures of the spike report from a run of the demo (``make demo`` first).

    python tools/doc_images.py                      # reads runs/demo, writes docs/img/
    python tools/doc_images.py --demo runs/demo --out docs/img

Writes, each a palette PNG under 500 kB:

- ``report-page.png``: what a 1280 x 2000 browser window shows of the demo's ``runs/demo/spike/report.html``
  (headless Chromium, :mod:`spikeyolo_ibra.spike.report.browser`; the page must load with no broken image or script
  error);
- ``heatmap.png``: bus.jpg at 320 px through the demo's checkpoint, detections beside where the spikes went;
- ``levels.png``: the level histograms of that run beside the same weights with N = 1 (``--compare scale=1``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PIL import Image

from spikeyolo_ibra.spike import spike_infer
from spikeyolo_ibra.spike.report.browser import chromium, looks_blank, open_page

REPO = Path(__file__).resolve().parents[1]
LIMIT = 500_000  # bytes per committed picture


def save_png(src: Path, dst: Path, width: int) -> int:
    """``src`` scaled to at most ``width`` pixels wide, as a 256-colour dithered PNG at ``dst``; its size in bytes.

    The palette covers the picture's colours (maximum coverage) and Floyd-Steinberg dithering keeps colour bars and
    photos free of bands at a third of a full-colour PNG's size.
    """
    im = Image.open(src).convert("RGB")
    if im.width > width:
        im = im.resize((width, round(im.height * width / im.width)), Image.Resampling.LANCZOS)
    palette = im.quantize(256, method=Image.Quantize.MAXCOVERAGE)
    im.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG).save(dst, optimize=True)
    return dst.stat().st_size


def main() -> None:
    """Take the screenshot, run bus.jpg with --compare scale=1, write the three pictures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--demo", type=Path, default=REPO / "runs" / "demo", help="the demo's output folder")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "img", help="where the pictures go")
    a = p.parse_args()
    page, weights = a.demo / "spike" / "report.html", a.demo / "train" / "weights" / "best.pt"
    missing = [str(f) for f in (page, weights) if not f.is_file()]
    if missing or chromium() is None:
        sys.exit(
            f"doc_images: needs {', '.join(missing) or 'chromium (apt-get install chromium)'}: run make demo first."
        )
    from ultralytics.utils import ASSETS

    a.out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        shot = Path(tmp) / "page.png"
        health = open_page(page, shot, size=(1280, 2000))
        if health["broken-images"] or health["script-errors"] or looks_blank(shot):
            sys.exit(f"doc_images: {page} does not render cleanly: {health}")
        sizes["report-page.png"] = save_png(shot, a.out / "report-page.png", 1280)
        run = Path(tmp) / "bus"
        spike_infer(weights, ASSETS / "bus.jpg", imgsz=320, out=run, compare="scale=1", verify=True)
        sizes["heatmap.png"] = save_png(run / "bus-spikes.jpg", a.out / "heatmap.png", 1000)
        sizes["levels.png"] = save_png(run / "levels.png", a.out / "levels.png", 1240)
    for name, size in sizes.items():
        print(f"{a.out / name}: {size / 1000:.0f} kB")
    if max(sizes.values()) > LIMIT:
        sys.exit(f"doc_images: a picture is over {LIMIT // 1000} kB: do not commit it.")


if __name__ == "__main__":
    main()
