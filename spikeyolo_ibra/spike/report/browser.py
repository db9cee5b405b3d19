"""A report page as a browser shows it: headless Chromium takes a screenshot and reads back the page's own checks.

The page (:mod:`.page`) records, once loaded, how many images it has, how many failed to load and how many script
errors occurred, as attributes of ``<html>``; ``chromium --dump-dom`` prints the DOM after loading, so
:func:`open_page` reads them, and takes the screenshot in the same run, without any Python browser package.
:func:`looks_blank` tells a screenshot with content from an empty or single-colour one. Nothing here installs a
browser: on Debian, ``apt-get install chromium``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np

__all__ = ("BROWSERS", "chromium", "looks_blank", "open_page")

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
HEALTH = ("images", "broken-images", "script-errors")


def chromium() -> str | None:
    """The path of a Chromium-family browser on PATH, or None."""
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def _run(args: list[str], timeout: float) -> str:
    """Run headless Chromium with a throw-away profile; its stdout."""
    browser = chromium()
    if browser is None:
        raise FileNotFoundError("no Chromium on PATH: install it (Debian: apt-get install chromium).")
    with tempfile.TemporaryDirectory(prefix="spikeyolo-chromium-") as profile:
        cmd = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"]
        cmd += [f"--user-data-dir={profile}", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode:
        raise RuntimeError(f"chromium exited with {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return proc.stdout


def open_page(
    page: Path, screenshot: Path | None = None, size: tuple[int, int] = (1280, 2000), timeout: float = 120
) -> dict[str, int | str]:
    """Load ``page`` in headless Chromium; save what a ``size`` (width, height) window shows as ``screenshot``.

    Returns what the page recorded after loading: ``images``, ``broken-images``, ``script-errors`` and
    ``error-text``. Raises RuntimeError where it recorded nothing (its checking script did not run: a page from
    elsewhere, or one that stopped before its load event), or where no screenshot was written.
    """
    args = ["--dump-dom", f"--window-size={size[0]},{size[1]}"]
    if screenshot is not None:
        args.append(f"--screenshot={Path(screenshot).resolve()}")
    dom = _run([*args, page.resolve().as_uri()], timeout)
    if screenshot is not None and not Path(screenshot).is_file():
        raise RuntimeError(f"chromium wrote no screenshot of {page}.")
    tag = re.search(r"<html[^>]*>", dom)
    attributes = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', tag.group(0))) if tag else {}
    if not set(HEALTH) <= set(attributes):
        raise RuntimeError(f"{page} recorded no load checks: its checking script did not run.")
    return {**{k: int(attributes[k]) for k in HEALTH}, "error-text": attributes.get("error-text", "")}


def looks_blank(png: Path, min_std: float = 8.0, min_other: float = 0.02) -> bool:
    """True for a screenshot that is nearly one colour.

    That is: grey-level std below ``min_std``, or fewer than ``min_other`` of its pixels more than 16 grey levels
    away from the most common grey level (a white page with a line of text is blank too).
    """
    grey = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
    if grey is None:
        return True
    mode = int(np.bincount(grey.ravel(), minlength=256).argmax())
    other = float((np.abs(grey.astype(int) - mode) > 16).mean())
    return float(grey.std()) < min_std or other < min_other
