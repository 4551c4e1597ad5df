#!/usr/bin/env bash
# The C++ search example on a tiny job (yolov8-pico at 64 px, 64 train images, one epoch of each
# phase): it must finish, print its winner and headline, and leave the run folder the CLI leaves.
#   run_test.sh SEARCH_CPP MIXNAS SOURCE_DIR
set -euo pipefail
EXAMPLE=$1 MIXNAS=$2 SRC=$3
source "$SRC/tests/lib/tiny_job.sh"
tiny_workdir
tiny_dataset 64 16 5
tiny_config tiny.yaml <<YAML
name: example
search_space: {activations: [relu, silu], w_bits: [4, 8], a_bits: [8]}
search: {epochs: 2, warmup_epochs: 1, batch: 16}
cost: {runs: 3, warmup: 1, calibrate_n: 2, validate_n: 0}
baselines: ["silu:int8"]
finetune: {epochs: 1, batch: 16, workers: 1}
YAML
"$EXAMPLE" tiny.yaml > out.txt
cat out.txt
grep -q "^searched: mAP50-95 [0-9.]*, [0-9.]* ms, peak [0-9]* bytes$" out.txt
grep -q "^vs_silu_int8: mAP50-95 [-+][0-9.]* points" out.txt
for f in args.yaml arch.yaml model.mxr summary.json report.html; do
  [ -s "runs/search/example/$f" ] || { echo "missing runs/search/example/$f"; exit 1; }
done
# A bad override is refused with the key named, exit status 1.
if "$EXAMPLE" tiny.yaml search.epochs=x 2> bad.txt; then echo "search.epochs=x was accepted"; exit 1; fi
grep -q "search.epochs" bad.txt || { cat bad.txt; exit 1; }
