#!/usr/bin/env bash
# One GPU session, under 8 minutes: training throughput at 640 (AMP off) for scales n and s, IBRA against the ANN
# twin; spike-mode inference throughput against integer mode; then accuracy at equal budget on the built-in set
# (four models, two seeds, in parallel on one GPU; EPOCHS=20 by default).
#   bash benchmarks/gpu.sh OUT_DIR         (needs the package importable: pip install -e . or PYTHONPATH=.)
set -euo pipefail
out=${1:-bench/gpu}
mkdir -p "$out"
export YOLO_OFFLINE=1 PYTHONUNBUFFERED=1
for scale in n s; do
  python benchmarks/speed.py --mode train --device 0 --imgsz 640 --batch 32 --rounds 5 \
    --models "cfg/ibra-spikeyolo-$scale.yaml" "cfg/ann-spikeyolo-$scale.yaml" --out "$out/train-$scale.json"
done
python benchmarks/spike_speed.py --device 0 --imgsz 640 --batch 16 --skip-float32 | tee "$out/spike-speed.txt"
pids=()
for model in cfg/ibra-spikeyolo.yaml cfg/spikeyolo.yaml cfg/ann-spikeyolo.yaml yolov8n.yaml; do
  for seed in 0 1; do
    python benchmarks/accuracy.py --model "$model" --seed "$seed" --epochs "${EPOCHS:-20}" \
      --set imgsz=128 batch=32 device=0 --out "$out/accuracy" > "$out/acc-$(basename "$model" .yaml)-$seed.log" 2>&1 &
    pids+=($!)
  done
done
for pid in "${pids[@]}"; do wait "$pid" || echo "an accuracy run failed: see $out/*.log"; done
python benchmarks/accuracy.py --table "$out/accuracy" | tee "$out/accuracy.md"
