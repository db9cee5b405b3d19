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

__all__ = ("network", "summary")


def network(levels: dict[str, list[int]]) -> list[int]:
    """The whole network's histogram: the layers' histograms summed code by code."""
    hists = list(levels.values())
    return [sum(column) for column in zip(*hists, strict=True)] if hists else []


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
