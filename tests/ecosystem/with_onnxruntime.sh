#!/usr/bin/env bash
# Runs a test that needs ONNX Runtime: installs it into .deps/ first when missing
# (scripts/install_onnxruntime.sh); when npm is missing or its registry unreachable the test is
# reported skipped (exit 77) with the reason.
#   with_onnxruntime.sh SOURCE_DIR COMMAND...
set -uo pipefail
SRC=$1
shift
out=$("$SRC/scripts/install_onnxruntime.sh" 2>&1)
rc=$?
if [ $rc -eq 3 ]; then  # npm missing or its registry unreachable
  echo "SKIPPED: ONNX Runtime is not available: $(tail -n 1 <<<"$out")"
  exit 77
elif [ $rc -ne 0 ]; then
  echo "$out"
  exit $rc
fi
exec "$@"
