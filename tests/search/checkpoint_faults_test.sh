#!/usr/bin/env bash
# Checkpoint faults as a user meets them in `mixnas train` (issue #22), after one finished epoch:
#   1. the disk fills up while checkpoints are written (ulimit -f): exit 1 and one line, no
#      temporary left, last.pt and results.csv as they were; a stale temporary of a killed run is
#      removed at the next start;
#   2. --resume with another model YAML or another class count: exit 1 naming both sides;
#   3. a corrupted or truncated last.pt: refused by --resume and by export, naming the file;
#   4. a diverging training (NaN loss): exit 1 naming epoch and batch, the epoch never saved;
#   and then the untouched run still resumes to the end.
#   checkpoint_faults_test.sh MIXNAS_BINARY SOURCE_DIR
set -euo pipefail
MIXNAS=$1 SRC=$2
source "$(dirname "${BASH_SOURCE[0]}")/../lib/tiny_job.sh"
tiny_workdir
# expect CODE PATTERN COMMAND...: the command's exit status and a line of its output.
expect() {
  local code=$1 pattern=$2 rc=0
  shift 2
  out=$("$@" 2>&1) || rc=$?
  [ "$rc" -eq "$code" ] || fail "expected exit $code, got $rc from: $* -- $out"
  grep -qF -- "$pattern" <<<"$out" || fail "output of '$*' lacks: $pattern -- $out"
}

tiny_dataset 16 8
tiny_config tiny.yaml <<YAML
name: run
train: {epochs: 1, batch: 8, workers: 1, warmup_epochs: 0.5}
augment: {mosaic: 0.0}
YAML
"$MIXNAS" -q train tiny.yaml > /dev/null
W=runs/train/run/weights
cp $W/last.pt saved_last.pt
cp runs/train/run/results.csv saved_results.csv

# 1. Disk full. A dead process's pid for the stale temporary: a reaped child's.
sh -c 'exit 0' &
dead=$!
wait $dead
echo partial > $W/last.pt.tmp.$dead.0badf00d
blocks=$(( $(stat -c %s saved_last.pt) / 1024 / 2 ))  # bash counts ulimit -f in KiB
rc=0
out=$(ulimit -f $blocks; "$MIXNAS" -q train tiny.yaml --resume train.epochs=2 2>&1) || rc=$?
[ $rc -eq 1 ] || fail "disk full: expected exit 1, got $rc: $out"
[ "$(wc -l <<<"$out")" -eq 1 ] || fail "disk full: expected one line, got: $out"
grep -q "cannot write .*last.pt: File too large" <<<"$out" || fail "disk full: $out"
ls $W runs/train/run | grep -q '\.tmp\.' && fail "a temporary file is left: $(ls $W)"
cmp -s $W/last.pt saved_last.pt || fail "last.pt changed by a failed write"
cmp -s runs/train/run/results.csv saved_results.csv || fail "results.csv lists an unsaved epoch"
echo "disk full: exit 1, one line, no temporary, last.pt kept: $out"

# 2. Another model YAML, another class count.
expect 1 "last.pt: the checkpoint was trained from " \
  "$MIXNAS" -q train tiny.yaml --resume model=$SRC/configs/models/yolov5n.yaml
grep -qE "yolov8-pico.yaml.*, the config gives .*yolov5" <<<"$out" ||
  fail "both models are not named: $out"
printf 'path: .\ntrain: images/train\nval: images/val\nnames: [a, b, c, d, e, f, g, h, i, j, k, l]\n' \
  > ds/twelve.yaml
expect 1 "trained for 10 classes" "$MIXNAS" -q train tiny.yaml --resume data=ds/twelve.yaml
grep -qF "the config gives 12" <<<"$out" || fail "the config's class count is not named: $out"
cmp -s $W/last.pt saved_last.pt || fail "a refused resume changed last.pt"

# 3. Corrupted (a flipped byte in the largest record) and truncated checkpoints.
python3 - $W/last.pt <<'PY'
import sys, zipfile
path = sys.argv[1]
with zipfile.ZipFile(path) as z:
    info = max(z.infolist(), key=lambda i: i.file_size)
data = bytearray(open(path, "rb").read())
name_len = int.from_bytes(data[info.header_offset + 26:info.header_offset + 28], "little")
extra_len = int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], "little")
at = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
data[at] ^= 0x01
open(path, "wb").write(bytes(data))
PY
expect 1 "$W/last.pt: corrupted" "$MIXNAS" -q export $W/last.pt --output exported
[ -e exported/model.mxr ] && fail "a corrupted checkpoint was exported"
expect 1 "$W/last.pt: corrupted" "$MIXNAS" -q train tiny.yaml --resume train.epochs=2
head -c $(( $(stat -c %s saved_last.pt) - 100 )) saved_last.pt > $W/last.pt
expect 1 "$W/last.pt: not a readable" "$MIXNAS" -q train tiny.yaml --resume train.epochs=2
grep -qF "truncated" <<<"$out" || fail "truncation is not named: $out"
cp saved_last.pt $W/last.pt

# 4. A learning rate that makes the loss diverge.
expect 1 "the training loss is" "$MIXNAS" -q train tiny.yaml --name nan train.lr0=1e30 train.epochs=2
# The first step at the full rate ends epoch 1 (finite, huge weights); epoch 2's first loss is NaN.
grep -qE "epoch [12]/2, batch [0-9]+/2: the training loss is -?(nan|inf)" <<<"$out" ||
  fail "the step is not named: $out"
[ "$(wc -l < runs/train/nan/results.csv)" -eq 2 ] || fail "a diverged epoch reached results.csv"

# The run itself resumes to the end.
"$MIXNAS" -q train tiny.yaml --resume train.epochs=2 > /dev/null
[ "$(wc -l < runs/train/run/results.csv)" -eq 3 ] || fail "the resumed run did not finish epoch 2"
echo "checkpoint faults: all refused as expected, the run resumed"
