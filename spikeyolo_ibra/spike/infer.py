"""Spike inference as a library function: load, unroll, run over images, verify, collect statistics and energy."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ultralytics.data.augment import LetterBox
from ultralytics.data.loaders import LoadImagesAndVideos
from ultralytics.engine.results import Results
from ultralytics.nn.tasks import load_checkpoint
from ultralytics.utils import TQDM
from ultralytics.utils.ops import scale_boxes

from ..atomic import sibling_dir, swap_in
from ..device import DeviceError, no_tf32, resolve_device
from ..energy import COSTS, energy_totals, layer_energy_mj
from ..neuron import IBLIF
from .errors import SpikeInferError
from .monitor import Monitor
from .report import write_report
from .runtime import ACCUMULATE, to_spike_driven
from .verify import Equivalence, detect, run_pair

__all__ = ("load_spiking_model", "spike_infer")

DTYPES = {"float32": torch.float32, "float64": torch.float64}
STRIDE = 32  # the detector's largest stride: a letterbox size must be a multiple of it


def _device(device: str | torch.device | None) -> torch.device:
    """The torch device named by ``device``; SpikeInferError (one sentence) for one this machine cannot run on."""
    try:
        return resolve_device(device)
    except DeviceError as e:
        raise SpikeInferError(str(e)) from e


def load_spiking_model(weights: str | Path, device: str | torch.device | None = "cpu") -> torch.nn.Module:
    """A local Ultralytics checkpoint as a float, eval, fused model; SpikeInferError for anything unusable."""
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
    return model.fuse(verbose=False).eval()


def _images(source: str | Path, imgsz: int) -> tuple[LoadImagesAndVideos, LetterBox]:
    """Ultralytics' image loader over a file, folder or glob, and its letterbox."""
    if not str(source).strip():
        raise SpikeInferError("--source is empty: pass an image file, a folder of images or a glob.")
    try:
        loader = LoadImagesAndVideos(str(source))
    except FileNotFoundError as e:
        raise SpikeInferError(
            f"source {source} does not exist or holds no images: pass an image file, a folder of images or a glob."
        ) from e
    if loader.nf != loader.ni:
        raise SpikeInferError(f"source {source} contains videos: pass images only.")
    return loader, LetterBox(imgsz, auto=False, stride=STRIDE)


def _tensor(image: np.ndarray, letterbox: LetterBox, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """BGR HWC uint8 -> letterboxed RGB (1, 3, H, W) in [0, 1]."""
    im = letterbox(image=image)[..., ::-1].transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(im)).to(device, dtype).unsqueeze(0) / 255


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
) -> dict[str, Any]:
    """Run ``weights`` spike-driven over ``source``, write the report to ``out`` (atomically) and return it.

    ``exact`` accumulates the plane convs of a float32 model in float64 (the float32 cure); ``energy`` picks the
    cost table. Raises SpikeInferError with one sentence for bad input; nothing is left in ``out`` then.
    """
    if dtype not in DTYPES or accumulate not in ACCUMULATE or energy not in COSTS:
        raise SpikeInferError(f"unknown dtype, accumulate or energy ({dtype}, {accumulate}, {energy}): see --help.")
    if imgsz <= 0 or imgsz % STRIDE:
        size = max(STRIDE, -(-imgsz // STRIDE) * STRIDE)
        raise SpikeInferError(f"imgsz {imgsz} is not a positive multiple of {STRIDE}: use e.g. --imgsz {size}.")
    device = _device(device)
    out = Path(out)
    if out.exists() and not (out / "report.json").is_file() and (not out.is_dir() or any(out.iterdir())):
        raise SpikeInferError(
            f"--out {out} exists and is not a spike-infer report (no report.json): pass a new or empty folder."
        )
    loader, letterbox = _images(source, imgsz)
    model = load_spiking_model(weights, device).to(DTYPES[dtype])
    spike_model = to_spike_driven(model, accumulate, torch.float64 if exact else None)
    names = model.names if isinstance(getattr(model, "names", None), dict) else {i: str(i) for i in range(model.nc)}
    tmp = sibling_dir(out, "tmp")
    try:
        eq = Equivalence(dtype)
        detections, images = [], []
        with Monitor(spike_model) as monitor, no_tf32():  # float32 on CUDA: IEEE, not TF32 (settings restored)
            for paths, ims, _ in TQDM(loader, total=len(loader), desc="spike inference"):
                if not ims:  # an image that did not decode (Ultralytics 8.4.0 yields an empty batch for it)
                    continue
                x = _tensor(ims[0], letterbox, DTYPES[dtype], device)
                if verify:
                    _, det = run_pair(model, spike_model, x, eq, conf, iou)
                else:
                    det = detect(spike_model(x)[0], conf, iou)
                det = det[0].clone()
                det[:, :4] = scale_boxes(x.shape[2:], det[:, :4], ims[0].shape)
                result = Results(ims[0], paths[0], names, boxes=det.float().cpu())
                image_file = tmp / f"{Path(paths[0]).stem}.jpg"
                if image_file.name in images:  # a.png beside a.jpg, or one name in two folders of a glob
                    image_file = tmp / f"{Path(paths[0]).stem}-{len(images)}.jpg"
                result.save(str(image_file))
                images.append(image_file.name)
                detections.append({"image": paths[0], "detections": result.summary()})
            missing = sorted(set(loader.files) - {d["image"] for d in detections})
            if missing:
                raise SpikeInferError(f"image {missing[0]} could not be decoded: replace or remove that file.")
            rows = monitor.rows()
            sample, sample_layer = monitor.sample, monitor.sample_layer
        costs = COSTS[energy]
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
        }
        report["equivalence"] = {"checked": verify, **(eq.as_dict() if verify else {"passed": None})}
        write_report(report, detections, sample, sample_layer, tmp)
        swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report
