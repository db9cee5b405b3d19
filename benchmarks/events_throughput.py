"""Events per second for reading Prophesee .dat files and binning label windows, and for the whole Gen1 converter.

    python benchmarks/events_throughput.py                     # ~1 min on 2 cores; writes benchmarks/results/events/
    PYTHONPATH=/tmp/tonic_site python benchmarks/events_throughput.py   # also times tonic's ToFrame and expelliarmus

A synthetic Gen1-like recording (304 x 240, Gen1's mean event rate, labels at 4 Hz) is written with ``write_dat``.
Timed, in interleaved rounds (medians; the machine is shared):

- read: ``read_dat`` (NumPy) against expelliarmus' C decoder when it is importable (it comes with tonic);
- bin: the W ms before each label into T bins of ON/OFF counts: ``to_frames`` (one ``np.bincount``) against the
  usual NumPy ways (``np.add.at`` on a 4-D index; one ``np.histogram2d`` per bin and polarity) and tonic's
  ``ToFrame(n_time_bins=T)`` when tonic is importable (not a dependency: install it into a throwaway folder);
- convert: ``spikeyolo_ibra.events.gen1.convert`` on a Gen1-layout folder of such recordings, 1 and 2 workers, with
  the time to convert all of Gen1 (about 750 GB of events, 8 bytes each) extrapolated from it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import REPO, run_record

from spikeyolo_ibra.atomic import replacing
from spikeyolo_ibra.events import EVENT_DTYPE, read_dat, to_frames, write_dat
from spikeyolo_ibra.events.frames import window
from spikeyolo_ibra.events.gen1 import Conversion, convert

H, W = 240, 304
GEN1_BYTES, GEN1_RATE = 750e9, 670_000  # about 750 GB of 8-byte events over about 39 hours: ~670k events/s


def recording(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n events at Gen1's mean rate (clustered in x like a road scene) and Gen1 boxes at 4 Hz."""
    rng = np.random.default_rng(seed)
    duration = int(n / GEN1_RATE * 1e6)
    ev = np.empty(n, EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(0, duration, n))
    ev["x"] = np.clip(rng.normal(W / 2, W / 4, n), 0, W - 1)
    ev["y"] = np.clip(rng.normal(H / 2, H / 5, n), 0, H - 1)
    ev["p"] = rng.integers(0, 2, n)
    t = np.arange(250_000, duration, 250_000)
    dtype = [("t", "<u8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"), ("class_id", "u1")]
    boxes = np.zeros(t.size, dtype + [("track_id", "<u4"), ("class_confidence", "<f4")])
    boxes["t"], boxes["x"], boxes["y"], boxes["w"], boxes["h"] = t, 100, 80, 60, 40
    return ev, boxes


