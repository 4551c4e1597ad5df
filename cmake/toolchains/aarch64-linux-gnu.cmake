# Cross-compiles the LibTorch-free targets (runtime, agent, their tests) for 64-bit ARM Linux.
# Tests run through qemu-aarch64 with the cross toolchain's sysroot.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
# LD_LIBRARY_PATH keeps the guest's ld.so and libc from the same (cross) glibc build: when the
# arm64 multiarch libc is installed too (scripts/bootstrap.sh adds it for cpp-httplib), the host's
# ld.so.cache would otherwise hand the cross ld.so the multiarch libc, and threads hang.
set(CMAKE_CROSSCOMPILING_EMULATOR /usr/bin/env;LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib;qemu-aarch64;-L;/usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
# Header-only dependencies (Catch2, nlohmann-json, cpp-httplib, FlatBuffers headers) live in the
# host's /usr/include and are architecture independent.
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
