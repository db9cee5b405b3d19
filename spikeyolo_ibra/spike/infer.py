"""Spike inference as a library function: load, unroll, run over images and videos, verify, collect statistics.

Per image it also keeps where the spikes went (:mod:`.maps`) and what the image cost; videos and streams of frames
become annotated videos (:mod:`.video`); ``compare`` runs a second network on the same inputs (:mod:`.compare`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ultralytics.engine.results import Results
from ultralytics.nn.tasks import load_checkpoint
from ultralytics.utils.ops import scale_boxes

from ..atomic import sibling_dir, swap_in
from ..device import DeviceError, no_tf32, resolve_device
from ..energy import COSTS, energy_totals, layer_energy_mj
from ..neuron import IBLIF
from . import units
from .compare import Comparison
from .errors import SpikeInferError
from .figures import plot_heatmap
from .monitor import Monitor
from .report import write_report
from .runtime import ACCUMULATE, to_spike_driven
from .source import STRIDE, Frame, open_source
from .verify import Equivalence, detect, run_pair
from .video import VideoSet

__all__ = ("load_spiking_model", "spike_infer")

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _device(device: str | torch.device | None) -> torch.device:
    """The torch device named by ``device``; SpikeInferError (one sentence) for one this machine cannot run on."""
    try:
        return resolve_device(device)
    except DeviceError as e:
        raise SpikeInferError(str(e)) from e


def load_spiking_model(
    weights: str | Path, device: str | torch.device | None = "cpu", fuse: bool = True
) -> torch.nn.Module:
    """A local Ultralytics checkpoint as a float, eval model; SpikeInferError for anything unusable.

    Fused as ``yolo val`` runs it unless ``fuse`` is False (the spike runtime builds its own graph from either).
    """
    device = _device(device)
    path = Path(weights)
    if not path.is_file():
        raise SpikeInferError(f"weights file {path} does not exist: pass the path of a trained .pt checkpoint.")
    if path.suffix != ".pt":
        raise SpikeInferError(f"weights file {path} is not a .pt checkpoint: pass an Ultralytics .pt file.")
    try:
        model, _ = load_checkpoint(path, device=device, fuse=False)
    except Exception as e:  # Ultralytics reports damaged files as TypeError, RuntimeError or pickling errors
        raise SpikeInferError(
            f"weights file {path} cannot be loaded as an Ultralytics checkpoint ({type(e).__name__}): "
            "re-save or re-export it from a trained model."
        ) from e
    if not any(isinstance(m, IBLIF) for m in model.modules()):
        raise SpikeInferError(
            f"{path} holds a non-spiking model (no IB-LIF neurons): "
            "pass a checkpoint trained from cfg/ibra-spikeyolo.yaml or cfg/spikeyolo.yaml."
        )
    return model.fuse(verbose=False).eval() if fuse else model.eval()


def _save_image(
    result: Results, frame: Frame, figures: dict, sop_map: np.ndarray, folder: Path, taken: set[str]
) -> dict:
    """Save an image with its detections (``<stem>.jpg``) and beside its SOP map (``<stem>-spikes.jpg``)."""
    stem = Path(frame.path).stem
    if f"{stem}.jpg" in taken:  # a.png beside a.jpg, or one name in two folders of a glob
        stem = f"{stem}-{len(taken)}"
    annotated = folder / f"{stem}.jpg"
    result.save(str(annotated))
    taken.add(annotated.name)
    heatmap = folder / f"{stem}-spikes.jpg"
    title = (
        f"{Path(frame.path).name}: {len(result.boxes)} detection(s); SNN {units.count(figures['sops'], 'SOPs')}, "
        f"{units.energy(figures['snn_mJ'])}; ANN twin {units.count(figures['ann_macs'], 'MACs')}, "
        f"{units.energy(figures['ann_mJ'])}"
    )
    plot_heatmap(result.plot()[..., ::-1], frame.image[..., ::-1], sop_map, title, heatmap)
    return {"annotated": annotated.name, "heatmap": heatmap.name}


@torch.no_grad()
def spike_infer(
    weights: str | Path,
    source: str | Path,
    imgsz: int = 640,
    device: str | torch.device | None = None,
    verify: bool = False,
    out: str | Path = "runs/spike",
    dtype: str = "float64",
    accumulate: str = "batched",
    energy: str = "fp32",
    exact: bool = False,
    conf: float = 0.25,
    iou: float = 0.7,
    compare: str | None = None,
    stream: bool = False,
    fps: float = 10.0,
) -> dict[str, Any]:
    """Run ``weights`` spike-driven over ``source``, write the report to ``out`` (atomically) and return it.

    ``exact`` accumulates the plane convs of a float32 model in float64 (the float32 cure); ``energy`` picks the
    cost table. Videos in ``source`` become annotated videos; ``stream`` makes all its frames one video at ``fps``.
    ``compare`` (a checkpoint, or neuron overrides such as ``scale=1``) runs a second network on the same inputs.
    Raises SpikeInferError with one sentence for bad input; nothing is left in ``out`` then.
    """
    if dtype not in DTYPES or accumulate not in ACCUMULATE or energy not in COSTS:
        raise SpikeInferError(f"unknown dtype, accumulate or energy ({dtype}, {accumulate}, {energy}): see --help.")
    if imgsz <= 0 or imgsz % STRIDE:
        size = max(STRIDE, -(-imgsz // STRIDE) * STRIDE)
        raise SpikeInferError(f"imgsz {imgsz} is not a positive multiple of {STRIDE}: use e.g. --imgsz {size}.")
    if not fps > 0:
        raise SpikeInferError(f"--fps {fps} is not a positive number of frames per second: use e.g. --fps 10.")
    device = _device(device)
    out = Path(out)
    if out.exists() and not (out / "report.json").is_file() and (not out.is_dir() or any(out.iterdir())):
        raise SpikeInferError(
            f"--out {out} exists and is not a spike-infer report (no report.json): pass a new or empty folder."
        )
    src = open_source(source, imgsz)
    model = load_spiking_model(weights, device).to(DTYPES[dtype])
    accumulator = torch.float64 if exact else None
    spike_model = to_spike_driven(model, accumulate, accumulator)
    other = Comparison(compare, weights, device, DTYPES[dtype], accumulate, accumulator) if compare else None
    names = model.names if isinstance(getattr(model, "names", None), dict) else {i: str(i) for i in range(model.nc)}
    costs = COSTS[energy]
    tmp = sibling_dir(out, "tmp")
    videos = VideoSet(tmp)
    try:
        eq = Equivalence(dtype)
        detections, images, per_image, taken = [], [], [], set()
        with Monitor(spike_model, maps=True) as monitor, no_tf32():  # float32 on CUDA: IEEE, not TF32 (restored)
            for n, frame in enumerate(src.iterate(DTYPES[dtype], device, "spike inference"), 1):
                x = frame.x
                if verify:
                    _, det = run_pair(model, spike_model, x, eq, conf, iou)
                else:
                    det = detect(spike_model(x)[0], conf, iou)
                det = det[0].clone()
                det[:, :4] = scale_boxes(x.shape[2:], det[:, :4], frame.image.shape)
                result = Results(frame.image, frame.path, names, boxes=det.float().cpu())
                figures, sop_map = monitor.image_figures(costs, frame.image.shape[:2])
                index = n if stream else frame.index
                record = {"image": frame.path, "frame": index, "detections": len(det), **figures}
                if index is None:
                    record.update(_save_image(result, frame, figures, sop_map, tmp, taken))
                    images.append(record["annotated"])
                else:
                    if stream:  # every frame of --source in one video
                        key, frames, rate = str(source), src.frames, fps
                    else:
                        key, (frames, rate) = frame.path, src.videos[frame.path]
                    video = videos.open(key, rate, frames)
                    video.add(result.plot(), frame.image, sop_map, figures["snn_mJ"], figures["firing_rate"])
                    record["video"] = video.path.name
                per_image.append(record)
                detections.append({"image": frame.path, "frame": index, "detections": result.summary()})
            missing = sorted(set(src.files) - {d["image"] for d in detections})
            if missing:
                raise SpikeInferError(f"image {missing[0]} could not be decoded: replace or remove that file.")
            rows, levels = monitor.rows(), {"this": monitor.levels()}
            sample, sample_layer = monitor.sample, monitor.sample_layer
        for row in rows:
            row["energy_mJ"] = layer_energy_mj(row, costs)
        report = {
            "weights": str(weights),
            "source": str(source),
            "imgsz": imgsz,
            "device": str(device),
            "dtype": dtype,
            "accumulate": accumulate,
            "exact_accumulation": exact,
            "neuron": next(m.neuron.config for m in spike_model.modules() if hasattr(m, "neuron")).to_mapping(),
            "images": len(detections),
            "energy": energy_totals(rows, costs),
            "layers": rows,
            "detections_file": "detections.json",
            "annotated_images": images,
            "per_image": per_image,
            "videos": videos.close(),
        }
        report["equivalence"] = {"checked": verify, **(eq.as_dict() if verify else {"passed": None})}
        if other is not None:
            report["compare"], levels["compare"] = other.run(src, DTYPES[dtype], device, costs)
        write_report(report, detections, sample, sample_layer, tmp, levels)
        swap_in(tmp, out)
    except BaseException:
        videos.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report
