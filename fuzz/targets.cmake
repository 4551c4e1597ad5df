# The libFuzzer targets (included by fuzz/CMakeLists.txt, or by fuzz/wire.cmake).
# MIXNAS_FUZZ_SESSION=ON (default) also runs small loaded graphs through a Session (needs the
# kernels to build with clang); OFF fuzzes the loader, validator and planner alone.
if(NOT MIXNAS_BUILD_FUZZ OR TARGET fuzz_package)
  return()
endif()
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "MIXNAS_BUILD_FUZZ needs clang (CC=clang CXX=clang++), got ${CMAKE_CXX_COMPILER_ID}")
endif()
option(MIXNAS_FUZZ_SESSION "fuzz_package also executes small graphs (links the kernels)" ON)
add_executable(fuzz_package ${CMAKE_CURRENT_LIST_DIR}/fuzz_package.cpp)
if(MIXNAS_FUZZ_SESSION)
  target_link_libraries(fuzz_package PRIVATE mixnas_runtime)
  target_compile_definitions(fuzz_package PRIVATE MIXNAS_FUZZ_SESSION=1)
else()
  target_link_libraries(fuzz_package PRIVATE mixnas_runtime_format)
endif()
target_compile_options(fuzz_package PRIVATE -fsanitize=fuzzer)
target_link_options(fuzz_package PRIVATE -fsanitize=fuzzer)
