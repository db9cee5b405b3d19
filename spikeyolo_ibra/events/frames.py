"""Events to frames: per time bin and polarity, how many events each pixel saw.

For the window ``[t_end - window_us, t_end)`` split into T equal bins, event (t, x, y, p) adds one to
``frames[k, p, y, x]`` with ``k = floor((t - t_end + window_us) * T / window_us)``: bin 0 is the earliest, channel 0
OFF, channel 1 ON. Counts saturate at 255 (uint8). The window's events become one flat index
``((k * 2 + p) * H + y) * W + x``, counted in one pass: ``np.bincount`` when they are many, ``np.unique`` (a sort of
the events alone) when they are fewer than 1/8 of the pixels, as in Gen1's 50 ms windows, where allocating and
clipping a full-size count array would cost more than the events.
"""

from __future__ import annotations

import numpy as np

from .errors import EventDataError

__all__ = ("to_frames", "window")

SPARSE = 8  # below size / SPARSE events, count by sorting


def window(t: np.ndarray, t_end: int, window_us: int) -> slice:
    """The slice of time-ordered timestamps ``t`` inside ``[t_end - window_us, t_end)`` (two binary searches).

    Pass a contiguous array (``np.ascontiguousarray(events["t"])``, once per recording): on a field of a structured
    array NumPy copies every timestamp at each call.
    """
    lo, hi = np.searchsorted(t, [t_end - window_us, t_end], side="left")
    return slice(int(lo), int(hi))


def to_frames(events: np.ndarray, t_end: int, window_us: int, timesteps: int, height: int, width: int) -> np.ndarray:
    """Bin the events of ``[t_end - window_us, t_end)`` into a ``(timesteps, 2, height, width)`` uint8 count array.

    Args:
        events: Structured array with fields t (microseconds), x, y, p (0 OFF, 1 ON), in any order.
        t_end: End of the window (excluded), microseconds.
        window_us: Window length, microseconds.
        timesteps: T, the number of equal time bins.
        height: Sensor rows.
        width: Sensor columns; events outside the sensor are ignored.

    Returns:
        Counts clipped at 255; bin 0 holds the earliest events, channel 0 the OFF events.

    """
    if window_us < timesteps or timesteps < 1 or height < 1 or width < 1:
        raise EventDataError(
            f"cannot bin a {window_us} us window into {timesteps} bins on a {width} x {height} sensor: "
            "use T >= 1 and a window of at least T microseconds."
        )
    t = events["t"].astype(np.int64, copy=False)
    x, y = events["x"].astype(np.int64, copy=False), events["y"].astype(np.int64, copy=False)
    p = events["p"].astype(np.int64, copy=False)
    dt = t - (t_end - window_us)
    keep = (dt >= 0) & (dt < window_us) & (x < width) & (y < height) & (x >= 0) & (y >= 0)
    if not keep.all():
        dt, x, y, p = dt[keep], x[keep], y[keep], p[keep]
    k = dt * timesteps // window_us
    flat = ((k * 2 + (p != 0)) * height + y) * width + x
    size = timesteps * 2 * height * width
    if flat.size < size // SPARSE:  # few events: sort them, no full-size count array to allocate and clip
        index, counts = np.unique(flat, return_counts=True)
        frames = np.zeros(size, np.uint8)
        frames[index] = np.minimum(counts, 255)
    else:
        counts = np.bincount(flat, minlength=size)
        frames = np.minimum(counts, 255, out=counts).astype(np.uint8)
    return frames.reshape(timesteps, 2, height, width)
