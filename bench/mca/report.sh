#!/usr/bin/env bash
# Static throughput of the aarch64 conv inner loops with llvm-mca (no ARM device needed).
# Compiles bench/mca/loops.cpp (the runtime's bit-serial microkernel step for W2A2 / W1A1, and the
# int8 microkernel steps) with aarch64-linux-gnu-g++ -S, extracts each marked loop body and runs
# llvm-mca for Cortex-A72 (armv8-a: int8 = smlal 8x8 tile, bit-serial = NEON vcnt kernel) and
# Cortex-A76 (armv8.2-a+dotprod: int8 = sdot 4x16c4 tile, bit-serial = the neondot kernel).
# Prints MACs per cycle per loop and last:
#   MCA a72_w2a2_vs_int8=<r> a76_w2a2_vs_int8=<r>
# (ratios of MACs per cycle; steady state of the inner loop, byte-counter flushes every
# 255 / (8 * min(w_bits, a_bits)) steps and tile edges not included).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
MCA=$(command -v llvm-mca-14 || command -v llvm-mca)
CXX=${CXX_AARCH64:-aarch64-linux-gnu-g++}

# Tile sizes of the bit-serial kernels (the NEON ISA keeps 26 vector registers for the tile).
cat > "$tmp/shape.cpp" <<'CPP'
#include <cstdio>
#include "deploy/runtime/kernels/conv_bitserial_job.h"
int main() {
  for (int wa : {1, 2}) {
    auto s = mixnas::rt::bitserial_shape(26, wa, wa);
    std::printf("%d %d %d\n", wa, s.mr, s.nv);
  }
}
CPP
g++ -std=c++17 -I"$root" "$tmp/shape.cpp" -o "$tmp/shape"
read -r _ mr11 nv11 < <("$tmp/shape" | sed -n 1p)
read -r _ mr22 nv22 < <("$tmp/shape" | sed -n 2p)
lanes=2  # 64-bit lanes per 128-bit vector = output channels per vector
macs_w1a1=$((64 * mr11 * nv11 * lanes))
macs_w2a2=$((64 * mr22 * nv22 * lanes))

# region NAME FILE -> the longest marked body with that name, instructions only.
region() {
  awk -v name="$1" '
    $0 ~ "LLVM-MCA-BEGIN " name "$" { on = 1; body = ""; n = 0; next }
    $0 ~ "LLVM-MCA-END " name "$" { if (n > best) { best = n; keep = body } on = 0; next }
    on && $1 !~ /^\./ && $1 !~ /:$/ && $1 !~ /^\/\// && NF > 0 { body = body $0 "\n"; n++ }
    END { printf "%s", keep }' "$2"
}

# mca CPU FILE -> cycles per iteration
mca() {
  "$MCA" -mtriple=aarch64-linux-gnu -mcpu="$1" -iterations=200 "$2" 2>/dev/null |
    awk '/^Iterations:/ { it = $2 } /^Total Cycles:/ { c = $3 } END { printf "%.3f", c / it }'
}

"$CXX" -std=c++17 -O2 -march=armv8-a -I"$root" -S "$root/bench/mca/loops.cpp" -o "$tmp/a72.s"
"$CXX" -std=c++17 -O2 -march=armv8.2-a+dotprod -DMCA_DOTPROD -I"$root" -S \
  "$root/bench/mca/loops.cpp" -o "$tmp/a76.s"
region w2a2 "$tmp/a72.s" > "$tmp/a72_w2a2.s"
region w1a1 "$tmp/a72.s" > "$tmp/a72_w1a1.s"
region int8 "$tmp/a72.s" > "$tmp/a72_int8.s"
region w2a2 "$tmp/a76.s" > "$tmp/a76_w2a2.s"
region w1a1 "$tmp/a76.s" > "$tmp/a76_w1a1.s"
region int8dot "$tmp/a76.s" > "$tmp/a76_int8.s"

rate() {  # MACS CYCLES -> MACs per cycle
  awk -v m="$1" -v c="$2" 'BEGIN { printf "%.2f", m / c }'
}
echo "# llvm-mca ($MCA), gcc $("$CXX" -dumpversion); MACs per cycle of one inner-loop iteration"
declare -A r
for cpu in a72 a76; do
  for loop in w2a2 w1a1 int8; do
    case $loop in
      w2a2) macs=$macs_w2a2 ;;
      w1a1) macs=$macs_w1a1 ;;
      int8) if [ $cpu = a72 ]; then macs=64; else macs=256; fi ;;
    esac
    cyc=$(mca "cortex-$cpu" "$tmp/${cpu}_$loop.s")
    r[${cpu}_$loop]=$(rate "$macs" "$cyc")
    printf "%-4s %-5s instructions=%-3s MACs/iter=%-5s cycles/iter=%-7s MACs/cycle=%s\n" "$cpu" \
      "$loop" "$(wc -l < "$tmp/${cpu}_$loop.s")" "$macs" "$cyc" "${r[${cpu}_$loop]}"
  done
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "MCA_W1A1 a72_w1a1_vs_int8=$(ratio "${r[a72_w1a1]}" "${r[a72_int8]}") a76_w1a1_vs_int8=$(ratio "${r[a76_w1a1]}" "${r[a76_int8]}")"
echo "MCA a72_w2a2_vs_int8=$(ratio "${r[a72_w2a2]}" "${r[a72_int8]}") a76_w2a2_vs_int8=$(ratio "${r[a76_w2a2]}" "${r[a76_int8]}")"
