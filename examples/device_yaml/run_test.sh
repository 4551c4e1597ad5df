#!/usr/bin/env bash
# The custom device YAML example: a latency table for a tiny search space predicted for
# my-board.yaml, which must say it is predicted for that model and core, and be slower than the
# same core at the development machine's clock and bandwidth (configs/devices/x86-znver3-model.yaml).
#   run_test.sh MIXNAS SOURCE_DIR
set -euo pipefail
MIXNAS=$1 SRC=$2
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
"$MIXNAS" -q data make fmnist-det --out ds --train 16 --val 8 --imgsz 64 --seed 5
for dev in board:$SRC/examples/device_yaml/my-board.yaml dev:$SRC/configs/devices/x86-znver3-model.yaml; do
  cat > ${dev%%:*}.yaml <<YAML
model: $SRC/configs/models/yolov8-pico.yaml
data: ds/fmnist-det.yaml
imgsz: 64
threads: 1
name: ${dev%%:*}
search_space: {activations: [relu, silu], w_bits: [8], a_bits: [8]}
cost: {calibrate_n: 0, validate_n: 0}
device: ${dev#*:}
YAML
  "$MIXNAS" -q lut build ${dev%%:*}.yaml --out ${dev%%:*}.json
done
python3 - board.json dev.json <<'PY'
import json, sys
board, dev = (json.load(open(f)) for f in sys.argv[1:3])
assert board.get("predicted") is True, "the table is not marked predicted"
p = board["provenance"]
assert p["model"] == "my-mini-pc" and p["core"] == "znver3", p
assert board["device_id"].startswith("model:my-mini-pc:znver3"), board["device_id"]
ms = lambda t: sum(e["median_ms"] for e in t["entries"].values())
assert set(board["entries"]) == set(dev["entries"]), "different signatures"
ratio = ms(board) / ms(dev)
print(f"my-mini-pc / x86-znver3-model: {ratio:.2f}x the predicted time over {len(board['entries'])} layers")
assert ratio > 1.3, ratio  # 2.0 vs 3.35 GHz and 8 vs 20 GB/s
PY
