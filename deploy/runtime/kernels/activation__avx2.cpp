// apply_activation for avx2 (8 floats per vector). Compiled with -mavx2 (kernels.cmake).
#define MIXNAS_KERNEL_ISA isa_avx2
#include "deploy/runtime/kernels/activation_impl.h"

namespace mixnas::rt {

void apply_activation__avx2(ActivationSpec spec, float* data, size_t n) {
  isa_avx2::apply_activation_n<8>(spec, data, n);
}

void exp_inplace__avx2(float* data, size_t n) {
  isa_avx2::exp_n<8>(data, n);
}

}  // namespace mixnas::rt
