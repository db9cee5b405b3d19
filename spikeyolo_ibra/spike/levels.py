"""Level use: how often each integer code 0..Q was emitted, per layer and over the whole network.

Range alignment is about this picture. Without the scale N (N = 1) batch-normalised membranes of order 1..5 reach
only codes 0..5 of the Q + 1 = 2^K levels; with N = 100 the same membranes spread over hundreds of levels. For a
histogram h over codes q = 0..Q:

    levels used       = #{q : h[q] > 0}
    non-zero share    = sum_{q > 0} h[q] / sum_q h[q]
    upper-half share  = sum_{q > Q/2} h[q] / sum_{q > 0} h[q]      (of the non-zero codes)
    mean code         = sum_q q h[q] / sum_q h[q]
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ("chosen_layers", "network", "summary", "write_levels")


def network(levels: dict[str, list[int]]) -> list[int]:
    """The whole network's histogram: the layers' histograms summed code by code."""
    hists = list(levels.values())
    return [sum(column) for column in zip(*hists, strict=True)] if hists else []


def chosen_layers(rows: list[dict], most: int = 4) -> list[str]:
    """A few spike-fed layers worth a histogram, in model order: the first, the middle, the costliest, the last."""
    spiking = [r for r in rows if r["kind"] == "spiking"]
    if not spiking:
        return []
    picks = [spiking[0], spiking[len(spiking) // 2], max(spiking, key=lambda r: r["sops"]), spiking[-1]]
    names = {r["name"] for r in picks}
    return [r["name"] for r in spiking if r["name"] in names][:most]


def summary(hist: list[int]) -> dict:
    """Levels used, non-zero share, upper-half share (of non-zero codes) and mean code of a histogram over 0..Q."""
    total, q_max = sum(hist), len(hist) - 1
    nonzero = total - (hist[0] if hist else 0)
    return {
        "levels_used": sum(1 for h in hist if h),
        "levels_possible": len(hist),
        "nonzero_share": nonzero / total if total else 0.0,
        "upper_half_share": sum(h for q, h in enumerate(hist) if q > q_max / 2) / nonzero if nonzero else 0.0,
        "mean_code": sum(q * h for q, h in enumerate(hist)) / total if total else 0.0,
    }


def write_levels(path: Path, runs: dict[str, dict[str, list[int]]]) -> None:
    """``levels.json``: per run (``this``, and ``compare`` with ``--compare``), ``network`` and ``layers`` histograms.

    One histogram per line, so the file stays readable at Q = 511.
    """
    blocks = []
    for run, levels in runs.items():
        layers = ",\n".join(f"   {json.dumps(name)}: {json.dumps(hist)}" for name, hist in levels.items())
        blocks.append(f' "{run}": {{\n  "network": {json.dumps(network(levels))},\n  "layers": {{\n{layers}\n  }}\n }}')
    path.write_text("{\n" + ",\n".join(blocks) + "\n}\n")
