"""The main job, offline, in one command (``make demo``): data, training, COCO metrics, spike inference, energy.

Every step is the command a researcher would type, run as a subprocess and printed first:

1. ``yolo train model=cfg/ibra-spikeyolo-<scale>.yaml data=cfg/datasets/<set>.yaml ...`` builds the built-in data set on
   first use (no network) and trains for a fixed time budget (``--minutes``): on the first GPU when CUDA is present,
   IBRA-SpikeYOLO-n on the full set (``cfg/train/shapes-gpu.yaml``, 160 px); else on the CPU, IBRA-SpikeYOLO-t on the
   set's demo level (``cfg/train/shapes-demo-cpu.yaml``, 96 px), or with ``--scale n`` the n model on the full set
   (``cfg/train/shapes-cpu.yaml``, 64 px); ``--device`` chooses;
2. ``yolo val ... save_json=True``: Ultralytics' mAP and the pycocotools mAP papers quote;
3. ``python tools/spike_infer.py --verify`` on validation images and on Ultralytics' ``bus.jpg``: binary spikes,
   the equivalence proof against the integer model, firing rates, SOPs and energy against the ANN twin.

It ends with a summary: ``mAP50=<x> mAP50-95=<y>`` (pycocotools), ``equivalence PASS``, the energy ratio, and where
the pictures are.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from spikeyolo_ibra.device import DeviceError, resolve_device
from spikeyolo_ibra.plugin import CPU_THREADS_ENV

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Recipe:
    """How the demo trains one model scale on one kind of device."""

    cfg: str  # Ultralytics cfg= file
    minutes: float  # default training budget
    imgsz: int  # training, validation and spike inference
    data: str  # data set YAML under cfg/datasets/


#: Per kind of device, per model scale; a scale not listed trains with its device's "n" recipe.
RECIPES = {
    "cpu": {
        "t": Recipe("cfg/train/shapes-demo-cpu.yaml", 8.5, 96, "shapes-demo"),
        "n": Recipe("cfg/train/shapes-cpu.yaml", 9.0, 64, "shapes"),
    },
    "cuda": {"n": Recipe("cfg/train/shapes-gpu.yaml", 4.0, 160, "shapes")},
}
DEFAULT_SCALE = {"cpu": "t", "cuda": "n"}


def run(*cmd: str, env: dict[str, str] | None = None) -> None:
    """Print a command like a shell would show it (with ``env`` in front), run it, stop the demo if it fails."""
    shown = [f"{k}={v}" for k, v in (env or {}).items()]
    print(f"\n$ {shlex.join([*shown, *cmd])}", flush=True)
    if subprocess.run(cmd, cwd=REPO, env={**os.environ, **(env or {})}).returncode:
        sys.exit("demo stopped: the command above failed; its own message says why.")


def idle_cores(seconds: float = 1.0) -> int:
    """How many cores no other process is using now (at least 1), measured over ``seconds``: the demo's CPU threads.

    Ultralytics alone trains on cores - 1 threads. A thread per idle core is fastest (2 threads: 1.4x one thread per
    epoch on 2 quiet cores), but OpenMP's waiting threads spin, and a thread whose core another process holds stalls
    its partners: with one busy process beside it, a 2-thread epoch took 28-44x as long as on quiet cores, while
    one thread kept its speed (docs/quickstart.md, "threads").
    """
    import psutil  # an Ultralytics dependency

    cores = os.cpu_count() or 1
    busy = psutil.cpu_percent(interval=seconds) / 100 * cores
    return max(1, min(cores, round(cores - busy)))


def images_detected_right(detections_json: Path) -> tuple[int, int]:
    """How many images of a spike-inference run were detected right, of how many.

    Right: each labelled object has a detection of its class with IoU >= 0.5, and each detection matches a labelled
    object so (labels found where Ultralytics looks for them, ``images/`` -> ``labels/``).
    """
    import torch
    from PIL import Image
    from ultralytics.data.utils import img2label_paths
    from ultralytics.utils.metrics import box_iou
    from ultralytics.utils.ops import xywhn2xyxy

    runs = json.loads(detections_json.read_text())
    right = 0
    for run in runs:
        width, height = Image.open(run["image"]).size
        label_file = Path(img2label_paths([run["image"]])[0])
        rows = label_file.read_text().split() if label_file.exists() else []  # no file: no object
        labels = torch.tensor([float(v) for v in rows]).reshape(-1, 5)
        truth = xywhn2xyxy(labels[:, 1:], w=width, h=height)
        found = torch.tensor([list(d["box"].values()) for d in run["detections"]]).reshape(-1, 4)
        same = labels[:, :1] == torch.tensor([float(d["class"]) for d in run["detections"]])[None]
        hit = (box_iou(truth, found) >= 0.5) & same  # labelled object x detection
        right += bool(hit.any(1).all() and hit.any(0).all())
    return right, len(runs)


def dataset_root(data: str) -> Path:
    """Where Ultralytics put a built-in data set (it resolves ``path: shapes`` against its datasets_dir)."""
    from ultralytics.data.utils import check_det_dataset

    return Path(check_det_dataset(str(REPO / data))["path"])


def main() -> None:
    """Run the whole story and print the summary."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or N (default: the first GPU if any, else cpu)")
    p.add_argument(
        "--scale", choices=("t", "n", "s", "m", "l"), default=None, help="model scale (default: t on a CPU, n on a GPU)"
    )
    p.add_argument("--minutes", type=float, default=None, help="training time budget (default: the recipe's)")
    p.add_argument("--imgsz", type=int, default=None, help="image size (default: the recipe's)")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "demo", help="everything the demo writes")
    a = p.parse_args()
    try:
        device = resolve_device(a.device)
    except DeviceError as e:
        print(f"demo: {e}", file=sys.stderr)
        sys.exit(2)
    kind = "cuda" if device.type == "cuda" else "cpu"
    a.scale = a.scale or DEFAULT_SCALE[kind]
    recipe = RECIPES[kind].get(a.scale, RECIPES[kind]["n"])
    a.minutes = recipe.minutes if a.minutes is None else a.minutes
    a.imgsz = recipe.imgsz if a.imgsz is None else a.imgsz
    data = f"cfg/datasets/{recipe.data}.yaml"
    yolo_device = str(device.index or 0) if device.type == "cuda" else device.type  # Ultralytics' spelling
    start = time.perf_counter()
    out = a.out.resolve()
    # The stock command where pip installed it; our wrapper of it where the package came by --target or PYTHONPATH.
    yolo = [str(BIN / "yolo")] if (BIN / "yolo").is_file() else [sys.executable, "-m", "spikeyolo_ibra.cli"]
    common = [f"imgsz={a.imgsz}", f"device={yolo_device}", f"project={out}", "exist_ok=True"]
    threads = {CPU_THREADS_ENV: os.environ.get(CPU_THREADS_ENV) or str(idle_cores())} if kind == "cpu" else {}
    print(
        f"demo: training IBRA-SpikeYOLO-{a.scale} on {device} with {recipe.cfg} and {data}, {a.minutes:g} minutes, "
        f"{a.imgsz} px" + (f", {threads[CPU_THREADS_ENV]} torch thread(s)" if threads else ""),
        flush=True,
    )

    run(
        *yolo,
        "train",
        f"model=cfg/ibra-spikeyolo-{a.scale}.yaml",
        f"data={data}",
        f"cfg={recipe.cfg}",
        f"time={a.minutes / 60:.4f}",
        "epochs=100",
        "val=False",
        "name=train",
        *common,
        env=threads,
    )
    best = out / "train" / "weights" / "best.pt"
    run(
        *yolo,
        "val",
        f"model={best}",
        f"data={data}",
        "save_json=True",
        "name=val",
        *common,
        env=threads,
    )

    val_images = dataset_root(data) / "images" / "val"
    spike = [sys.executable, "tools/spike_infer.py", "--weights", str(best), "--verify", "--device", str(device)]
    run(
        *spike,
        "--source",
        str(val_images / "00000000060*.jpg"),
        "--imgsz",
        str(a.imgsz),
        "--out",
        str(out / "spike"),
    )
    from ultralytics.utils import ASSETS

    run(*spike, "--source", str(ASSETS / "bus.jpg"), "--imgsz", "320", "--out", str(out / "spike-bus"))

    coco = json.loads((out / "val" / "coco_metrics.json").read_text())
    reports = [json.loads((out / d / "report.json").read_text()) for d in ("spike", "spike-bus")]
    passed = all(r["equivalence"]["passed"] for r in reports)
    right, shown = images_detected_right(out / "spike" / "detections.json")
    energy = reports[0]["energy"]
    n_epochs = len((out / "train" / "results.csv").read_text().splitlines()) - 1
    epochs = f"{n_epochs} epoch{'s' * (n_epochs != 1)}"
    where = "CPU minutes" if device.type == "cpu" else f"GPU minutes on {device}"
    note = f"note: {a.minutes:g} {where} trained IBRA-SpikeYOLO-{a.scale} for {epochs} from scratch"
    if recipe.data == "shapes-demo":
        note += "\n      on the demo level of the built-in set (larger objects, less clutter; docs/quickstart.md)"
    print(
        f"\nmAP50={coco['mAP50']:.3f} mAP50-95={coco['mAP50-95']:.3f} (pycocotools, built-in {recipe.data} val set)\n"
        f"equivalence {'PASS' if passed else 'FAIL'} (spike-driven vs integer model, float64)\n"
        f"report: {right} of {shown} val images detected right (each object found with its class at IoU >= 0.5, "
        "no other box)\n"
        f"energy: SNN {energy['snn_mJ']:.4f} mJ vs ANN twin {energy['ann_mJ']:.4f} mJ per image, "
        f"{energy['ratio']:.2f}x (45 nm fp32 costs)\n{note}\n"
        f"pictures: {out / 'spike' / 'report.html'}, {out / 'spike-bus' / 'report.html'}\n"
        f"demo wall time: {(time.perf_counter() - start) / 60:.1f} min"
    )
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
