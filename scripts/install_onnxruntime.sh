#!/usr/bin/env bash
# Installs ONNX Runtime's CPU library into .deps/ (git-ignored) from the npm package
# onnxruntime-node, which ships libonnxruntime.so.1 for linux x64 and arm64 (Debian 12 has no
# ONNX Runtime package). --ignore-scripts: the package's install script only fetches GPU extras.
# The ecosystem tests and mixnas-bench-ort load the library at run time (bench/peers/onnxruntime.h).
#   scripts/install_onnxruntime.sh      exit 0: installed or present; 3: npm missing or unreachable
set -euo pipefail
VERSION=1.23.2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEPS=$ROOT/.deps
case "$(uname -m)" in
  x86_64) ARCH=x64 ;;
  aarch64) ARCH=arm64 ;;
  *) echo "install_onnxruntime: no ONNX Runtime build for $(uname -m) in onnxruntime-node" >&2; exit 3 ;;
esac
LIB=$DEPS/node_modules/onnxruntime-node/bin/napi-v6/linux/$ARCH/libonnxruntime.so.1
if [ -f "$LIB" ] && grep -q "\"version\": \"$VERSION\"" "$DEPS/node_modules/onnxruntime-node/package.json" 2>/dev/null; then
  echo "install_onnxruntime: ONNX Runtime $VERSION present ($LIB)"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "install_onnxruntime: npm not found (Debian: apt-get install npm); ONNX Runtime tests will be skipped" >&2
  exit 3
fi
mkdir -p "$DEPS"
[ -f "$DEPS/package.json" ] || echo '{"name": "mixnas-deps", "private": true}' > "$DEPS/package.json"
echo "install_onnxruntime: npm install onnxruntime-node@$VERSION into $DEPS"
if ! (cd "$DEPS" && timeout 600 npm install --ignore-scripts --no-audit --no-fund --loglevel=error \
        "onnxruntime-node@$VERSION"); then
  echo "install_onnxruntime: npm could not install onnxruntime-node@$VERSION (registry unreachable?)" >&2
  exit 3
fi
[ -f "$LIB" ] || { echo "install_onnxruntime: $LIB missing after npm install" >&2; exit 1; }
echo "install_onnxruntime: $LIB"
