"""pycocotools evaluation: exact metrics on hand-made boxes, category ids, the on_val_end callback end to end."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from spikeyolo_ibra.coco import annotations_for, evaluate, on_val_end

A, B = [10.0, 10.0, 100.0, 100.0], [50.0, 40.0, 100.0, 100.0]
HALF = 51 / 101  # AP when half the objects are found first: 101-point precision is 1 up to recall 0.50, then 0


def _gt(tmp_path: Path, boxes: dict[int, list[tuple[int, list[float]]]], cat_ids=(1, 2, 3)) -> Path:
    """Write a COCO ground truth: {image_id: [(category_id, bbox), ...]}."""
    anns = [
        {"id": len(boxes) * 100 + i, "image_id": im, "category_id": c, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
        for im, objs in boxes.items()
        for i, (c, b) in enumerate(objs)
    ]
    path = tmp_path / "instances_val2017.json"
    path.write_text(
        json.dumps(
            {
                "images": [{"id": im, "file_name": f"{im:012d}.jpg", "width": 200, "height": 200} for im in boxes],
                "annotations": [{**a, "id": n} for n, a in enumerate(anns, 1)],
                "categories": [{"id": c, "name": f"c{c}"} for c in cat_ids],
            }
        )
    )
    return path


def _pred(image_id: int, category_id: int, bbox: list[float], score: float = 0.9) -> dict:
    return {"image_id": image_id, "category_id": category_id, "bbox": bbox, "score": score}


def _shift(box: list[float], dx: float) -> list[float]:
    return [box[0] + dx, *box[1:]]


def test_perfect_predictions(tmp_path: Path) -> None:
    gt = _gt(tmp_path, {1: [(1, A), (2, B)], 2: [(3, A)]})
    preds = [_pred(1, 1, A), _pred(1, 2, B), _pred(2, 3, A)]
    (tmp_path / "predictions.json").write_text(json.dumps(preds))
    result = evaluate(tmp_path / "predictions.json", gt)
    assert result == pytest.approx({"mAP50": 1.0, "mAP50-95": 1.0, "annotations": str(gt)})


def test_shifted_box_counts_at_iou_050_not_075(tmp_path: Path) -> None:
    # 100x100 box moved 20 px: IoU = 80*100 / (2*100*100 - 80*100) = 2/3, a hit at t = 0.50..0.65 (4 of 10 thresholds)
    gt = _gt(tmp_path, {1: [(1, A)]})
    assert evaluate([_pred(1, 1, _shift(A, 20))], gt) == pytest.approx({"mAP50": 1.0, "mAP50-95": 0.4, **_ann(gt)})
    # with a second, exact box ranked first: AP = 1 at 4 thresholds, HALF at the 6 others
    gt = _gt(tmp_path, {1: [(1, A)], 2: [(1, B)]})
    preds = [_pred(2, 1, B, 0.9), _pred(1, 1, _shift(A, 20), 0.8)]
    assert evaluate(preds, gt) == pytest.approx({"mAP50": 1.0, "mAP50-95": (4 + 6 * HALF) / 10, **_ann(gt)})


def _ann(gt: Path) -> dict[str, str]:
    return {"annotations": str(gt)}


def test_image_without_predictions_counts_as_missed(tmp_path: Path) -> None:
    gt = _gt(tmp_path, {1: [(1, A)], 2: [(1, B)]})
    preds = [_pred(1, 1, A)]
    assert evaluate(preds, gt) == pytest.approx({"mAP50": HALF, "mAP50-95": HALF, **_ann(gt)})
    assert evaluate(preds, gt, image_ids=[1]) == pytest.approx({"mAP50": 1.0, "mAP50-95": 1.0, **_ann(gt)})  # subset
    assert evaluate([], gt) == {"mAP50": 0.0, "mAP50-95": 0.0, **_ann(gt)}
    with pytest.raises(ValueError, match="not in"):
        evaluate(preds, gt, image_ids=[1, 3])


def test_wrong_category_scores_zero(tmp_path: Path) -> None:
    gt = _gt(tmp_path, {1: [(1, A)]})
    assert evaluate([_pred(1, 2, A)], gt) == {"mAP50": 0.0, "mAP50-95": 0.0, **_ann(gt)}


def test_real_coco_category_ids(tmp_path: Path) -> None:
    """Ultralytics maps its 80 COCO classes to the 91 COCO ids when is_coco; evaluation must see those ids."""
    from ultralytics.data.converter import coco80_to_coco91_class

    class_map = coco80_to_coco91_class()
    classes = {0: 1, 11: 13, 79: 90}  # person, stop sign, toothbrush: class index -> COCO id
    assert {c: class_map[c] for c in classes} == classes
    gt = _gt(tmp_path, {1: [(1, A)], 2: [(13, B)], 3: [(90, A)]}, cat_ids=range(1, 91))
    boxes = {0: (1, A), 11: (2, B), 79: (3, A)}
    right = [_pred(im, class_map[c], b) for c, (im, b) in boxes.items()]
    naive = [_pred(im, c + 1, b) for c, (im, b) in boxes.items()]  # the non-COCO rule: only person survives
    assert evaluate(right, gt)["mAP50-95"] == pytest.approx(1.0)
    assert evaluate(naive, gt)["mAP50-95"] == pytest.approx(1 / 3)


def _validator(tmp_path: Path, gt_root: Path, jdict: list[dict], **args) -> SimpleNamespace:
    files = [str(gt_root / "images" / "val" / f"{i:012d}.jpg") for i in (1, 2)]
    return SimpleNamespace(
        training=False,
        args=SimpleNamespace(save_json=True, split="val", **args),
        data={"path": gt_root},
        dataloader=SimpleNamespace(dataset=SimpleNamespace(im_files=files)),
        jdict=jdict,
        save_dir=tmp_path,
        metrics=SimpleNamespace(),
    )


def test_on_val_end_with_a_fake_validator(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "annotations").mkdir(parents=True)
    _gt(root / "annotations", {1: [(1, A)], 2: [(1, B)], 3: [(1, A)]})  # image 3 is not in the validated subset
    jdict = [_pred(1, 1, A), _pred(2, 1, B)]
    frozen = json.dumps(jdict)

    for skipped in ({"training": True}, {"args": SimpleNamespace(save_json=False, split="val")}):
        v = _validator(tmp_path, root, jdict)
        vars(v).update(skipped)
        on_val_end(v)
        assert not hasattr(v.metrics, "coco") and not (tmp_path / "coco_metrics.json").exists()

    v = _validator(tmp_path, root, jdict)
    assert annotations_for(v) == root / "annotations" / "instances_val2017.json"
    on_val_end(v)
    want = {"mAP50": 1.0, "mAP50-95": 1.0, "annotations": str(annotations_for(v))}
    assert v.metrics.coco == pytest.approx(want)
    assert json.loads((tmp_path / "coco_metrics.json").read_text()) == v.metrics.coco
    assert json.dumps(jdict) == frozen  # what Ultralytics writes to predictions.json afterwards is untouched
    assert annotations_for(_validator(tmp_path, tmp_path / "nowhere", jdict)) is None


@pytest.mark.usefixtures("offline_font")
def test_callback_with_stock_model_val(tiny_shapes: Path, tmp_path: Path) -> None:
    from ultralytics import YOLO
    from ultralytics.utils import ROOT

    cfg = yaml.safe_load((ROOT / "cfg" / "models" / "v8" / "yolov8.yaml").read_text())
    (tmp_path / "yolov8n-shapes.yaml").write_text(yaml.safe_dump({**cfg, "nc": 6}))  # stock v8n, 6 classes
    torch.manual_seed(0)
    model = YOLO(tmp_path / "yolov8n-shapes.yaml")
    if on_val_end not in model.callbacks["on_val_end"]:  # the plugin may already have made it a default
        model.add_callback("on_val_end", on_val_end)

    metrics = model.val(
        data=str(tiny_shapes), imgsz=64, batch=4, save_json=True, plots=False, device="cpu", project=tmp_path
    )
    save_dir = Path(metrics.save_dir)
    saved = json.loads((save_dir / "coco_metrics.json").read_text())
    assert saved == metrics.coco and set(saved) == {"mAP50", "mAP50-95", "annotations"}
    gt = tiny_shapes.parent / "shapes" / "annotations" / "instances_val2017.json"
    assert saved["annotations"] == str(gt)
    preds = json.loads((save_dir / "predictions.json").read_text())  # written by Ultralytics after on_val_end
    coco = json.loads(gt.read_text())
    assert preds and {p["image_id"] for p in preds} <= {im["id"] for im in coco["images"]}
    assert {p["category_id"] for p in preds} <= {c["id"] for c in coco["categories"]}
    assert evaluate(save_dir / "predictions.json", gt) == saved
