#!/usr/bin/env bash
# Builds the libFuzzer targets with clang + libFuzzer + ASan/UBSan in build-fuzz/ and runs each:
#   fuzz/run.sh <seconds> [extra libFuzzer flags]
#   fuzz_package       the .mxr loader, <seconds>
#   fuzz_agent_layers  mixnas-agent's /v1/layers body (JSON + signatures), AGENT_FUZZ_SECONDS
#   fuzz_agent_query   mixnas-agent's /v1/benchmark query, AGENT_FUZZ_SECONDS (default: half)
#   fuzz_config        the config loader (YAML, schemas, base:, overrides), AGENT_FUZZ_SECONDS
#   fuzz_labels        the YOLO label parser, AGENT_FUZZ_SECONDS
# Seeds of the package fuzzer: the frame's small test packages (every op; a narrow YOLOv8n-shaped
# graph in int8 and fp32), written by the graph builder into build-fuzz/seeds/. Seeds of the other
# targets: fuzz/seeds/<target>/; inputs that once failed: fuzz/regressions/<target>/ (run first,
# every time). New corpus entries go to build-fuzz/corpus*/, findings to build-fuzz/findings/.
# Exit status: 0 = no finding in the time.
set -euo pipefail
seconds="${1:?usage: fuzz/run.sh <seconds> [libFuzzer flags]}"
shift
agent_seconds="${AGENT_FUZZ_SECONDS:-$(( (seconds + 1) / 2 ))}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
build="$repo/build-fuzz"
# A GCC build for the seed writer and the kernels of the agent targets: the host build of
# `make test` when there is one (already built, so this costs nothing), else one of its own.
gcc_build="$repo/build-fuzz-seeds"
if [ -f "$repo/build/CMakeCache.txt" ] && grep -q '^CMAKE_CXX_COMPILER:.*g++' "$repo/build/CMakeCache.txt"; then
  gcc_build="$repo/build"
fi

extra=()
# Until the root CMakeLists.txt adds fuzz/ itself, wire it in from here.
if ! grep -q 'mixnas_add_folder(fuzz)' "$repo/CMakeLists.txt"; then
  extra+=("-DCMAKE_PROJECT_INCLUDE=$repo/fuzz/wire.cmake")
fi
mkdir -p "$build"
configure() {
  # clang warnings are not the CI gate here (gcc builds are): no -Werror for this build.
  env -u CI CC=clang CXX=clang++ cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DMIXNAS_RUNTIME_ONLY=ON -DMIXNAS_BUILD_BENCH=OFF -DMIXNAS_BUILD_FUZZ=ON \
    "-DMIXNAS_SANITIZE=address;undefined;fuzzer-no-link" "${extra[@]}" "$@" > "$build/configure.log" 2>&1 \
    || { cat "$build/configure.log"; exit 1; }
}
targets=(fuzz_package fuzz_agent_layers fuzz_agent_query fuzz_config fuzz_labels)
# The GCC build of the LibTorch-free targets: the kernels (clang cannot build them) for the agent
# targets, and the seed writer.
gcc_libs() {
  [ -f "$gcc_build/CMakeCache.txt" ] || cmake -S "$repo" -B "$gcc_build" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMIXNAS_RUNTIME_ONLY=ON -DMIXNAS_BUILD_BENCH=OFF > /dev/null
  cmake --build "$gcc_build" --target mixnas_measure mixnas_runtime mixnas_write_test_models -j2 > "$build/gcc_build.log" 2>&1 \
    || { tail -30 "$build/gcc_build.log"; exit 1; }
}
# With the executor if the kernels build with clang, else the loader/validator/planner alone.
# MIXNAS_FUZZ_SESSION=OFF skips the attempt (CI: the kernels use GCC-only vector builtins).
if [ "${MIXNAS_FUZZ_SESSION:-ON}" != "OFF" ] && configure -DMIXNAS_FUZZ_SESSION=ON && \
   cmake --build "$build" --target "${targets[@]}" -j2 > "$build/build.log" 2>&1; then
  writer="$build/tests/mixnas_write_test_models"
  cmake --build "$build" --target mixnas_write_test_models -j2 > /dev/null
else
  [ "${MIXNAS_FUZZ_SESSION:-ON}" = "OFF" ] || echo "fuzz/run.sh: the runtime with kernels does not" \
    "build with clang (see $build/build.log); fuzzing the loader, validator and planner without" \
    "the executor, the agent targets with the kernels of a GCC build" >&2
  gcc_libs
  configure -DMIXNAS_FUZZ_SESSION=OFF "-DMIXNAS_FUZZ_GCC_LIB_DIR=$gcc_build/lib"
  cmake --build "$build" --target "${targets[@]}" -j2
  writer="$gcc_build/tests/mixnas_write_test_models"
fi

mkdir -p "$build/seeds" "$build/seeds.all" "$build/corpus" "$build/findings"
"$writer" "$build/seeds.all" 64 > /dev/null
# Seeds: the small packages only (the full YOLOv8n weights make inputs too slow to mutate).
cp "$build"/seeds.all/all_ops.mxr "$build"/seeds.all/yolo_tiny_*.mxr "$build/seeds/"
max_len=$(stat -c %s "$build"/seeds/*.mxr | sort -n | tail -1)
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
"$build/bin/fuzz_package" "$build/corpus" "$build/seeds" -max_total_time="$seconds" \
  -max_len="$max_len" -timeout=10 -rss_limit_mb=4096 -artifact_prefix="$build/findings/" \
  -print_final_stats=1 "$@"
for t in agent_layers agent_query config labels; do
  mkdir -p "$build/corpus_$t" "$repo/fuzz/regressions/$t"
  echo "fuzz/run.sh: fuzz_$t for $agent_seconds s"
  "$build/bin/fuzz_$t" "$build/corpus_$t" "$repo/fuzz/seeds/$t" "$repo/fuzz/regressions/$t" \
    -max_total_time="$agent_seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$build/findings/$t-" -print_final_stats=1 "$@"
done
