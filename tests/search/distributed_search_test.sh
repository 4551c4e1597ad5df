#!/usr/bin/env bash
# Data-parallel search (docs/distributed.md), on the tiny config of search_test.sh:
#   1. a 2-process supernet search gives the same architecture logits and weights as one process
#      (1e-5 relative);
#   2. kill -9 of one rank: the job stops within the timeout with an error naming the rank;
#      --resume finishes it with the arch.yaml of the uninterrupted 2-process run;
#   3. ranks started by another launcher (RANK etc. set by hand): when one dies, the other stops
#      with a clear error within MIXNAS_DIST_TIMEOUT instead of hanging.
#   distributed_search_test.sh MIXNAS_BINARY COMPARE_WEIGHTS_BINARY SOURCE_DIR
set -euo pipefail
MIXNAS=$1 COMPARE=$2 SRC=$3
source "$(dirname "${BASH_SOURCE[0]}")/../lib/tiny_job.sh"
tiny_workdir
export MIXNAS_DIST_TIMEOUT=30
tiny_dataset 80 8
tiny_config tiny.yaml <<YAML
$(tiny_space "[4, 8]" "[8, 32]")
search: {epochs: 3, warmup_epochs: 1, batch: 16, micro_batch: 8, arch_lr: 0.05, finetune: false}
cost: {runs: 3, warmup: 1, calibrate_n: 3, validate_n: 0, lut_cache: lutcache}
finetune: {workers: 1}
augment: {mosaic: 1.0, close_mosaic: 0}
YAML
# The table is measured once and cached: every search below reads the same one.
"$MIXNAS" -q lut build tiny.yaml

# 1. One process against two.
"$MIXNAS" -q search tiny.yaml --name one
"$MIXNAS" -q search tiny.yaml --name two --nproc 2
"$COMPARE" runs/search/one/weights/supernet.pt runs/search/two/weights/supernet.pt 1e-5
diff runs/search/one/arch.yaml runs/search/two/arch.yaml

# 2. kill -9 of rank 1 once the first epoch's checkpoint is written, then --resume.
"$MIXNAS" -q search tiny.yaml --name killed --nproc 2 2> killed.txt &
launcher=$!
for _ in $(seq 1 2400); do
  if [ -f runs/search/killed/results.csv ] && [ "$(wc -l < runs/search/killed/results.csv)" -ge 2 ]; then
    break
  fi
  kill -0 $launcher 2>/dev/null || { cat killed.txt; echo "the job ended before the kill"; exit 1; }
  sleep 0.05
done
rank1=$(pgrep -P $launcher | sort -n | tail -1)
kill -9 "$rank1"
start=$(date +%s)
if wait $launcher; then echo "the job succeeded although rank 1 was killed"; exit 1; fi
elapsed=$(( $(date +%s) - start ))
[ "$elapsed" -le "$MIXNAS_DIST_TIMEOUT" ] || { echo "stopped after ${elapsed}s"; exit 1; }
grep -q "rank 1 .*killed by signal 9" killed.txt || { cat killed.txt; exit 1; }
grep -q -- "--resume" killed.txt || { cat killed.txt; exit 1; }
done_epochs=$(( $(wc -l < runs/search/killed/results.csv) - 1 ))
[ "$done_epochs" -lt 3 ] || { echo "finished before the kill"; exit 1; }
echo "launcher after ${elapsed}s: $(grep "distributed job" killed.txt)"
"$MIXNAS" -q search tiny.yaml --name killed --nproc 2 --resume
diff runs/search/two/arch.yaml runs/search/killed/arch.yaml
echo "killed after $done_epochs epoch(s): resumed, same arch.yaml"

# 3. Ranks of a foreign launcher: rank 1 dies, rank 0 must fail with the distributed error.
export WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$((29600 + $$ % 300))
RANK=0 LOCAL_RANK=0 "$MIXNAS" -q search tiny.yaml --name manual 2> rank0.txt &
r0=$!
RANK=1 LOCAL_RANK=1 "$MIXNAS" -q search tiny.yaml --name manual 2> rank1.txt &
r1=$!
for _ in $(seq 1 2400); do
  [ -f runs/search/manual/probs.csv ] && break
  sleep 0.05
done
sleep 1
kill -9 $r1
start=$(date +%s)
if wait $r0; then echo "rank 0 succeeded although rank 1 was killed"; exit 1; fi
elapsed=$(( $(date +%s) - start ))
[ "$elapsed" -le $((MIXNAS_DIST_TIMEOUT + 10)) ] || { echo "rank 0 stopped after ${elapsed}s"; exit 1; }
grep -q "distributed job: .* failed on rank 0 of 2" rank0.txt || { cat rank0.txt; exit 1; }
echo "rank 0: $(grep "distributed job" rank0.txt | head -1)"
echo "distributed search ok (rank 0 alone stopped after ${elapsed}s)"
