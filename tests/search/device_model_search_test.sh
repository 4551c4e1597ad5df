#!/usr/bin/env bash
# A search through a device model, end to end on a tiny config (yolov8-pico at 64 px, 96 train
# images), predicted for this CPU's Zen 3 model (the host build's picks: no qemu needed):
#   1. the latency table is predicted, not measured, and says so in lut.json, summary.json and
#      report.html (model file, core, llvm-mca version);
#   2. `mixnas lut validate --measured` against a table whose entries are 1.25x the predicted ones:
#      every layer -20.0%, LUT-LAYERS mape=20.00.
#   device_model_search_test.sh MIXNAS_BINARY SOURCE_DIR
set -euo pipefail
MIXNAS=$1 SRC=$2
source "$(dirname "${BASH_SOURCE[0]}")/../lib/tiny_job.sh"
tiny_workdir
tiny_dataset 96 32
cat > zen3.yaml <<YAML
kind: model
name: ci-zen3
core: znver3
clock_ghz: 3.0
cores: 2
threads: 1
mem_bw_gbs: 20.0
YAML
tiny_config tiny.yaml <<YAML
$(tiny_space "[2, 8]" "[2, 8]")
search: {epochs: 2, warmup_epochs: 1, batch: 16, arch_lr: 0.05}
cost: {calibrate_n: 2, validate_n: 1, lut_cache: lutcache, target_latency_ratio: 0.7}
device: zen3.yaml
baselines: ["silu:int8"]
finetune: {epochs: 1, batch: 16, workers: 1}
augment: {mosaic: 1.0, close_mosaic: 0}
YAML

# 1. The search, its table and its reports say "predicted".
"$MIXNAS" -q search tiny.yaml --name model
RUN=runs/search/model
python3 - $RUN/summary.json $RUN/lut.json <<'PY'
import json, sys
s, t = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
p = s["latency_provenance"]
assert p["source"] == "predicted", p
assert p["text"] == "predicted for znver3 (device model ci-zen3), not measured", p["text"]
assert p["model_file"].endswith("zen3.yaml") and p["core"] == "znver3", p
assert "LLVM" in p["llvm_mca"], p["llvm_mca"]
assert s["device_id"] == "model:ci-zen3:znver3", s["device_id"]
assert t["predicted"] is True and t["provenance"]["source"] == "predicted", t.get("provenance")
assert t["device_id"] == "model:ci-zen3:znver3"
for part in [s["searched"], s["baselines"]["silu_int8"]]:
    assert part["latency_ms"] > 0, part
PY
grep -q "predicted for znver3 (device model ci-zen3), not measured" $RUN/report.html \
  || { echo "report.html does not say the latencies are predicted"; exit 1; }

# 2. lut validate against a "measured" table: every entry 1.25x the prediction.
python3 - $RUN/lut.json measured.json <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
for e in t["entries"].values():
    e["median_ms"] *= 1.25
t["device_id"] = "bench-host"
for k in ["predicted", "model", "provenance"]:
    t.pop(k, None)
json.dump(t, open(sys.argv[2], "w"))
PY
"$MIXNAS" -q lut validate tiny.yaml n=1 --measured measured.json > validate.txt
grep -q "LUT-LAYERS mape=20.00 max_err=20.00 n=" validate.txt || { cat validate.txt; exit 1; }
grep -q "(-20.0%)" validate.txt || { cat validate.txt; exit 1; }
echo "device model search: ok"
