#!/usr/bin/env bash
# mixnas val of a trained model, end to end: a short training on a tiny fmnist-det, then val by
# weights file, by run folder and by train config. Each prints the ultralytics table, and its P, R,
# mAP50 and mAP50-95 are those the trainer's own validation of the same weights wrote into
# results.csv (last.pt: the last epoch; best.pt: the epoch of best fitness). Data that does not fit
# the model is refused. Also: a training distilled from the trained model.
#   val_test.sh MIXNAS_BINARY SOURCE_DIR
set -euo pipefail
MIXNAS=$1 SRC=$2
source "$(dirname "${BASH_SOURCE[0]}")/../lib/tiny_job.sh"
tiny_workdir

tiny_dataset 96 16 5
tiny_config tiny.yaml <<YAML
name: t
train: {epochs: 3, batch: 8, workers: 1, warmup_epochs: 0.5, lr0: 0.01}
augment: {mosaic: 0.0}
YAML
"$MIXNAS" -q train tiny.yaml >/dev/null
csv=runs/train/t/results.csv

# "P R mAP50 mAP50-95" of an epoch row of results.csv.
row_metrics() { awk -F, -v r="$1" 'NR == r + 1 { print $5, $6, $7, $8 }' "$csv"; }
last_epoch=$(($(wc -l < "$csv") - 1))
best_epoch=$(awk -F, 'NR > 1 { f = 0.1 * $7 + 0.9 * $8; if (NR == 2 || f > best) { best = f; e = $1 } } END { print e }' "$csv")

check_val() {  # EPOCH OUTPUT
  local epoch=$1 out=$2
  grep -qE '^ +Class +Images +Instances +P +R +mAP50 +mAP50-95$' <<<"$out" || fail "no table header in: $out"
  local all
  all=$(grep -E '^ +all +16 +[0-9]+ ' <<<"$out") || fail "no 'all' row over 16 images in: $out"
  # One row per class with instances: the names of fmnist-det.
  local rows
  rows=$(grep -cE '^ +(T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot) ' <<<"$out" || true)
  [ "$rows" -ge 3 ] || fail "fewer than 3 class rows in: $out"
  local last
  last=$(tail -n 1 <<<"$out")
  [[ $last =~ ^mAP50-95=([0-9.]+)\ mAP50=([0-9.]+)$ ]] || fail "last line '$last'"
  # The table prints 3 significant digits, the csv 5 decimals, the last line 4.
  read -r p r m50 m95 <<<"$(row_metrics "$epoch")"
  read -r _ _ _ tp tr _ _ <<<"$all"
  awk -v a="$tp" -v b="$p" -v c="$tr" -v d="$r" -v e="${BASH_REMATCH[2]}" -v f="$m50" \
      -v g="${BASH_REMATCH[1]}" -v h="$m95" 'function off(x, y) { return (x - y > 6e-5 + 5e-3 * y) || (y - x > 6e-5 + 5e-3 * y) }
      BEGIN { exit (off(a, b) || off(c, d) || off(e, f) || off(g, h) || c + 0 <= 0) }' ||
    fail "epoch $epoch: val says P=$tp R=$tr '$last', results.csv P=$p R=$r mAP50=$m50 mAP50-95=$m95 (R must be > 0)"
}

out=$("$MIXNAS" -q val runs/train/t/weights/last.pt data=ds/fmnist-det.yaml imgsz=64 threads=1)
check_val "$last_epoch" "$out"
out=$("$MIXNAS" -q val runs/train/t threads=1)
check_val "$best_epoch" "$out"
out=$("$MIXNAS" -q val tiny.yaml)
check_val "$best_epoch" "$out"
out=$("$MIXNAS" -q val tiny.yaml weights=runs/train/t/weights/last.pt)
check_val "$last_epoch" "$out"

# Data that does not fit the model: exit 1 and a message saying so.
printf 'path: ds\ntrain: images/train\nval: images/val\nnames: [a, b, c]\n' > three.yaml
set +e
out=$("$MIXNAS" val runs/train/t/weights/best.pt data=three.yaml 2>&1); rc=$?
set -e
[ $rc -eq 1 ] || fail "3-class data: exit $rc, expected 1: $out"
grep -qF "the model detects 10 classes but three.yaml names 3" <<<"$out" || fail "3-class data: $out"
set +e
out=$("$MIXNAS" val runs/train/t/weights/best.pt data=ds/fmnist-det.yaml nc=5 2>&1); rc=$?
set -e
[ $rc -eq 1 ] || fail "nc=5: exit $rc, expected 1: $out"
grep -qF "nc=5 but ds/fmnist-det.yaml names 10 classes" <<<"$out" || fail "nc=5: $out"

# Distillation (train.distill): the trained model teaching one more epoch. With gain 0 the losses
# are those of the same training without a teacher up to rounding (the zero gradients it adds can
# change the order of float sums: 1e-4 here); with gain 1 the class loss moves by percents (6%
# here). A teacher that is not there is refused, naming it.
"$MIXNAS" -q train tiny.yaml name=d0 train.epochs=1 >/dev/null
"$MIXNAS" -q train tiny.yaml name=g0 train.epochs=1 train.distill=runs/train/t/weights/best.pt \
  train.distill_gain=0 >/dev/null
"$MIXNAS" -q train tiny.yaml name=g1 train.epochs=1 train.distill=runs/train/t/weights/best.pt \
  >/dev/null
losses() { awk -F, 'NR == 2 { print $2, $3, $4 }' "runs/train/$1/results.csv"; }
# The largest relative difference of two runs' box, cls and dfl losses.
apart() {
  paste <(losses "$1" | tr ' ' '\n') <(losses "$2" | tr ' ' '\n') |
    awk '{ d = ($1 - $2) / $2; if (d < 0) d = -d; if (d > m) m = d } END { print m + 0 }'
}
awk -v d="$(apart g0 d0)" 'BEGIN { exit !(d < 0.005) }' ||
  fail "distill_gain=0: losses $(losses g0), without a teacher $(losses d0)"
awk -v d="$(apart g1 d0)" 'BEGIN { exit !(d > 0.02) }' ||
  fail "distill_gain=1: losses $(losses g1), hardly apart from those without $(losses d0)"
set +e
out=$("$MIXNAS" train tiny.yaml name=gx train.epochs=1 train.distill=nosuch.pt 2>&1); rc=$?
set -e
[ $rc -eq 1 ] || fail "missing teacher: exit $rc, expected 1: $out"
grep -qF "nosuch.pt" <<<"$out" || fail "missing teacher not named: $out"

echo "val ok: last.pt = epoch $last_epoch, best.pt = epoch $best_epoch, by weights, run folder and config; mismatched data refused"
