#!/usr/bin/env bash
# Predictions as files, in ultralytics' layout: `mixnas predict --save-txt --save-conf --save-json`
# (runs/predict/<name>/labels/<stem>.txt, predictions.json) and `mixnas val --save-json` of the
# fixture's package (.mxr, run by the runtime) and of its weights (.pt): every printed detection
# is in both files with the same class, box and score; val of the package reports the mAP of the
# deployed model next to that of the weights. Export of a folder inside a search run takes the
# search's imgsz.
#   prediction_files_test.sh MIXNAS_BINARY FIXTURE_DIR
set -euo pipefail
MIXNAS=$1 FIX=$2
source "$(dirname "${BASH_SOURCE[0]}")/../lib/tiny_job.sh"
tiny_workdir
PY=/usr/bin/python3
[ -x $PY ] || PY=python3

out=$("$MIXNAS" -q predict "$FIX/model.mxr" "$FIX"/ds/images/val/*.png --conf 0.001 --save-txt \
      --save-conf --save-json --name files)
run=runs/predict/files
[ -f $run/predictions.json ] || fail "no $run/predictions.json"
[ -d $run/labels ] || fail "no $run/labels/"
$PY - "$run" "$out" <<'PY' || fail "predict files disagree with the printed detections"
import glob, json, os, re, sys
run, out = sys.argv[1], sys.argv[2]
names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
printed, image = [], None
for line in out.splitlines():
    m = re.match(r"^(\S+): (\d+) detections$", line)
    if m:
        image = m.group(1)
        continue
    m = re.match(r"^  (.+?) +([0-9.]+)  \[([-0-9.]+), ([-0-9.]+), ([-0-9.]+), ([-0-9.]+)\]$", line)
    if m:
        printed.append((image, names.index(m.group(1)), float(m.group(2)), *map(float, m.group(3, 4, 5, 6))))
assert printed, "no detections printed:\n" + out
dets = json.load(open(os.path.join(run, "predictions.json")))
assert len(dets) == len(printed), (len(dets), len(printed))
labels = {}
for path in glob.glob(os.path.join(run, "labels", "*.txt")):
    labels[os.path.basename(path)[:-4]] = [list(map(float, l.split())) for l in open(path)]
assert sum(len(v) for v in labels.values()) == len(printed)
for (image, cls, score, x1, y1, x2, y2), d in zip(printed, dets):
    stem = os.path.basename(image)[:-4]
    want_id = int(stem) if stem.isdigit() else stem
    assert d["image_id"] == want_id and d["category_id"] == cls, (d, image, cls)
    bx, by, bw, bh = d["bbox"]
    assert max(abs(bx - x1), abs(by - y1), abs(bx + bw - x2), abs(by + bh - y2)) <= 0.051, (d, x1, y1, x2, y2)
    assert abs(d["score"] - score) <= 5e-4, (d, score)
    # YOLO txt: class cx cy w h conf, normalised to the 64 x 64 image.
    row = min(labels[stem], key=lambda r: abs(r[1] * 64 - (x1 + x2) / 2) + abs(r[2] * 64 - (y1 + y2) / 2) + 10 * abs(r[5] - score) + 100 * (r[0] != cls))
    assert len(row) == 6 and int(row[0]) == cls, row
    assert abs(row[1] * 64 - (x1 + x2) / 2) <= 0.06 and abs(row[3] * 64 - (x2 - x1)) <= 0.11, (row, x1, x2)
    assert all(0 <= v <= 1 for v in row[1:]), row
print("predict files: %d detections in labels/ and predictions.json" % len(printed))
PY

# --save-conf without --save-txt is refused.
set +e
msg=$("$MIXNAS" predict "$FIX/model.mxr" "$FIX"/ds/images/val/*.png --save-conf 2>&1); rc=$?
set -e
[ $rc -ne 0 ] && grep -qF -- "--save-conf needs --save-txt" <<<"$msg" || fail "--save-conf alone: $rc $msg"

mxr_out=$("$MIXNAS" -q val "$FIX/model.mxr" data="$FIX/ds/fmnist-det.yaml" threads=1 --save-json --name mxr)
pt_out=$("$MIXNAS" -q val "$FIX/runs/train/t/weights/best.pt" data="$FIX/ds/fmnist-det.yaml" imgsz=64 \
         threads=1 --save-json --name pt)
for kind in mxr pt; do
  [ -s runs/val/$kind/predictions.json ] || fail "no runs/val/$kind/predictions.json"
done
$PY - "$mxr_out" "$pt_out" <<'PY' || fail "val --save-json"
import json, re, sys
def last(out):
    m = re.search(r"^mAP50-95=([0-9.]+) mAP50=([0-9.]+)$", out.splitlines()[-1])
    assert m, out
    return float(m.group(1)), float(m.group(2))
mxr, pt = last(sys.argv[1]), last(sys.argv[2])
for kind in ("mxr", "pt"):
    dets = json.load(open("runs/val/%s/predictions.json" % kind))
    assert dets and all(0 <= d["category_id"] < 10 and len(d["bbox"]) == 4 for d in dets), kind
    assert all(isinstance(d["image_id"], int) for d in dets), kind
# The package computes what the weights compute (docs/export.md): the same mAP within a few points.
assert abs(mxr[1] - pt[1]) <= 0.05, (mxr, pt)
print("val --save-json: package mAP50-95=%.4f mAP50=%.4f, weights mAP50-95=%.4f mAP50=%.4f" % (*mxr, *pt))
PY
# Export of a folder inside a search run (no args.yaml of its own) takes the search's imgsz.
mkdir -p runs/search/s/baselines/silu/weights
printf 'imgsz: 96\nname: s\n' > runs/search/s/args.yaml
cp "$FIX/runs/train/t/weights/best.pt" runs/search/s/baselines/silu/weights/best.pt
"$MIXNAS" -q export runs/search/s/baselines/silu --format onnx --onnx-float >/dev/null
grep -q "96x96" runs/search/s/baselines/silu/model.onnx ||
  fail "export inside a search run did not take the search's imgsz 96"
echo "prediction files ok; export inside a search run at its imgsz"

