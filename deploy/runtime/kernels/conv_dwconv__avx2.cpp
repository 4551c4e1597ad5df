// Depthwise conv (groups == in_c == out_c), 8 channels per vector, fp32 and integer
// (int32 lanes: sum w * (a - z_a), exact), avx2.
#define MIXNAS_KERNEL_ISA isa_dw_avx2
#include "deploy/runtime/kernels/conv_impl.h"

namespace mixnas::rt {

MIXNAS_CONV_BLOCK_FN(conv_f32_dwconv_8c__avx2) {
  isa_dw_avx2::dw_block<8, false>(job, pixel_begin, pixel_end, scratch);
}
MIXNAS_CONV_BLOCK_FN(conv_qu8_dwconv_8c__avx2) {
  isa_dw_avx2::dw_block<8, true>(job, pixel_begin, pixel_end, scratch);
}

}  // namespace mixnas::rt
