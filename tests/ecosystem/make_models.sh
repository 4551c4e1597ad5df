#!/usr/bin/env bash
# The ecosystem tests' fixture: a tiny fmnist-det, two short epochs of training of yolov8-pico with
# mixed bits (8-bit convs, 4-bit C2f blocks with ReLU, a 2-bit SPPF), and its exports: model.mxr,
# model.onnx (QDQ, decoded), float/model.onnx (float, decoded), raw/model.onnx (QDQ, raw heads).
#   make_models.sh MIXNAS_BINARY SOURCE_DIR OUT_DIR
set -euo pipefail
MIXNAS=$1 SRC=$2 OUT=$3
rm -rf "$OUT"
mkdir -p "$OUT"
cd "$OUT"
"$MIXNAS" -q data make fmnist-det --out ds --train 32 --val 8 --imgsz 64 --seed 7 >/dev/null
# The quick start's model table with fixed per-layer bits (docs/model_yaml.md): Conv rows 8/8,
# C2f rows 4-bit weights with ReLU, SPPF 2-bit weights on 4-bit inputs.
sed -E -e 's/^(  - \[-1, 1, Conv, \[[0-9]+, 3, 2\])\]/\1, {bits: [8, 8]}]/' \
       -e 's/^(  - \[-1, [0-9]+, C2f, \[[0-9]+(, True)?\])\]/\1, {act: relu, bits: [4, 8]}]/' \
       -e 's/^(  - \[-1, 1, SPPF, \[1024, 5\])\]/\1, {bits: [2, 4]}]/' \
       "$SRC/configs/models/yolov8-pico.yaml" > pico-mixed.yaml
grep -q "bits: \[2, 4\]" pico-mixed.yaml || { echo "make_models: the bits did not land in pico-mixed.yaml"; exit 1; }
cat > tiny.yaml <<YAML
model: pico-mixed.yaml
data: ds/fmnist-det.yaml
imgsz: 64
threads: 2
name: t
train: {epochs: 2, batch: 16, workers: 1, warmup_epochs: 0.5, lr0: 0.01}
quant: {start_epoch: 0, freeze_bn_epoch: 1}
augment: {mosaic: 0.0}
YAML
"$MIXNAS" -q train tiny.yaml >/dev/null
"$MIXNAS" -q export runs/train/t --conf 0.001 --output . >/dev/null
"$MIXNAS" -q export runs/train/t --format onnx --onnx-float --output float >/dev/null
"$MIXNAS" -q export runs/train/t --format onnx --onnx-raw --output raw >/dev/null
ls model.mxr model.onnx float/model.onnx raw/model.onnx >/dev/null
echo "ecosystem models ready in $OUT"
