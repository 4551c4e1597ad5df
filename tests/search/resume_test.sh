#!/usr/bin/env bash
# kill -9 during training, then --resume: training continues from the last finished epoch and ends
# exactly as an uninterrupted run does (same results.csv).
#   resume_test.sh MIXNAS_BINARY SOURCE_DIR
set -euo pipefail
MIXNAS=$1 SRC=$2
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
"$MIXNAS" -q data make fmnist-det --out ds --train 48 --val 16 --imgsz 64 --seed 3
cat > tiny.yaml <<YAML
model: $SRC/configs/models/yolov8-pico.yaml
data: ds/fmnist-det.yaml
imgsz: 64
threads: 1
train: {epochs: 4, batch: 8, workers: 1, warmup_epochs: 0.5, ema: true}
augment: {mosaic: 1.0, close_mosaic: 1}
YAML
"$MIXNAS" -q train tiny.yaml --name straight

"$MIXNAS" -q train tiny.yaml --name killed &
pid=$!
# Kill it hard once the first epoch is finished (its checkpoint written), during the second.
for _ in $(seq 1 600); do
  if [ -f runs/train/killed/results.csv ] && [ "$(wc -l < runs/train/killed/results.csv)" -ge 2 ]; then break; fi
  if ! kill -0 $pid 2>/dev/null; then echo "training ended before it could be killed"; exit 1; fi
  sleep 0.1
done
kill -9 $pid
wait $pid 2>/dev/null || true
lines=$(wc -l < runs/train/killed/results.csv)
if [ "$lines" -ge 5 ]; then echo "the run finished before the kill; the test proves nothing"; exit 1; fi
"$MIXNAS" -q train tiny.yaml --name killed --resume

if ! diff runs/train/straight/results.csv runs/train/killed/results.csv; then
  echo "resumed run differs from the uninterrupted one"; exit 1
fi
echo "resume ok: killed after $((lines - 1)) epoch(s), resumed, results.csv identical"
