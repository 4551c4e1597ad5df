#!/usr/bin/env bash
# The default end-to-end job on the built-in dataset. The search (issue 8) is not built yet, so
# this runs the longest real pipeline that exists today, and says so:
#   dataset -> train yolov8-pico (QAT-capable trainer) -> export .mxr -> measure it through a
#   mixnas-agent started on loopback -> predict on a few validation images.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/bin
EPOCHS=${DEMO_EPOCHS:-15}
echo "== mixnas demo: the search is not built yet; running dataset -> train -> export -> agent measurement -> predict =="
$BIN/mixnas info

if [ ! -f datasets/fmnist-det/fmnist-det.yaml ]; then
  $BIN/mixnas data make fmnist-det --out datasets/fmnist-det
fi
$BIN/mixnas train configs/train/fmnist-pico.yaml train.epochs=$EPOCHS --name demo --exist-ok
RUN=runs/train/demo

if $BIN/mixnas export --help >/dev/null 2>&1 && $BIN/mixnas export $RUN --format mxr,onnx; then
  # Measure through a local agent, as a search does.
  mkdir -p runs/agent
  [ -f runs/agent/local.token ] || head -c 24 /dev/urandom | base64 > runs/agent/local.token
  $BIN/mixnas-agent --token-file runs/agent/local.token --port 8470 > runs/agent/agent.log 2>&1 &
  AGENT=$!
  trap 'kill $AGENT 2>/dev/null || true' EXIT
  sleep 1
  $BIN/mixnas agent-ping configs/devices/local.yaml
  $BIN/mixnas bench $RUN/model.mxr --runs 20 --warmup 5 --device configs/devices/local.yaml
  IMAGES=(datasets/fmnist-det/images/val/*.png)
  $BIN/mixnas predict $RUN/model.mxr "${IMAGES[@]:0:4}" --name demo --exist-ok
else
  echo "export is not available yet; predicting with the trained weights"
  IMAGES=(datasets/fmnist-det/images/val/*.png)
  $BIN/mixnas predict $RUN/weights/best.pt "${IMAGES[@]:0:4}" --name demo --exist-ok
fi
echo "== demo done: results in $RUN (results.csv, weights/), drawings in runs/predict/demo =="
