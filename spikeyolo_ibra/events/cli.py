"""``spikeyolo-events``: event-camera data sets for the stock ``yolo`` command (``gen1``: the Prophesee Gen1 layout)."""

from __future__ import annotations

import argparse

from ..errors import one_sentence_errors

__all__ = ("main", "parser")

EPILOG = """examples:
  spikeyolo-events gen1 /data/gen1 /data/gen1-T2-50ms --timesteps 2 --window-ms 50
  yolo train model=cfg/ibra-spikeyolo-events.yaml data=/data/gen1-T2-50ms/gen1.yaml imgsz=320
  yolo val model=best.pt data=/data/gen1-T2-50ms/gen1.yaml split=test save_json=True
exit status: 0 done, 2 bad input (one sentence on stderr; finished recordings are kept, a rerun resumes).
Details: docs/events.md"""


def parser() -> argparse.ArgumentParser:
    """The command-line arguments."""
    p = argparse.ArgumentParser(
        prog="spikeyolo-events",
        description="Convert event-camera recordings into an Ultralytics data set of T-bin event samples.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser(
        "gen1",
        help="the Prophesee Gen1 layout: ROOT/{train,val,test}/<name>_td.dat + <name>_bbox.npy",
        description="One sample per labelled timestamp: the window of W ms that ends there, in T bins, as a 2T-page "
        "TIFF; boxes filtered by the Gen1 protocol (defaults: Perot et al. 2020), clipped to the sensor.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g.add_argument("root", metavar="ROOT", help="folder holding train/, val/ and test/")
    g.add_argument("out", metavar="OUT", help="output folder (a rerun with the same options resumes)")
    g.add_argument("--timesteps", type=int, required=True, metavar="T", help="time bins per sample")
    g.add_argument("--window-ms", type=float, required=True, metavar="W", help="window before each label, ms")
    g.add_argument("--skip-ms", type=float, default=500.0, help="drop labels at t <= this (default 500; toolbox 100)")
    g.add_argument("--min-diag", type=float, default=30.0, help="least box diagonal, px (default 30)")
    g.add_argument("--min-side", type=float, default=10.0, help="least box width and height, px (default 10)")
    g.add_argument("--splits", nargs="+", default=["train", "val", "test"], help="splits to convert (default all)")
    g.add_argument("--workers", type=int, default=None, help="processes (default: CPUs, at most 8; 0: none)")
    return p


@one_sentence_errors("spikeyolo-events")
def main(argv: list[str] | None = None) -> int:
    """Run a subcommand; exit 0 when done, 2 on bad input (one sentence on stderr)."""
    args = parser().parse_args(argv)
    from .gen1 import Conversion, Protocol, convert

    protocol = Protocol(round(args.skip_ms * 1000), args.min_diag, args.min_side)
    conv = Conversion(args.timesteps, round(args.window_ms * 1000), protocol=protocol)
    print(convert(args.root, args.out, conv, splits=args.splits, workers=args.workers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
