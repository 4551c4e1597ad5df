#!/usr/bin/env bash
# The search as a user runs it, on a tiny config (yolov8-pico at 64 px, 96 train images):
#   1. the whole pipeline (table, search, derive, finetune, export, measure, baseline, report);
#   2. kill -9 during the search, then --resume: the same arch.yaml as an uninterrupted run; a
#      resume with another search space refused, naming the checkpoint and the tensor;
#   3. lambda_latency = 0 vs a large lambda_latency (at 128 px): different architectures, the
#      second faster on the runtime.
#   search_test.sh MIXNAS_BINARY SOURCE_DIR
set -euo pipefail
MIXNAS=$1 SRC=$2
source "$(dirname "${BASH_SOURCE[0]}")/../lib/tiny_job.sh"
tiny_workdir
tiny_dataset 96 32
tiny_config tiny.yaml <<YAML
$(tiny_space "[4, 8]" "[8, 32]")
search: {epochs: 3, warmup_epochs: 1, batch: 16, arch_lr: 0.05}
cost: {runs: 5, warmup: 1, calibrate_n: 3, validate_n: 2, lut_cache: lutcache}
baselines: ["silu:int8", silu]
finetune: {epochs: 1, batch: 16, workers: 1}
augment: {mosaic: 1.0, close_mosaic: 0}
YAML

# 1. The whole pipeline.
"$MIXNAS" -q lut build tiny.yaml
"$MIXNAS" -q search tiny.yaml --name full
for f in args.yaml arch.yaml results.csv probs.csv lut.json model.mxr summary.json report.html \
         weights/best.pt weights/supernet.pt baselines/silu/model.mxr \
         baselines/silu_int8/model.mxr; do
  [ -s runs/search/full/$f ] || { echo "missing runs/search/full/$f"; exit 1; }
done
python3 - runs/search/full/summary.json <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
for part in [s["searched"], s["baselines"]["silu"], s["baselines"]["silu_int8"]]:
    for k in ["map50_95", "map50", "latency_ms", "peak_bytes", "weight_bytes"]:
        assert k in part, k
    assert part["latency_ms"] > 0 and part["peak_bytes"] > 0
assert s["lut_mape"] >= 0, s["lut_mape"]
# The headline is the first baseline (SiLU at int8: the same bits), fp32 SiLU beside it.
assert s["headline"] == "vs_silu_int8", s["headline"]
for key in ["vs_silu_int8", "vs_silu"]:
    assert "latency_reduction_pct" in s[key] and "peak_memory_reduction_pct" in s[key], key
# int8 weights: a quarter of the fp32 baseline's.
assert s["baselines"]["silu_int8"]["weight_bytes"] < s["baselines"]["silu"]["weight_bytes"] / 3
PY
grep -q "<svg" runs/search/full/report.html || { echo "report without plots"; exit 1; }
[ "$(wc -l < runs/search/full/results.csv)" -eq 4 ] || { echo "results.csv should hold 3 epochs"; exit 1; }
# A baseline with bits that do not exist is refused, naming the key.
if "$MIXNAS" -q search tiny.yaml 'baselines=[silu:int4]' --name badbits 2> bad.txt; then
  echo "baselines=[silu:int4] was accepted"; exit 1
fi
grep -q "baselines.*silu:int4.*fp32, int8, searched" bad.txt || { cat bad.txt; exit 1; }

# 2. kill -9 during the search, then --resume (search only: the architecture is what matters).
# Both start from silu: a head start given once, when the warm-up ends (a resume must not give it
# again). The warm-up leaves the logits alone, so the probabilities after it are exactly the start's.
START="search.start_act=silu search.start_bits=8 search.start_logit=0.5"
"$MIXNAS" -q search tiny.yaml search.finetune=false search.epochs=4 $START --name straight
python3 - runs/search/straight/probs.csv <<'PY'
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
def silu(epoch):
    p = [float(r["probability"]) for r in rows
         if r["epoch"] == epoch and r["kind"] == "act" and r["candidate"] == "silu"]
    assert p, "no activation rows at epoch " + epoch
    return p
