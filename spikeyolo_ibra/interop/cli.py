"""``spikeyolo-import``: a checkpoint saved by SpikeYOLO's own code as an ordinary checkpoint of this package."""

from __future__ import annotations

import argparse

from ..errors import one_sentence_errors

__all__ = ("main", "parser")

EPILOG = """examples:
  spikeyolo-import --weights 69M_best.pt --out spikeyolo-l-coco.pt              # I-LIF, outputs equal to theirs
  spikeyolo-import --weights 69M_best.pt --out ibra-l-init.pt --neuron ibra     # IBRA-LIF, to fine-tune
  yolo val model=spikeyolo-l-coco.pt data=coco.yaml save_json=True              # pycocotools mAP
exit status: 0 written, 2 bad input (one sentence on stderr, nothing written). Details: docs/import.md"""


def parser() -> argparse.ArgumentParser:
    """The command-line arguments."""
    p = argparse.ArgumentParser(
        prog="spikeyolo-import",
        description="Convert a checkpoint saved by SpikeYOLO's trainer (BICLab/SpikeYOLO) into a spikeyolo_ibra "
        "checkpoint of spikeyolo.yaml that stock `yolo` loads. The file is read without their code and "
        "without running anything from it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--weights", required=True, metavar="SRC.pt", help="checkpoint saved by SpikeYOLO's trainer")
    p.add_argument("--out", required=True, metavar="DST.pt", help="checkpoint to write (replaced if it exists)")
    p.add_argument(
        "--neuron",
        choices=("ilif", "ibra"),
        default="ilif",
        help="ilif: spikeyolo.yaml, their neuron, equal outputs (default); "
        "ibra: ibra-spikeyolo.yaml initialised from their weights, for fine-tuning",
    )
    p.add_argument(
        "--cfg",
        metavar="YAML",
        help="optional: another model YAML of the same architecture, a path or one of the package's names "
        "(overrides --neuron)",
    )
    return p


@one_sentence_errors("spikeyolo-import")
def main(argv: list[str] | None = None) -> int:
    """Convert; exit 0 when written, 2 on bad input (one sentence on stderr, no traceback, nothing written)."""
    args = parser().parse_args(argv)
    from .convert import import_spikeyolo

    report = import_spikeyolo(args.weights, args.out, neuron=args.neuron, cfg=args.cfg)
    for line in report.lines():
        print(line)
    return 0
