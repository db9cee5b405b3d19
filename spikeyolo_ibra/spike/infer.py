"""Spike inference from Python: a checkpoint over a source, the report written whole into a folder.

:func:`spike_infer` joins the run (:class:`~.inference.Inference`) and the report (:class:`~.report.ReportWriter`);
the report is built in a temporary folder beside ``out`` and swapped in at the end, so ``out`` is either the whole
new report or untouched.
"""

from __future__ import annotations

import shutil
from contextlib import closing
from pathlib import Path
from typing import Any

from ..atomic import sibling_dir, swap_in
from .errors import SettingError
from .inference import Inference, Settings, open_source
from .report import ReportWriter

__all__ = ("spike_infer",)


def spike_infer(
    weights: str | Path,
    source: str | Path,
    *,
    out: str | Path = "runs/spike",
    stream: bool = False,
    fps: float = 10.0,
    t_end: int | list[int] | None = None,
    window_ms: float | None = None,
    sensor: str | None = None,
    **settings: Any,
) -> dict:
    """Run ``weights`` spike-driven over ``source``, write the report into ``out`` and return it.

    ``settings`` are those of :class:`~.inference.Settings` (``imgsz``, ``device``, ``dtype``, ``verify``,
    ``compare``, ...). ``stream`` makes every frame of ``source`` one video at ``fps``. A Prophesee ``.dat``
    recording needs ``t_end`` (one window end or several, microseconds) and ``window_ms``; its events are binned into
    the model's T bins (``sensor`` "WxH" if its header gives no size). ``out`` must be new, empty or an earlier
    report. Raises SpikeInferError (one sentence) for bad input; ``out`` is then left as it was.

    Example:
        >>> report = spike_infer("best.pt", "images/", imgsz=320, verify=True, compare="scale=1")
        >>> report["equivalence"]["passed"], report["energy"]["ratio"]

    """
    config = Settings(**settings)
    src = open_source(source, config.imgsz, stream, fps, t_end=t_end, window_ms=window_ms, sensor=sensor)
    out = Path(out)
    if out.exists() and not (out / "report.json").is_file() and (not out.is_dir() or any(out.iterdir())):
        raise SettingError(
            "out", str(out), " exists and is not a spike-infer report (no report.json): pass a new or empty folder."
        )
    inference = Inference(weights, config)
    tmp = sibling_dir(out, "tmp")
    writer = ReportWriter(tmp)
    try:
        with closing(inference.run(src)) as results:
            for result in results:
                writer.add(result)
        report = writer.finish(inference.describe(source), inference.summary())
        swap_in(tmp, out)
    except BaseException:
        writer.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report