want = math.exp(0.5) / (math.exp(0.5) + 1)
assert all(abs(p - 0.5) < 1e-6 for p in silu("0")), silu("0")[:3]
assert all(abs(p - want) < 1e-5 for p in silu("1")), (silu("1")[:3], want)
# search.start_bits=8: the same head start for 8 bits wherever a site chooses between two widths.
for kind in ("w_bits", "a_bits"):
    two = {r["site"] for r in rows if r["epoch"] == "0" and r["kind"] == kind
           and r["candidate"] == "8" and abs(float(r["probability"]) - 0.5) < 1e-6}
    assert two, "no site chooses its " + kind
    got = [float(r["probability"]) for r in rows if r["epoch"] == "1" and r["kind"] == kind
           and r["candidate"] == "8" and r["site"] in two]
    assert len(got) == len(two) and all(abs(p - want) < 1e-5 for p in got), (kind, got[:3], want)
PY
"$MIXNAS" -q search tiny.yaml search.finetune=false search.epochs=4 $START --name killed &
pid=$!
for _ in $(seq 1 600); do
  if [ -f runs/search/killed/results.csv ] && [ "$(wc -l < runs/search/killed/results.csv)" -ge 2 ]; then break; fi
  if ! kill -0 $pid 2>/dev/null; then echo "the search ended before it could be killed"; exit 1; fi
  sleep 0.05
done
kill -9 $pid
wait $pid 2>/dev/null || true
if [ -f runs/search/killed/arch.yaml ]; then echo "the search finished before the kill; the test proves nothing"; exit 1; fi
"$MIXNAS" -q search tiny.yaml search.finetune=false search.epochs=4 $START --name killed --resume
diff runs/search/straight/arch.yaml runs/search/killed/arch.yaml || { echo "resumed search chose another architecture"; exit 1; }
diff <(cut -d, -f1-8 runs/search/straight/results.csv) <(cut -d, -f1-8 runs/search/killed/results.csv) \
  || { echo "resumed search logged other figures"; exit 1; }

# A resume with another search space is refused, naming the checkpoint and the misfitting tensor.
sed 's/activations: \[relu, silu\]/activations: [relu, silu, hardswish]/' tiny.yaml > wider.yaml
if "$MIXNAS" -q search wider.yaml search.finetune=false search.epochs=4 --name killed --resume \
    2> bad.err; then
  echo "a resume with another search space was accepted"; exit 1
fi
grep -q "killed/weights/supernet.pt: holds shape \[2\], the architecture expects \[3\] for '.*alpha'" \
  bad.err || { echo "unclear error:"; cat bad.err; exit 1; }

# A start activation that is no candidate is refused, naming the key.
if "$MIXNAS" -q search tiny.yaml search.start_act=mish --name badstart 2> bad.err; then
  echo "search.start_act=mish was accepted"; exit 1
fi
grep -q "search.start_act" bad.err || { echo "unclear error:"; cat bad.err; exit 1; }
if "$MIXNAS" -q search tiny.yaml search.start_bits=2 --name badstartbits 2> bad.err; then
  echo "search.start_bits=2 was accepted"; exit 1
fi
grep -q "search.start_bits: 2 is a candidate at no searchable site" bad.err || { cat bad.err; exit 1; }

# 3. The latency term steers the search. At 128 px: at 64 px the layers take a few microseconds,
# fp32 convs are as fast as int8 ones and whole-model times are mostly fixed ops and noise, so
# there is no faster architecture for the search to find.
"$MIXNAS" -q search tiny.yaml imgsz=128 cost.lambda_latency=0 cost.lambda_memory=0 baselines=[] --name lam0
"$MIXNAS" -q search tiny.yaml imgsz=128 cost.lambda_latency=50 cost.lambda_memory=0 cost.target_latency_ms=0.001 baselines=[] --name lam50
if diff -q runs/search/lam0/arch.yaml runs/search/lam50/arch.yaml >/dev/null; then
  echo "lambda_latency changed nothing"; exit 1
fi
# Measured again with more runs, alternating, best median of three (one-layer timings at 64 px
# are noisy on a shared machine; the search's own 5-run figures are not enough to compare).
best() { sort -g | head -1; }
for _ in 1 2 3; do
  for m in lam0 lam50; do
    "$MIXNAS" -q bench runs/search/$m/model.mxr --runs 50 --warmup 5 |
      sed -n 's/^LATENCY median_ms=\([0-9.]*\).*/\1/p' >> $m.ms
  done
done
a=$(best < lam0.ms) b=$(best < lam50.ms)
echo "lambda 0: $a ms, lambda 50: $b ms (best medians)"
python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); assert b < 0.9 * a, 'the latency-driven architecture is not measurably faster'" "$a" "$b"
echo "search ok"
