"""Prophesee ``.dat`` event files (the Gen1 automotive set's ``*_td.dat``), read and written with plain NumPy.

Layout: text header lines that start with ``% `` (``% Height 240``, ``% Width 304``, ...), then one byte event type
(0 or 12: 2D change-detection events) and one byte event size (8), then little-endian records of two uint32: the
timestamp in microseconds and a word with x in bits 0-13, y in bits 14-27 and the polarity in bit 28. Files of old
releases have no header at all: then neither the type nor the size byte is there and the records start at byte 0
(the rule of Prophesee's own loader).
"""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np

from ..atomic import replacing
from .errors import EventDataError

__all__ = ("EVENT_DTYPE", "read_dat", "read_dat_header", "write_dat")

#: One event: time in microseconds, pixel column and row, polarity (0 = OFF, 1 = ON).
EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")])
RECORD = np.dtype([("t", "<u4"), ("w", "<u4")])
EVENT_TYPES = (0, 12)  # 2D events and CD events: the same 8-byte record
_XY_BITS, _MASK14 = 14, (1 << 14) - 1
_CHUNK = 1 << 16  # records decoded at a time


def read_dat_header(path: str | Path) -> tuple[int, dict[str, str]]:
    """Return (byte offset of the first record, header fields such as ``{"Height": "240"}``) of a ``.dat`` file.

    Raises:
        EventDataError: the file cannot be opened, or its event type or size is not that of 2D events.

    """
    path = Path(path)
    fields: dict[str, str] = {}
    try:
        with open(path, "rb") as f:
            lines = 0
            while True:
                start = f.tell()
                line = f.readline()
                if not line.startswith(b"% "):
                    break
                lines += 1
                words = line[2:].decode("latin-1").split(maxsplit=1)
                if words:
                    fields[words[0]] = words[1].strip() if len(words) > 1 else ""
            f.seek(start)
            if lines == 0:  # an old header-less file: 8-byte 2D events from byte 0
                return 0, fields
            kind = f.read(2)
    except OSError as error:
        raise EventDataError(
            f"{path} cannot be read ({error.strerror}): give an existing Prophesee .dat file."
        ) from None
    if len(kind) < 2 or kind[0] not in EVENT_TYPES or kind[1] != RECORD.itemsize:
        found = tuple(kind) if len(kind) == 2 else "nothing"
        raise EventDataError(
            f"{path} holds event type/size {found}, not 2D events of 8 bytes: give a Prophesee .dat file of 2D events."
        )
    return start + 2, fields


def read_dat(path: str | Path) -> np.ndarray:
    """Read every event of a Prophesee ``.dat`` file as a structured array of :data:`EVENT_DTYPE`.

    x = w & (2^14 - 1), y = (w >> 14) & (2^14 - 1), p = (w >> 28) & 1, vectorised over chunks of 65536 records.

    Raises:
        EventDataError: the file is truncated (a partial record), foreign (timestamps that go back in time, events
            outside the sensor its header declares) or not a 2D-event file.

    """
    path = Path(path)
    offset, fields = read_dat_header(path)
    raw = np.fromfile(path, dtype=np.uint8, offset=offset)
    if raw.size % RECORD.itemsize:
        raise EventDataError(
            f"{path} ends with a partial {raw.size % RECORD.itemsize}-byte event (truncated copy?): download it again."
        )
    records = raw.view(RECORD)
    t, w = records["t"], records["w"]
    if t.size > 1 and np.any(t[1:] < t[:-1]):
        raise EventDataError(f"{path} has timestamps that go back in time: it is damaged or not a Prophesee .dat file.")
    events = np.empty(t.size, EVENT_DTYPE)
    for start in range(0, t.size, _CHUNK):  # chunks keep the temporaries in cache: twice as fast as one pass
        part, word = events[start : start + _CHUNK], w[start : start + _CHUNK]
        part["t"] = t[start : start + _CHUNK]
        part["x"] = word & _MASK14
        part["y"] = (word >> _XY_BITS) & _MASK14
        part["p"] = (word >> 28) & 1
    for axis, key in (("x", "Width"), ("y", "Height")):
        size = fields.get(key, "")
        if size.isdigit() and t.size and int(events[axis].max()) >= int(size):
            raise EventDataError(
                f"{path} has an event at {axis} = {int(events[axis].max())}, outside the {key.lower()} of {size} its "
                "header declares: it is damaged or not a Prophesee .dat file."
            )
    return events


def write_dat(path: str | Path, events: np.ndarray, height: int, width: int, header: bool = True) -> Path:
    """Write ``events`` (fields t, x, y, p; t in microseconds, in time order) as a Prophesee ``.dat`` file.

    ``header=False`` writes the old header-less layout (records only). The file appears whole or not at all.

    Raises:
        EventDataError: events out of time order, outside ``height`` x ``width``, or with t outside [0, 2^32).

    """
    path = Path(path)
    t = np.asarray(events["t"], np.int64)
    x, y, p = (np.asarray(events[k], np.int64) for k in "xyp")
    if t.size and (t.min() < 0 or t.max() >= 1 << 32 or np.any(t[1:] < t[:-1])):
        raise EventDataError(f"events for {path} must be in time order with 0 <= t < 2^32 microseconds.")
    if t.size and (x.min() < 0 or y.min() < 0 or x.max() >= width or y.max() >= height or not np.isin(p, (0, 1)).all()):
        raise EventDataError(f"events for {path} must lie on the {width} x {height} sensor with polarity 0 or 1.")
    records = np.empty(t.size, RECORD)
    records["t"] = t
    records["w"] = x | (y << _XY_BITS) | (p << 28)
    with replacing(path) as tmp, open(tmp, "wb") as f:
        if header:
            date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
            f.write(f"% Date {date}\n% Version 2\n% Height {height}\n% Width {width}\n".encode())
            f.write(bytes((0, RECORD.itemsize)))
        records.tofile(f)
    return path
