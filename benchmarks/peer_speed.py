"""Integer-mode inference speed against SpikeYOLO's own code on the same architecture, side by side.

    YOLO_OFFLINE=1 python benchmarks/peer_speed.py --reference ~/src/SpikeYOLO --scale n --imgsz 640 --rounds 9 \
        --out bench/peer-speed.json

Every model runs in a worker process of its own and the parent asks them in turn for one timed forward (A B C A B C
...), so drift on a shared machine hits all alike; it reports the median and minimum per model and the ratios of the
medians to the reference (and to our ANN twin). Models, as ``yolo val`` / ``predict`` run them (``fuse()``, eval,
``torch.no_grad``, batch 1, a fixed random image):

- ``spikeyolo:<scale>``: SpikeYOLO's ``DetectionModel('snn_yolov8<scale>.yaml')`` from a checkout of their code
  (``--reference``, e.g. a clone of BICLab/SpikeYOLO), imported with the checkout first on ``PYTHONPATH``: their code
  is a fork of Ultralytics 8.0.197 named ``ultralytics``, so it cannot share a process with ours. Their model builder
  calls ``.cuda()``; on a CPU run the worker makes ``Module.cuda`` and ``Tensor.cuda`` no-ops before building (nothing
  of theirs is edited, copied or fetched). Their Python environment needs their imports (spikingjelly 0.0.0.0.14,
  timm, einops, torchinfo): ``--reference-python`` runs that worker with another interpreter.
- ``ours:<cfg>[@tag]``: our YAML at the same scale; ``@unfused`` skips ``fuse()``, ``@dense`` fuses every chain into
  one dense conv (``SPIKEYOLO_CHAINS=dense``), no tag is the default fast ``fuse()``. Like ``yolo val`` on Ultralytics
  8.4.1xx, the model then takes channels-last memory on an x86 CPU (AutoBackend's rule; their 8.0.197 fork has no
  such step, so their model runs as their validator runs it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OURS = ("cfg/ibra-spikeyolo.yaml", "cfg/ann-spikeyolo.yaml", "cfg/ibra-spikeyolo.yaml@unfused")


def _build_ours(spec: str, scale: str, device: str):
    """Our model as ``yolo val`` runs it (see the module docstring for the tags)."""
    import torch
    from _common import channels_last_default
    from ultralytics import YOLO

    from spikeyolo_ibra.fusion import fuse_synapses

    cfg, _, tag = spec.partition("@")
    path = Path(cfg)
    model = YOLO(str(REPO / path.with_name(f"{path.stem}-{scale}{path.suffix}"))).model.to(device).eval()
    if tag != "unfused":
        if tag == "dense":
            fuse_synapses(model, "dense")
        model = model.fuse(verbose=False)
    if channels_last_default(torch.device(device)):  # Ultralytics' AutoBackend does this in yolo val / predict
        model = model.to(memory_format=torch.channels_last)
    return model


def _build_spikeyolo(scale: str, device: str):
    """SpikeYOLO's model from their code (the checkout is first on sys.path), fused as their validator does."""
    import torch

    if device == "cpu":  # their DetectionModel.__init__ moves itself and a probe tensor to CUDA unconditionally

        def stay(self, *args, **kwargs):
            return self

        torch.nn.Module.cuda = stay
        torch.Tensor.cuda = stay
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel(f"snn_yolov8{scale}.yaml", verbose=False)
    return model.fuse(verbose=False).to(torch.device(device)).eval()


