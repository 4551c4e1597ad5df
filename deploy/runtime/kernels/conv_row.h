#pragma once
// Internal: the one row type of the conv kernel tables, whatever the family: the tiled GEMM and
// depthwise rows (conv.cpp), the bit-serial and table-lookup rows (conv_lowbit.cpp).
//
// make_conv_plan runs the first row, low-bit rows first, that fits the conv, is available on the
// CPU and picks it (the tiled rows pick every conv they fit; the bit-serial rows only where their
// ISA's measured rule says they beat int8; the LUT rows never: forced only). make_conv_plan_named
// runs the row of a name.
#include <memory>
#include <string>
#include <vector>

#include "deploy/runtime/cpu_features.h"
#include "deploy/runtime/kernels/conv.h"
#include "deploy/runtime/kernels/conv_job.h"

namespace mixnas::rt::kernels {

// How the weights of a tiled row are laid out for its microkernel. Integer GEMM layouts hold codes
// of w_bits <= 4 packed per panel (conv_wpack.h, in the element order below), unpacked to the
// kernel's element type per block.
enum class Layout : uint8_t {
  kF32KxN,   // [n/NR][k][NR] float
  kS8C4,     // [n/NR][k/4][NR][4] int8
  kS16C2,    // [n/NR][k/2][NR][2] int16
  kS16KxN,   // [n/NR][k][NR] int16
  kDwF32,    // [tap][n_pad] float
  kDwCodes,  // [tap][n_pad] codes at wpack_storage_bits(w_bits), widened to int32 per block
  // [n/16][k/4][16] bytes of 2-bit weights for table lookup: byte c holds bit 0 of channel c's
  // four weights of the group in its low nibble, bit 1 in its high (conv_qu8_tbl__neon.cpp)
  kTblW2,
};

enum class Offset : uint8_t { kNone, kMinusZeroSum, kSignedShift };

// The microkernel of a tiled row (GEMM or depthwise) and how it reads its operands.
struct TiledKernel {
  Layout layout = Layout::kF32KxN;
  int mr = 1, nr = 1, k_group = 1, a_bytes = 0;
  // A rows may be read in place (1x1, stride 1, no padding, in_c % k_group == 0).
  bool direct_ok = false;
  // A may be read through per-tap pointers (in_c % k_group == 0), no im2col.
  bool indirect_ok = false;
  bool half_ok = false;  // the last weight panel may be NR/2 wide
  Offset offset = Offset::kNone;
  ConvBlockFn run = nullptr;
};

struct LowbitIsa;  // conv_lowbit.cpp: an ISA's bit-serial kernels and its pick rules

struct ConvRow {
  std::string name;
  const char* family;  // "gemm" or "depthwise"
  ConvPrecision precision;
  int min_w_bits, max_w_bits, min_a_bits, max_a_bits;  // int precision only
  bool (*available)(const CpuFeatures&);
  // Whether the row's kernel can run `w` (family, precision, bits, and what else it needs).
  bool (*fits)(const ConvWeights& w, const ConvRow& row);
  // Whether make_conv_plan runs the row for a `w` it fits on `features`; nullptr: forced only.
  bool (*picks)(const ConvWeights& w, const ConvRow& row, const CpuFeatures& features);
  std::unique_ptr<ConvPlan> (*make)(const ConvWeights& w, const ConvRow& row);
  const char* what_conv;  // how errors name the conv ("conv", "low-bit conv")
  const char* needs;      // what it does not support, when forced onto a conv it does not fit
  TiledKernel tiled{};    // the tiled rows' microkernel
  const LowbitIsa* isa = nullptr;  // the bit-serial rows' ISA

  ConvKernelInfo info(const CpuFeatures& features) const {
    return {name,       family,     precision,  min_w_bits,
            max_w_bits, min_a_bits, max_a_bits, available(features)};
  }
};

// The low-bit rows in priority order (conv_lowbit.cpp): bit-serial per ISA and pair, then LUT.
const std::vector<ConvRow>& conv_lowbit_rows();

// The first row of `rows` picked for `w` on `features`, nullptr when none is.
const ConvRow* pick_conv_row(const std::vector<ConvRow>& rows, const ConvWeights& w,
                             const CpuFeatures& features);
// The plan of the row named `kernel` among `rows` (the first available of that name), nullptr
// when no row has that name. Validates `w`; throws mixnas::Error when this CPU lacks the row's
// ISA or the row does not fit `w`.
std::unique_ptr<ConvPlan> make_named_row_plan(const std::vector<ConvRow>& rows,
                                              const ConvWeights& w, const std::string& kernel);

}  // namespace mixnas::rt::kernels