def add_at(ev: np.ndarray, times: np.ndarray, t_end: int, win: int, T: int) -> np.ndarray:  # noqa: N803
    """The common NumPy way: a boolean mask, then np.add.at on a 4-D index."""
    keep = (ev["t"] >= t_end - win) & (ev["t"] < t_end)
    e = ev[keep]
    out = np.zeros((T, 2, H, W), np.int32)
    np.add.at(out, ((e["t"] - (t_end - win)) * T // win, e["p"], e["y"], e["x"]), 1)
    return np.minimum(out, 255).astype(np.uint8)


def histogram2d(ev: np.ndarray, times: np.ndarray, t_end: int, win: int, T: int) -> np.ndarray:  # noqa: N803
    """Another common way: one np.histogram2d per bin and polarity."""
    out = np.zeros((T, 2, H, W), np.uint8)
    for k in range(T):
        lo, hi = t_end - win + k * win // T, t_end - win + (k + 1) * win // T
        e = ev[(ev["t"] >= lo) & (ev["t"] < hi)]
        for p in (0, 1):
            q = e[e["p"] == p]
            counts, _, _ = np.histogram2d(q["y"], q["x"], bins=(H, W), range=((0, H), (0, W)))
            out[k, p] = np.minimum(counts, 255)
    return out


def ours(ev: np.ndarray, times: np.ndarray, t_end: int, win: int, T: int) -> np.ndarray:  # noqa: N803
    """to_frames on the window found by two binary searches in the contiguous timestamps (as the converter does)."""
    return to_frames(ev[window(times, t_end, win)], t_end, win, T, H, W)


def binners() -> dict[str, Callable]:
    found = {"to_frames (ours)": ours, "np.add.at": add_at, "np.histogram2d": histogram2d}
    try:
        from tonic.transforms import ToFrame
    except ImportError:
        return found

    def tonic(ev: np.ndarray, times: np.ndarray, t_end: int, win: int, T: int) -> np.ndarray:  # noqa: N803
        part = ev[window(times, t_end, win)]
        return ToFrame(sensor_size=(W, H, 2), n_time_bins=T)(part)

    found["tonic ToFrame"] = tonic
    return found


def readers() -> dict[str, Callable]:
    found: dict[str, Callable] = {"read_dat (ours)": read_dat}
    try:
        from expelliarmus import Wizard
    except ImportError:
        return found
    found["expelliarmus (C)"] = lambda path: Wizard(encoding="dat", fpath=str(path)).read()
    return found


def timed(fn: Callable, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=8_000_000, help="events in the timed recording")
    p.add_argument("--timesteps", type=int, default=5)
    p.add_argument("--window-ms", type=float, default=50.0)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--recordings", type=int, default=4, help="recordings in the converter run")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "events" / "throughput.json")
    a = p.parse_args()
    win = round(a.window_ms * 1000)
    result: dict = {"run": run_record(), "settings": vars(a) | {"out": str(a.out)}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ev, boxes = recording(a.events, seed=0)
        dat = write_dat(tmp / "bench_td.dat", ev, H, W)
        labels = np.unique(boxes["t"])
        times = np.ascontiguousarray(ev["t"])
        in_windows = sum(window(times, int(t), win).stop - window(times, int(t), win).start for t in labels)
        reference = [ours(ev, times, int(t), win, a.timesteps) for t in labels]
        for name, fn in binners().items():  # every way bins to the same counts (tonic's edges may differ)
            same = all(
                np.array_equal(fn(ev, times, int(t), win, a.timesteps), r)
                for t, r in zip(labels, reference, strict=True)
            )
            result.setdefault("bin_equal_to_ours", {})[name] = same
        read_times = {name: [] for name in readers()}
        bin_times = {name: [] for name in binners()}
        for _ in range(a.rounds):
            for name, fn in readers().items():
                read_times[name].append(timed(fn, dat))
            for name, fn in binners().items():
                bin_times[name].append(timed(lambda f=fn: [f(ev, times, int(t), win, a.timesteps) for t in labels]))
        result["recording"] = {"events": a.events, "bytes": dat.stat().st_size, "labels": int(labels.size)}
        result["read"] = {
            name: {"median_s": statistics.median(ts), "events_per_s": a.events / statistics.median(ts)}
            for name, ts in read_times.items()
        }
        result["bin"] = {
            name: {"median_s": statistics.median(ts), "window_events_per_s": in_windows / statistics.median(ts)}
            for name, ts in bin_times.items()
        }
        result["bin_window_events"] = int(in_windows)
        root = tmp / "gen1"
        (root / "train").mkdir(parents=True)
        for i in range(a.recordings):
            ev_i, boxes_i = recording(a.events, seed=i + 1)
            write_dat(root / "train" / f"rec{i}_td.dat", ev_i, H, W)
            np.save(root / "train" / f"rec{i}_bbox.npy", boxes_i)
        conv = Conversion(a.timesteps, win)
        result["convert"] = {}
        for workers in (1, 2):
            out = tmp / f"out{workers}"
            seconds = timed(lambda o=out, w=workers: convert(root, o, conv, ("train",), w, progress=False))
            rate = a.recordings * a.events / seconds
            result["convert"][f"{workers} workers"] = {
                "seconds": seconds,
                "events_per_s": rate,
                "gen1_hours": GEN1_BYTES / 8 / rate / 3600,
            }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with replacing(a.out) as tmp_out:
        tmp_out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("read", "bin", "bin_equal_to_ours", "convert")}, indent=2))


if __name__ == "__main__":
    main()
