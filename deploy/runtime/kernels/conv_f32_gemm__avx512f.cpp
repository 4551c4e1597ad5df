// fp32 conv as GEMM, 8x32 tile (8 pixels x 32 output channels), AVX-512F.
#define MIXNAS_KERNEL_ISA isa_avx512f
#include <immintrin.h>

#include "deploy/runtime/kernels/conv_impl.h"

namespace mixnas::rt {
namespace isa_avx512f {
struct Fma16 {
  Vec<16>::F operator()(Vec<16>::F acc, Vec<16>::F x, Vec<16>::F w) const {
    return _mm512_fmadd_ps(x, w, acc);
  }
};
}  // namespace isa_avx512f

MIXNAS_CONV_BLOCK_FN(conv_f32_gemm_8x32__avx512f) {
  isa_avx512f::gemm_block<isa_avx512f::F32Gemm<8, 2, 16, isa_avx512f::Fma16>>(job, pixel_begin,
                                                                              pixel_end, scratch);
}

}  // namespace mixnas::rt
