// fp32 conv as GEMM, 4x8 tile (4 pixels x 8 output channels), SSE2 (the x86-64 baseline).
#define MIXNAS_KERNEL_ISA isa_sse2
#include "deploy/runtime/kernels/conv_impl.h"

namespace mixnas::rt {
namespace isa_sse2 {
struct MulAdd4 {
  Vec<4>::F operator()(Vec<4>::F acc, Vec<4>::F x, Vec<4>::F w) const { return acc + x * w; }
};
}  // namespace isa_sse2

MIXNAS_CONV_BLOCK_FN(conv_f32_gemm_4x8__sse2) {
  isa_sse2::gemm_block<isa_sse2::F32Gemm<4, 2, 4, isa_sse2::MulAdd4>>(job, pixel_begin, pixel_end,
                                                                      scratch);
}

}  // namespace mixnas::rt
