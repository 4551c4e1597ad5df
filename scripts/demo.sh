#!/usr/bin/env bash
# The default end-to-end job: the quick-start search on the built-in dataset
# (configs/search/quickstart.yaml): dataset -> latency table -> supernet search -> derive ->
# finetune -> export -> measure -> uniform baselines -> report; then the winner measured again
# through a mixnas-agent on loopback (the path a real device takes) and a few predictions.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/bin
echo "== mixnas demo: quick-start search of yolov8-pico on fmnist-det =="
$BIN/mixnas info

if [ ! -f datasets/fmnist-det/fmnist-det.yaml ]; then
  $BIN/mixnas data make fmnist-det --out datasets/fmnist-det
fi
$BIN/mixnas search configs/search/quickstart.yaml --name demo --exist-ok ${DEMO_ARGS:-}
RUN=runs/search/demo

# The winner through a local agent, as a device would measure it.
mkdir -p runs/agent
[ -f runs/agent/local.token ] || head -c 24 /dev/urandom | base64 > runs/agent/local.token
chmod 600 runs/agent/local.token  # the agent warns about a token other users can read
$BIN/mixnas-agent --token-file runs/agent/local.token --port 8470 > runs/agent/agent.log 2>&1 &
AGENT=$!
trap 'kill $AGENT 2>/dev/null || true' EXIT
sleep 1
$BIN/mixnas agent-ping configs/devices/local.yaml
$BIN/mixnas bench $RUN/model.mxr --runs 20 --warmup 5 --device configs/devices/local.yaml
IMAGES=(datasets/fmnist-det/images/val/*.png)
$BIN/mixnas predict $RUN/model.mxr "${IMAGES[@]:0:4}" --name demo --exist-ok
echo "== demo done: report at $RUN/report.html, figures in $RUN/summary.json =="
