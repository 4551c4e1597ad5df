// fp32 conv as GEMM, 6x16 tile (6 pixels x 16 output channels), AArch64 NEON.
#define MIXNAS_KERNEL_ISA isa_neon
#include <arm_neon.h>

#include "deploy/runtime/kernels/conv_impl.h"

namespace mixnas::rt {
namespace isa_neon {
struct Fma4 {
  Vec<4>::F operator()(Vec<4>::F acc, Vec<4>::F x, Vec<4>::F w) const {
    return (Vec<4>::F)vfmaq_f32((float32x4_t)acc, (float32x4_t)x, (float32x4_t)w);
  }
};
}  // namespace isa_neon

MIXNAS_CONV_BLOCK_FN(conv_f32_gemm_6x16__neon) {
  isa_neon::gemm_block<isa_neon::F32Gemm<6, 4, 4, isa_neon::Fma4>>(job, pixel_begin, pixel_end,
                                                                   scratch);
}

}  // namespace mixnas::rt
