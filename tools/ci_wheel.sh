#!/usr/bin/env bash
# The package as its users get it: build the wheel, install it (not editable) into a fresh venv, and from a folder
# outside the checkout train one tiny epoch, validate with pycocotools, run verified spike inference and the importer,
# naming every config by its bare name (model=ibra-spikeyolo-n.yaml data=shapes.yaml cfg=shapes-cpu.yaml).
# Usage: tools/ci_wheel.sh [PYTHON]   (default python3; `make test-wheel` passes the repo's .venv python to build with)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${1:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Offline, our own settings (datasets_dir becomes <cwd>/datasets: outside the venv and the checkout), 2 threads.
export YOLO_OFFLINE=1 YOLO_AUTOINSTALL=False YOLO_CONFIG_DIR="$work/config" SPIKEYOLO_CPU_THREADS=2

step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }

step "wheel"
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$repo"
wheel="$(ls "$work"/dist/spikeyolo_ibra-*.whl)"
"$python" -m zipfile -l "$wheel" | grep -E "cfg/(ibra-spikeyolo|datasets/shapes|train/shapes-cpu)\.yaml|spikeyolo_ibra\.pth"

step "fresh venv, torch from the local disk, then the wheel (not editable)"
"$python" -m venv "$work/venv"
bin="$work/venv/bin"
"$bin/python" -m pip install --quiet --upgrade pip
"$bin/python" -m pip install --quiet torch==2.14.1 torchvision==0.29.1
"$bin/python" -m pip install --quiet "$wheel"

mkdir "$work/run" && cd "$work/run"
"$bin/python" - <<'EOF'
import importlib.metadata, pathlib, spikeyolo_ibra
where = pathlib.Path(spikeyolo_ibra.__file__).parent
assert "site-packages" in where.parts, f"spikeyolo_ibra imported from {where}, not from the installed wheel"
files = importlib.metadata.files("spikeyolo-ibra")
assert not any("__editable__" in str(f) or str(f).endswith("_editable_impl_spikeyolo_ibra.pth") for f in files)
print("spikeyolo_ibra", spikeyolo_ibra.__version__, "from", where)
EOF

step "yolo train by bare names (the import hook registers our blocks in the stock command)"
"$bin/yolo" train model=ibra-spikeyolo-n.yaml data=shapes.yaml cfg=shapes-cpu.yaml epochs=1 imgsz=64 fraction=0.05 \
  batch=8 workers=0 cache=False project="$work/runs" name=train exist_ok=True
best="$work/runs/train/weights/best.pt"
test -s "$best"
test -d datasets/shapes/images/val  # generated under datasets_dir, not in site-packages
if find "$work/venv" -path "*shapes/images*" | grep -q .; then echo "the data set landed in the venv" >&2; exit 1; fi

step "yolo val with pycocotools"
"$bin/yolo" val model="$best" data=shapes.yaml imgsz=64 batch=16 workers=0 save_json=True project="$work/runs" \
  name=val exist_ok=True 2>&1 | tee "$work/val.log"
grep -E "pycocotools.*mAP" "$work/val.log"
test -s "$work/runs/val/coco_metrics.json"

step "spike-infer --verify"
"$bin/spike-infer" --weights "$best" --source datasets/shapes/images/val/000000000601.jpg --imgsz 64 --verify \
  --device cpu --out "$work/spike"

step "spikeyolo-import --help"
"$bin/spikeyolo-import" --help | head -3

step "done"
