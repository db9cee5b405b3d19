"""``spike-infer``: run a trained spiking detector spike-driven, verify it and report firing rates and energy."""

from __future__ import annotations

import argparse

from ..energy import COSTS, DEFAULT_MEMORY, MEMORY
from ..errors import one_sentence_errors
from .errors import SettingError
from .inference import DTYPES
from .runtime import ACCUMULATE

__all__ = ("main", "parser")


def parser() -> argparse.ArgumentParser:
    """The command-line arguments: the keyword arguments of :func:`~spikeyolo_ibra.spike.infer.spike_infer`."""
    p = argparse.ArgumentParser(prog="spike-infer", description=__doc__)
    p.add_argument("--weights", required=True, help="trained Ultralytics .pt checkpoint of a spiking model")
    p.add_argument(
        "--source",
        required=True,
        help="an image or video file, a folder or a glob; event samples (.tif from spikeyolo-events, a folder of "
        "them) or a Prophesee .dat recording with --t-end",
    )
    p.add_argument("--imgsz", type=int, default=640, help="letterbox size")
    p.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:N or N (default: the first GPU if there is one, else cpu)"
    )
    p.add_argument("--verify", action="store_true", help="compare integer and spike mode; FAIL exits with 1")
    p.add_argument("--out", default="runs/spike", help="report folder: new, empty or an old report")
    p.add_argument("--dtype", choices=tuple(DTYPES), default="float64", help="model dtype")
    p.add_argument("--accumulate", choices=ACCUMULATE, default="batched", help="planes at once or one at a time")
    p.add_argument("--exact", action="store_true", help="accumulate the planes in float64 (for --dtype float32)")
    p.add_argument("--energy", choices=tuple(COSTS), default="fp32", help="45 nm operation cost table")
    p.add_argument(
        "--memory", choices=tuple(MEMORY), default=DEFAULT_MEMORY, help="45 nm memory the data moves through"
    )
    p.add_argument("--conf", type=float, default=0.25, help="NMS confidence threshold")
    p.add_argument("--iou", type=float, default=0.7, help="NMS IoU threshold")
    p.add_argument(
        "--compare",
        default=None,
        metavar="CKPT|KEY=VALUE,...",
        help="also run another checkpoint, or these weights with neuron settings changed (e.g. scale=1), "
        "and show level use and energy side by side",
    )
    p.add_argument(
        "--t-end",
        type=int,
        nargs="+",
        default=None,
        metavar="T_US",
        help="with a .dat: the end of each window to run, microseconds from the start of the recording",
    )
    p.add_argument(
        "--window-ms",
        type=float,
        default=None,
        help="with a .dat: the window length, cut into the model's T bins (use the training data's events.window_ms)",
    )
    p.add_argument(
        "--sensor", default=None, metavar="WxH", help="with a .dat whose header gives no size: the sensor, e.g. 304x240"
    )
    p.add_argument("--stream", action="store_true", help="write all frames of --source as one annotated video")
    p.add_argument("--fps", type=float, default=10.0, help="frames per second of the --stream video")
    return p


@one_sentence_errors("spike-infer")
def main(argv: list[str] | None = None) -> int:
    """Run; exit 0 on success, 1 on FAIL, 2 on bad input (one sentence on stderr, no traceback)."""
    args = parser().parse_args(argv)
    from .infer import spike_infer  # Ultralytics' loaders and matplotlib: not for --help
    from .report import format_table

    try:
        report = spike_infer(**vars(args))
    except SettingError as e:  # the setting as the user typed it: --imgsz 100, not imgsz=100
        raise e.in_flags() from None
    print(format_table(report))
    print(f"report written to {args.out}")
    return 1 if report["equivalence"]["passed"] is False else 0
