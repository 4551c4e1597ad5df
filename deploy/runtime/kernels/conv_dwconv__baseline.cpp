// Depthwise conv (groups == in_c == out_c), 4 channels per vector, fp32 and integer
// (int32 lanes: sum w * (a - z_a), exact), baseline.
#define MIXNAS_KERNEL_ISA isa_dw_baseline
#include "deploy/runtime/kernels/conv_impl.h"

namespace mixnas::rt {

MIXNAS_CONV_BLOCK_FN(conv_f32_dwconv_4c__baseline) {
  isa_dw_baseline::dw_block<4, false>(job, pixel_begin, pixel_end, scratch);
}
MIXNAS_CONV_BLOCK_FN(conv_qu8_dwconv_4c__baseline) {
  isa_dw_baseline::dw_block<4, true>(job, pixel_begin, pixel_end, scratch);
}

}  // namespace mixnas::rt
