"""The one GPU check: every GPU figure of docs/benchmarks.md in about 7 minutes on one data-centre GPU, one JSON file.

    python benchmarks/gpu_check.py --out bench/gpu.json                     # on the GPU machine (see below)
    python benchmarks/gpu_check.py --dry-run --device cpu --out bench/gpu-dry.json   # seconds-long rehearsal here

What it measures, each step a command of this repository (printed before it runs):

1. **Accuracy at equal budget**: IBRA-SpikeYOLO-n, SpikeYOLO I-LIF-n, the ANN twin and YOLOv8n, seeds 0, 1 and 2,
   plus IBRA-n asked for AMP (``amp=True``: the float32 rule must make it equal the float32 run) and IBRA-n forced
   under float16 and bfloat16 AMP (``--force-amp``: what the rule avoids), all at once on the one GPU
   (``benchmarks/accuracy.py --recipe cfg/train/shapes-gpu.yaml --set time=H``: the GPU recipe, a wall-clock budget,
   pycocotools mAP of the final model, energy of the trained spiking weights). IBRA-n seed 0 is the demo's training,
   shared with the other runs: a lower bound for ``make demo`` on an idle GPU.
2. **The stock commands on CUDA** with IBRA-n's best.pt: ``yolo val save_json=True`` (pycocotools),
   ``yolo predict``, ``yolo export format=onnx``.
3. **Spike-driven inference on CUDA**: ``tools/spike_infer.py --verify`` in float64 and in float32 (IEEE float32, no
   TF32) on validation images.
4. **Throughput**: spike mode against integer mode (``benchmarks/spike_speed.py --device 0``); integer-mode
   inference with chains factored against dense on the card (``benchmarks/speed.py --mode infer``); a training step
   with AMP off and on (``benchmarks/speed.py --mode train ... @amp``).

On the GPU machine (torch there, not Ultralytics, pycocotools or polars), carry the wheels in a git-ignored ``.whl``
folder (docs/benchmarks.md, "GPU check", has the download command) and run:

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
    PYTHONPATH=/tmp/site:$PWD YOLO_OFFLINE=1 python3 benchmarks/gpu_check.py --out $OUT/gpu.json

The package is then not installed, so commands run through ``python -m spikeyolo_ibra.cli`` (the stock ``yolo``
command with the plugin registered first) instead of ``yolo``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = ("cfg/ibra-spikeyolo.yaml", "cfg/spikeyolo.yaml", "cfg/ann-spikeyolo.yaml", "yolov8n.yaml")
SPIKEYOLO = [sys.executable, "-m", "spikeyolo_ibra.cli"]  # the yolo command line, installed or not (no hook needed)


def run(cmd: list[str], log: Path, timeout: float) -> dict:
    """Run one command (printed first), its output to ``log``; the exit status and seconds."""
    print(f"$ {shlex.join(cmd)}", flush=True)
    start = time.perf_counter()
    with open(log, "w") as f:
        try:
            code = subprocess.run(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    return {"command": shlex.join(cmd), "exit": code, "seconds": round(time.perf_counter() - start, 1), "log": log.name}


def main() -> None:
    """Run every step and write one JSON file."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("bench/gpu.json"))
    p.add_argument("--work", type=Path, help="folder for runs and logs (default: beside --out)")
    p.add_argument("--deadline", type=float, default=560, help="seconds after which steps not yet started are skipped")
    p.add_argument("--device", default="0", help="the GPU (Ultralytics' spelling: 0); cpu for a dry run")
    p.add_argument("--minutes", type=float, default=3.5, help="training budget of every run in step 1")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--skip-training", action="store_true", help="reuse the trained runs already in --work")
    p.add_argument("--dry-run", action="store_true", help="tiny settings: every step runs, nothing is measured")
    a = p.parse_args()
    from _common import run_record

    from spikeyolo_ibra.data.shapes import build_shapes, write_data_yaml

    started = time.perf_counter()
    work = a.work or a.out.with_suffix("")
    work.mkdir(parents=True, exist_ok=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every step: a run cut short still leaves its results
        a.out.write_text(json.dumps(record, indent=1, default=str))

    def in_time(name: str) -> bool:
        if time.perf_counter() - started < a.deadline:
            return True
        record["steps"][name] = {"exit": "skipped: deadline"}
        return False

    dry = a.dry_run
    minutes = 0.05 if dry else a.minutes
    imgsz = 64 if dry else 160
    seeds = a.seeds[:1] if dry else a.seeds
    record: dict = {**run_record(), "device": a.device, "dry_run": dry, "steps": {}}

    # the built-in data set, generated once before the parallel runs, with an absolute path
    data_root = build_shapes(work / "datasets" / "shapes", n_train=48 if dry else 600, n_val=16 if dry else 150)
    data = write_data_yaml(data_root, work / "shapes.yaml")
    overrides = [f"device={a.device}", f"imgsz={imgsz}", f"time={minutes / 60:.4f}"]
    overrides += ["workers=2" if dry else "workers=3"] + (["batch=8"] if dry else [])

    # Ultralytics' AMP check loads yolo26n.pt and would download it; offline, a YOLOv8n built from its YAML (random
    # weights) saved where the check looks lets it compare float32 with AMP outputs all the same.
    from ultralytics import YOLO as Ultralytics
    from ultralytics.utils import ASSETS, WEIGHTS_DIR

    amp_weights = Path(WEIGHTS_DIR) / "yolo26n.pt"
    if not amp_weights.is_file():
        amp_weights.parent.mkdir(parents=True, exist_ok=True)
        Ultralytics("yolov8n.yaml").save(amp_weights)
        record["amp_check_weights"] = "yolov8n.yaml with random weights, saved as yolo26n.pt (offline machine)"

    # 1. accuracy at equal budget, all runs at once
    ibra = "cfg/ibra-spikeyolo.yaml"
    runs = [(m, s, "", [], "False") for m in MODELS for s in seeds]
    runs += [(ibra, 0, "-amp-asked", [], "True")]  # what a user gets asking for AMP: float32, by our rule
    runs += [(ibra, 0, f"-amp-{amp}", ["--force-amp"], amp) for amp in ("True", "bf16")]  # what the rule avoids
    accuracy = work / "accuracy"

    def train(item: tuple[str, int, str, list[str], str]) -> dict:
        model, seed, tag, flags, amp = item
        name = f"{Path(model).stem}-s{seed}{tag}"
        cmd = [sys.executable, "benchmarks/accuracy.py", "--model", model, "--seed", str(seed), "--epochs", "1000"]
        cmd += ["--recipe", "cfg/train/shapes-gpu.yaml", "--data", str(data), "--out", str(accuracy / name)]
        cmd += [*flags, "--set", *overrides, f"amp={amp}"]
        return {name: run(cmd, work / f"train-{name}.log", timeout=60 * (minutes + 6))}

    if not (a.skip_training and accuracy.is_dir()):  # --skip-training: reuse the runs of an earlier call
        with ThreadPoolExecutor(max_workers=len(runs)) as pool:
            for result in pool.map(train, runs):
                record["steps"].update(result)
    results = {}
    for path in sorted(accuracy.glob("*/*.json")):
        r = json.loads(path.read_text())
        key = path.parent.name
        fields = ("mAP50", "mAP50-95", "ultralytics_mAP50", "ultralytics_mAP50-95", "curve", "wall_s", "forced_amp")
        results[key] = {k: r.get(k) for k in fields}
        results[key]["epochs"] = len(r.get("curve") or [])
        results[key]["first_epoch_mAP50_0.9"] = next(
            (row["epoch"] for row in r.get("curve") or [] if row["mAP50"] >= 0.9), None
        )
        results[key]["energy"] = r.get("energy")
    record["accuracy"] = results
    save()

    # 2. the stock commands on CUDA, 3. spike-driven inference
    best = accuracy / "ibra-spikeyolo-s0" / "runs" / "ibra-spikeyolo-s0" / "weights" / "best.pt"  # the demo's run
    val_images = str(data_root / "images" / "val" / ("*.jpg" if dry else "00000000060*.jpg"))  # the demo's images
    bus = str(ASSETS / "bus.jpg")
    common = [f"device={a.device}", f"imgsz={imgsz}", f"project={work / 'runs'}", "exist_ok=True"]
    spike = [sys.executable, "tools/spike_infer.py", "--weights", str(best), "--verify", "--source", val_images]
    spike += ["--imgsz", str(imgsz), "--device", "cpu" if a.device == "cpu" else f"cuda:{a.device}"]
    steps = {
        "spike-infer float64": [*spike, "--dtype", "float64", "--out", str(work / "spike-f64")],
        "spike-infer float32": [*spike, "--dtype", "float32", "--out", str(work / "spike-f32")],
        "yolo val": [*SPIKEYOLO, "val", f"model={best}", f"data={data}", "save_json=True", "name=val", *common],
        "yolo predict": [*SPIKEYOLO, "predict", f"model={best}", f"source={bus}", "name=predict", *common],
        "yolo export onnx": [*SPIKEYOLO, "export", f"model={best}", "format=onnx", "simplify=False", *common],
    }
    for name, cmd in steps.items():
        if in_time(name):
            record["steps"][name] = run(cmd, work / f"{name.replace(' ', '-')}.log", timeout=600)
            save()
    coco = work / "runs" / "val" / "coco_metrics.json"
    record["val_pycocotools"] = json.loads(coco.read_text()) if coco.is_file() else None
    for dtype in ("f64", "f32"):
        report = work / f"spike-{dtype}" / "report.json"
        if report.is_file():
            r = json.loads(report.read_text())
            record[f"spike_infer_{dtype}"] = {"equivalence": r["equivalence"], "energy": r["energy"]}

    # 4. throughput
    gpu = "cpu" if a.device == "cpu" else a.device
    size, batch = (64, 2) if dry else (640, 8)
    throughput = {
        "spike speed": [sys.executable, "benchmarks/spike_speed.py", "--device", gpu, "--imgsz", str(size)]
        + ["--batch", str(batch), "--repeats", "1" if dry else "5", "--skip-float32"],
        "infer factored vs dense": [sys.executable, "benchmarks/speed.py", "--mode", "infer", "--device", gpu]
        + ["--imgsz", str(size), "--batch", str(batch), "--rounds", "2" if dry else "5"]
        + ["--out", str(work / "infer.json"), "--models", "cfg/ibra-spikeyolo.yaml", "cfg/ibra-spikeyolo.yaml@dense"]
        + ["cfg/ann-spikeyolo.yaml", "cfg/ann-spikeyolo.yaml@dense"],
        "train amp off vs on": [sys.executable, "benchmarks/speed.py", "--mode", "train", "--device", gpu]
        + ["--imgsz", str(size), "--batch", str(batch * 4 if not dry else 2), "--rounds", "2" if dry else "5"]
        + ["--out", str(work / "train.json"), "--models", "cfg/ibra-spikeyolo.yaml", "cfg/ibra-spikeyolo.yaml@amp"],
    }
    for name, cmd in throughput.items():
        if in_time(name):
            record["steps"][name] = run(cmd, work / f"{name.replace(' ', '-')}.log", timeout=600)
            save()
    log = work / "spike-speed.log"
    lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
    record["spike_speed"] = [line for line in lines if "img/s" in line or line.startswith("scale n")]
    for name in ("infer", "train"):
        path = work / f"{name}.json"
        if path.is_file():
            models = json.loads(path.read_text())["models"]
            keys = ("median_s", "ratio_to_first", "peak_cuda_MiB")
            record[f"{name}_speed"] = {m: {k: v[k] for k in keys} for m, v in models.items()}

    record["wall_s"] = round(time.perf_counter() - started, 1)
    save()
    failed = [name for name, step in record["steps"].items() if step["exit"] != 0]
    summary = ("accuracy", "val_pycocotools", "spike_infer_f64", "spike_infer_f32", "spike_speed", "infer_speed")
    summary += ("train_speed", "wall_s")
    print(json.dumps({k: record.get(k) for k in summary}, indent=1, default=str))
    print(f"wrote {a.out}; failed steps: {failed or 'none'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
