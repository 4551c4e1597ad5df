#!/usr/bin/env bash
# Runs a test that needs ONNX Runtime: installs it into .deps/ first when missing
# (scripts/install_onnxruntime.sh); when npm is missing or its registry unreachable the test is
# reported skipped (exit 77) with the reason.
#   with_onnxruntime.sh SOURCE_DIR COMMAND...
set -uo pipefail
SRC=$1
shift
if ! out=$("$SRC/scripts/install_onnxruntime.sh" 2>&1); then
  echo "SKIPPED: ONNX Runtime is not available: $out"
  exit 77
fi
exec "$@"
