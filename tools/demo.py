"""The main job, offline, in one command (``make demo``): data, training, COCO metrics, spike inference, energy.

Every step is the command a researcher would type, run as a subprocess and printed first:

1. ``yolo train model=cfg/ibra-spikeyolo.yaml data=cfg/datasets/shapes.yaml ...`` builds the built-in data set on
   first use (no network) and trains IBRA-SpikeYOLO-n for a fixed time budget (``--minutes``): on the first GPU when
   CUDA is present (``cfg/train/shapes-gpu.yaml``, 160 px), else on the CPU (``cfg/train/shapes-cpu.yaml``, 64 px);
   ``--device`` chooses;
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
from pathlib import Path

from spikeyolo_ibra.device import DeviceError, resolve_device
from spikeyolo_ibra.plugin import CPU_THREADS_ENV

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: What each kind of device trains with: recipe, default minutes, image size (training, validation, spike inference).
RECIPES = {"cpu": ("cfg/train/shapes-cpu.yaml", 9.0, 64), "cuda": ("cfg/train/shapes-gpu.yaml", 4.0, 160)}


def run(*cmd: str, env: dict[str, str] | None = None) -> None:
    """Print a command like a shell would show it (with ``env`` in front), run it, stop the demo if it fails."""
    shown = [f"{k}={v}" for k, v in (env or {}).items()]
    print(f"\n$ {shlex.join([*shown, *cmd])}", flush=True)
    if subprocess.run(cmd, cwd=REPO, env={**os.environ, **(env or {})}).returncode:
        sys.exit("demo stopped: the command above failed; its own message says why.")


def dataset_root() -> Path:
    """Where Ultralytics put the built-in data set (it resolves ``path: shapes`` against its datasets_dir)."""
    from ultralytics.data.utils import check_det_dataset

    return Path(check_det_dataset(str(REPO / "cfg/datasets/shapes.yaml"))["path"])


def main() -> None:
    """Run the whole story and print the summary."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or N (default: the first GPU if any, else cpu)")
    p.add_argument("--minutes", type=float, default=None, help="training time budget (default: 4 on a GPU, 9 on a CPU)")
    p.add_argument("--imgsz", type=int, default=None, help="image size (default: 160 on a GPU, 64 on a CPU)")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "demo", help="everything the demo writes")
    a = p.parse_args()
    try:
        device = resolve_device(a.device)
    except DeviceError as e:
        print(f"demo: {e}", file=sys.stderr)
        sys.exit(2)
    recipe, minutes, imgsz = RECIPES["cuda" if device.type == "cuda" else "cpu"]
    a.minutes = minutes if a.minutes is None else a.minutes
    a.imgsz = imgsz if a.imgsz is None else a.imgsz
    yolo_device = str(device.index or 0) if device.type == "cuda" else device.type  # Ultralytics' spelling
    start = time.perf_counter()
    out = a.out.resolve()
    # The stock command where pip installed it; our wrapper of it where the package came by --target or PYTHONPATH.
    yolo = [str(BIN / "yolo")] if (BIN / "yolo").is_file() else [sys.executable, "-m", "spikeyolo_ibra.cli"]
    common = [f"imgsz={a.imgsz}", f"device={yolo_device}", f"project={out}", "exist_ok=True"]
    threads = {CPU_THREADS_ENV: str(os.cpu_count() or 1)}  # on a CPU, Ultralytics alone would use cores - 1
    print(f"demo: training on {device} with {recipe}, {a.minutes:g} minutes, {a.imgsz} px", flush=True)

    run(
        *yolo,
        "train",
        "model=cfg/ibra-spikeyolo.yaml",
        "data=cfg/datasets/shapes.yaml",
        f"cfg={recipe}",
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
        "data=cfg/datasets/shapes.yaml",
        "save_json=True",
        "name=val",
        *common,
        env=threads,
    )

    val_images = dataset_root() / "images" / "val"
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
    energy = reports[0]["energy"]
    n_epochs = len((out / "train" / "results.csv").read_text().splitlines()) - 1
    epochs = f"{n_epochs} epoch{'s' * (n_epochs != 1)}"
    if device.type == "cpu":
        note = (
            f"note: {a.minutes:g} CPU minutes trained {epochs} from scratch, far from convergence: the mAP\n"
            f"      shows the pipeline, not what the detector reaches (docs/quickstart.md; --minutes trains longer)"
        )
    else:
        note = f"note: {a.minutes:g} GPU minutes on {device} trained {epochs} from scratch"
    print(
        f"\nmAP50={coco['mAP50']:.3f} mAP50-95={coco['mAP50-95']:.3f} (pycocotools, built-in val set)\n"
        f"equivalence {'PASS' if passed else 'FAIL'} (spike-driven vs integer model, float64)\n"
        f"energy: SNN {energy['snn_mJ']:.4f} mJ vs ANN twin {energy['ann_mJ']:.4f} mJ per image, "
        f"{energy['ratio']:.2f}x (45 nm fp32 costs)\n{note}\n"
        f"pictures: {out / 'spike' / 'report.html'}, {out / 'spike-bus' / 'report.html'}\n"
        f"demo wall time: {(time.perf_counter() - start) / 60:.1f} min"
    )
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
