# Common settings and helpers for every mixnas target.
set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
# No -fPIC/-fPIE flags of our own: every target is a static library or an executable compiled
# with the toolchain's default (PIE on Debian), so one precompiled header fits them all.
set(CMAKE_RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
set(CMAKE_LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/lib)
set(CMAKE_ARCHIVE_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/lib)
if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE RelWithDebInfo CACHE STRING "" FORCE)
endif()

find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM)
  set(CMAKE_C_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
endif()

# Warnings everywhere; errors in CI.
add_compile_options(-Wall -Wextra)
if(DEFINED ENV{CI} AND "$ENV{CI}" STREQUAL "true")
  add_compile_options(-Werror)
endif()
# RelWithDebInfo defaults to -O2; kernels want -O3 in every optimised build.
string(REPLACE "-O2" "-O3" CMAKE_CXX_FLAGS_RELWITHDEBINFO "${CMAKE_CXX_FLAGS_RELWITHDEBINFO}")
string(REPLACE "-O2" "-O3" CMAKE_C_FLAGS_RELWITHDEBINFO "${CMAKE_C_FLAGS_RELWITHDEBINFO}")

if(MIXNAS_SANITIZE)
  string(REPLACE ";" "," _san "${MIXNAS_SANITIZE}")
  add_compile_options(-fsanitize=${_san} -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=${_san})
  # GCC 12's -Wmaybe-uninitialized fires on libstdc++'s own <regex>/<functional> internals once the
  # sanitizers instrument them (catch_main.cpp at -O1): false positives, which -Werror (CI) would
  # turn into a failed build. Ordinary builds keep the warning.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    add_compile_options(-Wno-maybe-uninitialized)
  endif()
endif()

if(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(MIXNAS_ARCH_AARCH64 ON)
  add_compile_options(-march=${MIXNAS_ARM_ARCH})
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(MIXNAS_ARCH_X86_64 ON)
endif()

find_package(OpenMP REQUIRED)
find_package(Threads REQUIRED)
# -fopenmp on every target (it defines _OPENMP): the shared precompiled header is only valid for
# translation units compiled with the same flags.
add_compile_options(${OpenMP_CXX_FLAGS})
link_libraries(OpenMP::OpenMP_CXX)

# Adds a folder of the tree if it holds a CMakeLists.txt yet.
function(mixnas_add_folder dir)
  if(EXISTS ${CMAKE_SOURCE_DIR}/${dir}/CMakeLists.txt)
    add_subdirectory(${CMAKE_SOURCE_DIR}/${dir} ${CMAKE_BINARY_DIR}/${dir})
  endif()
endfunction()

# LibTorch, with one precompiled <torch/torch.h> shared by every target that uses it.
function(mixnas_use_torch target)
  if(MIXNAS_RUNTIME_ONLY)
    message(FATAL_ERROR "${target} needs LibTorch, which MIXNAS_RUNTIME_ONLY builds do not have")
  endif()
  if(NOT TARGET torch)
    find_package(Torch REQUIRED)
  endif()
  if(NOT TARGET mixnas_torch_pch)
    file(WRITE ${CMAKE_BINARY_DIR}/mixnas_torch_pch.cpp "// precompiled LibTorch headers\n")
    add_library(mixnas_torch_pch OBJECT ${CMAKE_BINARY_DIR}/mixnas_torch_pch.cpp)
    target_link_libraries(mixnas_torch_pch PUBLIC torch)
    target_precompile_headers(mixnas_torch_pch PRIVATE <torch/torch.h>)
  endif()
  target_link_libraries(${target} PUBLIC torch)
  target_precompile_headers(${target} REUSE_FROM mixnas_torch_pch)
endfunction()
