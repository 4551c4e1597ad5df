# Conv kernels and activations of mixnas_runtime (included by deploy/runtime/CMakeLists.txt).
# One binary carries every ISA: ISA-specific sources get per-file flags here, and the kernel tables
# (conv.cpp, activation.cpp) pick among them at run time from cpu_features().
# Every kernel source is compiled with -ffp-contract=off so that float epilogues and activations
# round identically on every ISA (integer kernels must match the reference bit for bit); the fp32
# GEMM microkernels ask for FMA explicitly through intrinsics.
set(_mixnas_k ${CMAKE_CURRENT_LIST_DIR})

function(_mixnas_k_add flags)
  foreach(f ${ARGN})
    target_sources(mixnas_runtime PRIVATE ${_mixnas_k}/${f})
    set_source_files_properties(${_mixnas_k}/${f} PROPERTIES COMPILE_OPTIONS "${flags};-ffp-contract=off")
  endforeach()
endfunction()

_mixnas_k_add("" activation.cpp conv.cpp conv_wpack.cpp conv_dwconv__baseline.cpp detect_rows.cpp)
if(MIXNAS_ARCH_X86_64)
  _mixnas_k_add("-mavx512f" activation__avx512f.cpp conv_f32_gemm__avx512f.cpp
                conv_dwconv__avx512f.cpp)
  _mixnas_k_add("-mavx512f;-mavx512bw;-mavx512vl;-mavx512vnni" conv_qu8_gemm__avx512vnni.cpp)
  _mixnas_k_add("-mavx2;-mfma" conv_f32_gemm__avx2_fma.cpp)
  _mixnas_k_add("-mavx2" activation__avx2.cpp conv_qu8_gemm__avx2.cpp conv_dwconv__avx2.cpp)
  _mixnas_k_add("" conv_f32_gemm__sse2.cpp)
elseif(MIXNAS_ARCH_AARCH64)
  _mixnas_k_add("" conv_f32_gemm__neon.cpp conv_qu8_gemm__neon.cpp conv_qu8_tbl__neon.cpp)
  _mixnas_k_add("-march=armv8.2-a+dotprod" conv_qu8_gemm__neondot.cpp)
endif()
# Low-bit (bit-serial) conv rows: conv_lowbit.cpp (plan, table), one block source per ISA.
_mixnas_k_add("" conv_lowbit.cpp conv_bitserial_gemm__scalar.cpp)
if(MIXNAS_ARCH_X86_64)
  _mixnas_k_add("-mavx512f;-mavx512bw;-mavx512vl;-mavx512vpopcntdq;-mpopcnt"
                conv_bitserial_gemm__avx512vpopcnt.cpp)
  _mixnas_k_add("-mavx2;-mpopcnt" conv_bitserial_gemm__avx2.cpp)
  # GCC 12 reads _mm512_undefined_epi32() inside the VBMI intrinsics as maybe-uninitialized.
  _mixnas_k_add("-mavx512f;-mavx512bw;-mavx512vl;-mavx512vbmi;-Wno-maybe-uninitialized"
                conv_lut__avx512vbmi.cpp)
elseif(MIXNAS_ARCH_AARCH64)
  _mixnas_k_add("" conv_bitserial_gemm__neon.cpp)
  _mixnas_k_add("-march=armv8.2-a+dotprod" conv_bitserial_gemm__neondot.cpp)
endif()
