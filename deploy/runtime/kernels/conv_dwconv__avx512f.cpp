// Depthwise conv (groups == in_c == out_c), 16 channels per vector, fp32 and integer
// (int32 lanes: sum w * (a - z_a), exact), avx512f.
#define MIXNAS_KERNEL_ISA isa_dw_avx512f
#include "deploy/runtime/kernels/conv_impl.h"

namespace mixnas::rt {

MIXNAS_CONV_BLOCK_FN(conv_f32_dwconv_16c__avx512f) {
  isa_dw_avx512f::dw_block<16, false>(job, pixel_begin, pixel_end, scratch);
}
MIXNAS_CONV_BLOCK_FN(conv_qu8_dwconv_16c__avx512f) {
  isa_dw_avx512f::dw_block<16, true>(job, pixel_begin, pixel_end, scratch);
}

}  // namespace mixnas::rt
