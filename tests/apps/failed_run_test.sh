#!/usr/bin/env bash
# What a failed command leaves behind and what `mixnas data check` tells a script (issue #22):
#   1. a search or train config that fails after its run folder was made leaves no folder (it
#      would hold only args.yaml and push the next run to exp2);
#   2. `mixnas data check` exits 0 on a clean dataset and 2 when it skipped files.
#   failed_run_test.sh MIXNAS_BINARY SOURCE_DIR
set -euo pipefail
MIXNAS=$1 SRC=$2
source "$(dirname "${BASH_SOURCE[0]}")/../lib/tiny_job.sh"
tiny_workdir

tiny_dataset 8 4
rc=0
"$MIXNAS" -q search "$SRC/configs/search/quickstart.yaml" --name bad data=missing.yaml 2>err.txt ||
  rc=$?
[ $rc -eq 1 ] || fail "search with a missing dataset: exit $rc ($(cat err.txt))"
grep -q "missing.yaml" err.txt || fail "the missing dataset is not named: $(cat err.txt)"
[ -e runs/search/bad ] && fail "a failed search left runs/search/bad: $(ls -R runs/search/bad)"

tiny_config tiny.yaml <<YAML
nc: 5
train: {epochs: 1, batch: 8, workers: 1}
YAML
rc=0
"$MIXNAS" -q train tiny.yaml --name badnc 2>err.txt || rc=$?
[ $rc -eq 1 ] || fail "train with nc=5 on 10 classes: exit $rc ($(cat err.txt))"
[ -e runs/train/badnc ] && fail "a failed train left runs/train/badnc: $(ls -R runs/train/badnc)"

"$MIXNAS" -q data check ds/fmnist-det.yaml > check.txt || fail "a clean dataset: exit $? ($(cat check.txt))"
first=$(ls ds/labels/train/*.txt | head -1)
echo "0 0.5 0.5" > "$first"
rc=0
"$MIXNAS" -q data check ds/fmnist-det.yaml > check.txt || rc=$?
[ $rc -eq 2 ] || fail "a dataset with a bad label file: exit $rc, expected 2 ($(cat check.txt))"
tail -1 check.txt | grep -q "1 file(s) skipped" || fail "the last line does not count: $(cat check.txt)"
echo "failed runs leave no folder; data check exits 0 when clean, 2 when it skipped files"
