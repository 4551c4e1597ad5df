// Bit-serial integer conv (conv_lowbit.h), AArch64 NEON with the dot-product extension: the NEON
// kernel (conv_bitserial_gemm__neon.cpp) with its byte counters flushed by one udot against ones.
// Compiled with -march=armv8.2-a+dotprod; the table runs it only when the CPU reports dotprod.
#define MIXNAS_BITSERIAL_NEONDOT 1
#define MIXNAS_KERNEL_ISA isa_bitserial_neondot
#include "deploy/runtime/kernels/conv_bitserial_gemm__neon.cpp"
