#!/usr/bin/env bash
# kill -9 during training, then --resume: training continues from the last finished epoch and ends
# exactly as an uninterrupted run does (same results.csv). Once for a float model, once for an 8-bit
# one whose quantization starts after two float epochs (killed in the epoch that calibrates).
#   resume_test.sh MIXNAS_BINARY SOURCE_DIR
set -euo pipefail
MIXNAS=$1 SRC=$2
source "$(dirname "${BASH_SOURCE[0]}")/../lib/tiny_job.sh"
tiny_workdir
tiny_dataset 48 16
tiny_config tiny.yaml <<YAML
train: {epochs: 4, batch: 8, workers: 1, warmup_epochs: 0.5, ema: true}
augment: {mosaic: 1.0, close_mosaic: 1}
YAML
# run_and_resume CONFIG NAME EPOCHS_BEFORE_KILL: an uninterrupted run, then one killed -9 once that
# many epochs are finished (their checkpoint written) and resumed; results.csv must be identical.
run_and_resume() {
  local cfg=$1 name=$2 after=$3 epochs=4
  "$MIXNAS" -q train "$cfg" --name "$name"
  "$MIXNAS" -q train "$cfg" --name "${name}_killed" &
  local pid=$!
  for _ in $(seq 1 1200); do
    if [ -f "runs/train/${name}_killed/results.csv" ] &&
       [ "$(wc -l < "runs/train/${name}_killed/results.csv")" -ge $((after + 1)) ]; then break; fi
    if ! kill -0 $pid 2>/dev/null; then echo "$name: training ended before it could be killed"; exit 1; fi
    sleep 0.05
  done
  kill -9 $pid
  wait $pid 2>/dev/null || true
  local lines
  lines=$(wc -l < "runs/train/${name}_killed/results.csv")
  if [ "$lines" -ge $((epochs + 1)) ]; then echo "$name: the run finished before the kill; the test proves nothing"; exit 1; fi
  "$MIXNAS" -q train "$cfg" --name "${name}_killed" --resume
  if ! diff "runs/train/$name/results.csv" "runs/train/${name}_killed/results.csv"; then
    echo "$name: resumed run differs from the uninterrupted one"; exit 1
  fi
  echo "$name resume ok: killed after $((lines - 1)) epoch(s), resumed, results.csv identical"
}
run_and_resume tiny.yaml float 1

# Every Conv, C2f and SPPF row at 8-bit weights and activations; float for epochs 0-1, quantized
# from epoch 2 (activation ranges calibrated, weight steps fitted), BN folded in epoch 3.
python3 - "$SRC/configs/models/yolov8-pico.yaml" > q8.yaml <<'PY'
import re, sys
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    m = re.match(r"^(\s*- \[.*, (Conv|C2f|SPPF), \[.*\]\])(.*)$", line)
    if m:
        line = m.group(1)[:-1] + ", {bits: [8, 8]}]" + m.group(3)
    print(line)
PY
grep -q "bits: \[8, 8\]" q8.yaml || { echo "no quantized rows written"; exit 1; }
sed -e "s|^model: .*|model: q8.yaml|" tiny.yaml > qat.yaml
echo "quant: {start_epoch: 2, freeze_bn_epoch: 3}" >> qat.yaml
run_and_resume qat.yaml qat 2