def worker(spec: str, scale: str, imgsz: int, device: str, threads: int) -> None:
    """Build one model, then answer each ``run`` line on stdin with the seconds of one forward."""
    import torch

    torch.set_num_threads(threads)
    kind, _, what = spec.partition(":")
    model = _build_spikeyolo(what, device) if kind == "spikeyolo" else _build_ours(what, scale, device)
    params = sum(p.numel() for p in model.parameters())
    x = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0)).to(device)
    cuda = device.startswith("cuda")
    print(json.dumps({"ready": spec, "params": params, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        with torch.no_grad():
            if cuda:
                torch.cuda.synchronize()
            t = time.perf_counter()
            model(x)
            if cuda:
                torch.cuda.synchronize()
        print(json.dumps({"seconds": time.perf_counter() - t}), flush=True)


def _start(spec: str, a: argparse.Namespace) -> subprocess.Popen:
    env = dict(os.environ)
    python = sys.executable
    if spec.startswith("spikeyolo:"):
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(a.reference), env.get("PYTHONPATH", "")]))
        python = a.reference_python or python
    cmd = [python, str(Path(__file__).resolve()), "--worker", spec, "--scale", a.scale, "--imgsz", str(a.imgsz)]
    cmd += ["--device", a.device, "--threads", str(a.threads)]
    cwd = a.reference if spec.startswith("spikeyolo:") else REPO
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=cwd)


def _ask(proc: subprocess.Popen, spec: str) -> dict:
    """One JSON line from a worker; its death is reported with what it printed."""
    while True:
        line = proc.stdout.readline()
        if not line:
            sys.exit(f"peer_speed: the worker for {spec} stopped (exit {proc.wait()}): see its error output above.")
        if line.startswith("{"):
            return json.loads(line)


def main() -> None:
    """Start the workers, time them in interleaved rounds, print and write medians and ratios."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reference", type=Path, help="a checkout of SpikeYOLO's code (BICLab/SpikeYOLO)")
    p.add_argument("--reference-python", help="the interpreter for their code (default: this one)")
    p.add_argument("--ours", nargs="*", default=list(DEFAULT_OURS), help="our YAMLs, with @unfused / @dense tags")
    p.add_argument("--scale", default="n", choices=("n", "s", "m", "l"))
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads of every worker")
    p.add_argument("--out", type=Path, help="JSON file to write")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        worker(a.worker, a.scale, a.imgsz, a.device, a.threads)
        return
    specs = ([f"spikeyolo:{a.scale}"] if a.reference else []) + [f"ours:{s}" for s in a.ours]
    if a.reference and not (a.reference / "ultralytics" / "nn" / "tasks.py").is_file():
        sys.exit(f"peer_speed: {a.reference} is not a checkout of SpikeYOLO's code (no ultralytics/nn/tasks.py).")
    procs = {spec: _start(spec, a) for spec in specs}
    ready = {spec: _ask(proc, spec) for spec, proc in procs.items()}
    times: dict[str, list[float]] = {spec: [] for spec in specs}
    try:
        for round_ in range(a.warmup + a.rounds):
            for spec, proc in procs.items():
                proc.stdin.write("run\n")
                proc.stdin.flush()
                seconds = _ask(proc, spec)["seconds"]
                if round_ >= a.warmup:
                    times[spec].append(seconds)
    finally:
        for proc in procs.values():
            proc.stdin.close()
            proc.wait()

    from _common import run_record

    reference = specs[0]
    twin = next((s for s in specs if "ann-spikeyolo" in s and "@" not in s), None)
    median = {s: statistics.median(t) for s, t in times.items()}
    result = {
        **run_record(),
        "scale": a.scale,
        "imgsz": a.imgsz,
        "rounds": a.rounds,
        "device": a.device,
        "reference": str(a.reference) if a.reference else None,
        "models": {
            s: {
                "params": ready[s]["params"],
                "median_s": median[s],
                "min_s": min(times[s]),
                f"x_{reference}": median[s] / median[reference],
                **({f"x_{twin}": median[s] / median[twin]} if twin else {}),
                "times_s": times[s],
            }
            for s in specs
        },
    }
    for s in specs:
        m = result["models"][s]
        vs_twin = f"  {m[f'x_{twin}']:.3f}x twin" if twin else ""
        print(f"{s:44s} {m['median_s'] * 1e3:8.1f} ms  {m[f'x_{reference}']:.3f}x {reference}{vs_twin}")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
