#!/usr/bin/env bash
# Builds the .mxr loader fuzzer with clang + libFuzzer + ASan/UBSan in build-fuzz/ and runs it.
#   fuzz/run.sh <seconds> [extra libFuzzer flags]
# Seeds: the frame's small test packages (every op; a narrow YOLOv8n-shaped graph in int8 and
# fp32), written by the graph builder into build-fuzz/seeds/. New corpus entries go to
# build-fuzz/corpus/, findings to build-fuzz/findings/. Exit status: 0 = no finding in the time.
set -euo pipefail
seconds="${1:?usage: fuzz/run.sh <seconds> [libFuzzer flags]}"
shift
repo="$(cd "$(dirname "$0")/.." && pwd)"
build="$repo/build-fuzz"

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
# With the executor if the kernels build with clang, else the loader/validator/planner alone.
# MIXNAS_FUZZ_SESSION=OFF skips the attempt (CI: the kernels use GCC-only vector builtins).
if [ "${MIXNAS_FUZZ_SESSION:-ON}" = "OFF" ]; then
  configure -DMIXNAS_FUZZ_SESSION=OFF
  cmake --build "$build" --target fuzz_package -j2
elif configure -DMIXNAS_FUZZ_SESSION=ON && \
     ! cmake --build "$build" --target fuzz_package -j2 > "$build/build.log" 2>&1; then
  echo "fuzz/run.sh: the runtime with kernels does not build with clang (see $build/build.log);" \
       "fuzzing the loader, validator and planner without the executor" >&2
  configure -DMIXNAS_FUZZ_SESSION=OFF
  cmake --build "$build" --target fuzz_package -j2
fi
# The seed writer needs the kernels only through the test library; build it with gcc if clang fails.
if [ -x "$repo/build/tests/mixnas_write_test_models" ]; then
  writer="$repo/build/tests/mixnas_write_test_models"  # the host build's (make test builds it)
elif ! cmake --build "$build" --target mixnas_write_test_models -j2 > /dev/null 2>&1; then
  writer_build="$repo/build-fuzz-seeds"
  cmake -S "$repo" -B "$writer_build" -G Ninja -DMIXNAS_RUNTIME_ONLY=ON -DMIXNAS_BUILD_BENCH=OFF > /dev/null
  cmake --build "$writer_build" --target mixnas_write_test_models -j2
  writer="$writer_build/tests/mixnas_write_test_models"
else
  writer="$build/tests/mixnas_write_test_models"
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
