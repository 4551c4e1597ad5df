#!/usr/bin/env bash
# expect_exit.sh CODE PATTERN -- COMMAND...
# Runs COMMAND; passes when it exits with CODE and its output (stdout+stderr) contains PATTERN.
set -u
code=$1 pattern=$2
shift 3
out=$("$@" 2>&1 </dev/null)
rc=$?
if [ "$rc" -ne "$code" ]; then
  echo "expected exit $code, got $rc from: $*"; echo "$out"; exit 1
fi
if ! grep -qF -- "$pattern" <<<"$out"; then
  echo "output of '$*' lacks: $pattern"; echo "$out"; exit 1
fi
echo "ok: exit $rc, found: $pattern"
