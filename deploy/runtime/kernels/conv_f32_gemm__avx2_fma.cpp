// fp32 conv as GEMM, 6x16 tile (6 pixels x 16 output channels), AVX2 + FMA3.
#define MIXNAS_KERNEL_ISA isa_avx2_fma
#include <immintrin.h>

#include "deploy/runtime/kernels/conv_impl.h"

namespace mixnas::rt {
namespace isa_avx2_fma {
struct Fma8 {
  Vec<8>::F operator()(Vec<8>::F acc, Vec<8>::F x, Vec<8>::F w) const {
    return _mm256_fmadd_ps(x, w, acc);
  }
};
}  // namespace isa_avx2_fma

MIXNAS_CONV_BLOCK_FN(conv_f32_gemm_6x16__avx2_fma) {
  isa_avx2_fma::gemm_block<isa_avx2_fma::F32Gemm<6, 2, 8, isa_avx2_fma::Fma8>>(job, pixel_begin,
                                                                               pixel_end, scratch);
}

}  // namespace mixnas::rt
