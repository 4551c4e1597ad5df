#!/usr/bin/env bash
# Data-parallel training (docs/distributed.md): `mixnas train --nproc 2` with global batch B takes
# the same steps as one process with batch B (both with micro_batch B/2, augmentation on: it is
# seeded per sample of the epoch): the weights after 8 steps equal within 1e-5 relative. A run
# with another seed must differ (the comparison can fail).
#   distributed_train_test.sh MIXNAS_BINARY COMPARE_WEIGHTS_BINARY SOURCE_DIR
set -euo pipefail
MIXNAS=$1 COMPARE=$2 SRC=$3
source "$(dirname "${BASH_SOURCE[0]}")/../lib/tiny_job.sh"
tiny_workdir
export MIXNAS_DIST_TIMEOUT=60
tiny_dataset 32 8
tiny_config tiny.yaml <<YAML
train: {epochs: 2, batch: 8, micro_batch: 4, workers: 1, warmup_epochs: 0.5, ema: false}
augment: {mosaic: 1.0, close_mosaic: 1}
YAML
"$MIXNAS" -q train tiny.yaml --name one
"$MIXNAS" -q train tiny.yaml --name two --nproc 2
for f in results.csv weights/last.pt args.yaml; do
  [ -s runs/train/two/$f ] || { echo "--nproc 2: missing runs/train/two/$f"; exit 1; }
done
[ ! -e runs/train/two2 ] || { echo "--nproc 2: a rank made a run folder of its own"; exit 1; }
"$COMPARE" runs/train/one/weights/last.pt runs/train/two/weights/last.pt 1e-5
if "$COMPARE" runs/train/one/weights/last.pt runs/train/two/weights/last.pt 0 > /dev/null; then
  echo "(bit for bit equal)"
fi
"$MIXNAS" -q train tiny.yaml seed=5 --name other
if "$COMPARE" runs/train/one/weights/last.pt runs/train/other/weights/last.pt 1e-5; then
  echo "another seed gave the same weights: the comparison cannot fail"; exit 1
fi
# A global batch the ranks cannot share in whole micro-batches is refused, naming the key.
if "$MIXNAS" -q train tiny.yaml train.micro_batch=3 --name bad --nproc 2 2> bad.txt; then
  echo "micro_batch=3 with batch 8 over 2 ranks was accepted"; exit 1
fi
grep -q "micro_batch" bad.txt || { cat bad.txt; exit 1; }
echo "distributed training ok"
