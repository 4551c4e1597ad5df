// apply_activation for avx512f (16 floats per vector). Compiled with -mavx512f (kernels.cmake).
#define MIXNAS_KERNEL_ISA isa_avx512f
#include "deploy/runtime/kernels/activation_impl.h"

namespace mixnas::rt {

void apply_activation__avx512f(ActivationSpec spec, float* data, size_t n) {
  isa_avx512f::apply_activation_n<16>(spec, data, n);
}

void exp_inplace__avx512f(float* data, size_t n) {
  isa_avx512f::exp_n<16>(data, n);
}

}  // namespace mixnas::rt
