"""Offline font for tests that run Ultralytics validation (conftest.py already sets YOLO_OFFLINE and YOLO_CONFIG_DIR).

Ultralytics' ``check_font("Arial.ttf")`` downloads the font unless ``USER_CONFIG_DIR/Arial.ttf`` exists, even offline.
The plugin puts one there when it registers; this fixture makes tests independent of that.
"""

import shutil
from pathlib import Path

import matplotlib
import pytest


@pytest.fixture(scope="session")
def offline_font() -> Path:
    """Copy matplotlib's DejaVuSans.ttf to ``$YOLO_CONFIG_DIR/Ultralytics/Arial.ttf`` and return that path."""
    from ultralytics.utils import USER_CONFIG_DIR

    target = Path(USER_CONFIG_DIR) / "Arial.ttf"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf", target)
    return target
