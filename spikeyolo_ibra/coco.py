"""COCO box metrics with pycocotools, the reference implementation behind published COCO numbers.

Ultralytics 8.4.190 reports its own mAP and, for COCO/LVIS or ``save_json=True``, runs faster-coco-eval (installing
it on the fly when online). This module adds the pycocotools numbers as an ``on_val_end`` callback:

- ``on_val_end`` runs *before* Ultralytics writes ``predictions.json`` (engine/validator.py: the callback at line 291,
  the file at line 313), so it evaluates ``validator.jdict``, the list that becomes ``predictions.json``;
- it only runs for a standalone validation (``validator.training`` is False), which includes the trainer's final
  validation of ``best.pt`` (``final_eval`` calls ``validator(model=...)``), but not the per-epoch ones;
- category ids are taken as Ultralytics wrote them (``class_map``: COCO's 91 ids for COCO, ``class + 1`` otherwise),
  and image ids are ``int(stem)`` of the image files, as in Ultralytics' own ``pred_to_json``.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from ultralytics.utils import LOGGER

from .atomic import replacing


def evaluate(
    predictions_json: str | Path | list[dict[str, Any]],
    annotations_json: str | Path,
    image_ids: Iterable[int | str] | None = None,
) -> dict[str, Any]:
    """Compute COCO box AP with pycocotools.

    AP at one IoU threshold t is the area under the 101-point interpolated precision-recall curve, averaged over the
    categories that have ground truth; ``mAP50`` is AP at t = 0.5, ``mAP50-95`` the mean of AP over
    t = 0.50, 0.55, ..., 0.95. At most 100 detections per image count (COCO rule).

    Args:
        predictions_json: COCO result records (``image_id``, ``category_id``, ``bbox`` [x, y, w, h], ``score``), as a
            list or a JSON file.
        annotations_json: COCO ground-truth file.
        image_ids: Images to evaluate on (default: every image of the ground truth). An image without predictions
            still counts: its objects are missed.

    Returns:
        ``{"mAP50": float, "mAP50-95": float, "annotations": str}``; both mAPs are 0.0 without predictions and -1.0
        (pycocotools' convention) when the evaluated images hold no ground-truth object.

    Raises:
        ValueError: If an image id is not in the ground truth.

    """
    if not isinstance(predictions_json, list):
        predictions_json = json.loads(Path(predictions_json).read_text())
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress and its summary table
        gt = COCO(str(annotations_json))
        ids = sorted(gt.getImgIds() if image_ids is None else set(image_ids))
        if missing := set(ids) - set(gt.getImgIds()):
            raise ValueError(f"{len(missing)} image ids are not in {annotations_json}, e.g. {min(missing)}")
        result = {"mAP50": 0.0, "mAP50-95": 0.0, "annotations": str(annotations_json)}
        if predictions_json:
            dt = gt.loadRes([dict(p) for p in predictions_json])  # copies: loadRes adds keys to each record
            ev = COCOeval(gt, dt, "bbox")
            ev.params.imgIds = ids
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            result["mAP50"], result["mAP50-95"] = float(ev.stats[1]), float(ev.stats[0])
        elif not gt.getAnnIds(imgIds=ids):
            result["mAP50"] = result["mAP50-95"] = -1.0
    return result


def annotations_for(validator: Any) -> Path | None:
    """Return the COCO ground truth of the split a validator ran on, or None if there is none.

    Ultralytics' COCO rule (``annotations/instances_val2017.json``) extended to the split validated, which the built-in
    shapes set follows too: ``<data path>/annotations/instances_<split>2017.json``.
    """
    split = getattr(validator.args, "split", None) or "val"
    path = Path(validator.data["path"]) / "annotations" / f"instances_{split}2017.json"
    return path if path.is_file() else None


def _write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (temporary file in the same folder, then rename)."""
    with replacing(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2))


def on_val_end(validator: Any) -> None:
    """Ultralytics ``on_val_end`` callback: pycocotools mAP of a ``save_json=True`` validation.

    Logs one line, writes ``<save_dir>/coco_metrics.json`` and sets ``validator.metrics.coco`` (what ``Model.val()``
    returns). Skipped during training epochs, without ``save_json``, or without ground truth; a failure only warns,
    as Ultralytics does for its own COCO evaluation.
    """
    if validator.training or not validator.args.save_json:
        return
    annotations = annotations_for(validator)
    if annotations is None:
        LOGGER.info(f"pycocotools: skipped, no annotations/instances_*2017.json in {validator.data['path']}")
        return
    # Ultralytics' own rule for predictions.json: a numeric file stem is its integer image id, any other stem itself
    # (COCO's 000000000139.jpg is id 139; an event sample keeps its recording-and-time stem)
    stems = [Path(f).stem for f in validator.dataloader.dataset.im_files]
    try:
        result = evaluate(validator.jdict, annotations, [int(s) if s.isnumeric() else s for s in stems])
    except Exception as e:  # a metric add-on must not fail a finished validation
        LOGGER.warning(f"pycocotools unable to run: {e}")
        return
    m50, m5095 = result["mAP50"], result["mAP50-95"]
    LOGGER.info(f"pycocotools: mAP50={m50:.3f} mAP50-95={m5095:.3f} (annotations: {annotations})")
    _write_json(Path(validator.save_dir) / "coco_metrics.json", result)
    validator.metrics.coco = result
