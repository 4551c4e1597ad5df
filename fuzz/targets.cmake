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

# The config loader (YAML, schemas, base: includes, overrides) and the YOLO label parser: their
# sources are compiled here with coverage (the runtime-only build has neither library); yaml-cpp
# is the system's.
find_package(yaml-cpp REQUIRED)
add_executable(fuzz_config ${CMAKE_CURRENT_LIST_DIR}/fuzz_config.cpp ${CMAKE_SOURCE_DIR}/core/config.cpp
               ${CMAKE_SOURCE_DIR}/core/schemas.cpp)
target_link_libraries(fuzz_config PRIVATE mixnas_core yaml-cpp)
add_executable(fuzz_labels ${CMAKE_CURRENT_LIST_DIR}/fuzz_labels.cpp ${CMAKE_SOURCE_DIR}/datasets/labels.cpp)
target_link_libraries(fuzz_labels PRIVATE mixnas_core)
foreach(_target fuzz_config fuzz_labels)
  target_compile_options(${_target} PRIVATE -fsanitize=fuzzer)
  target_link_options(${_target} PRIVATE -fsanitize=fuzzer)
endforeach()

# The agent's request handling (fuzz_agent_request.cpp): the request parsing, the budget and the
# layer graph builder are compiled here with coverage. MeasureOptions and the activation names
# come with the runtime's kernels, which do not build with clang: without MIXNAS_FUZZ_SESSION they
# are linked from a GCC build of the same tree (MIXNAS_FUZZ_GCC_LIB_DIR, its lib/ folder; fuzz/run.sh
# makes it). Its objects carry no coverage, which is fine: they are not what is fuzzed.
set(MIXNAS_FUZZ_GCC_LIB_DIR "" CACHE PATH "lib/ of a GCC build with mixnas_measure built")
set(_agent_fuzz_sources ${CMAKE_SOURCE_DIR}/evaluators/agent/request.cpp
    ${CMAKE_SOURCE_DIR}/evaluators/agent/budget.cpp ${CMAKE_SOURCE_DIR}/evaluators/layer_graph.cpp)
if(MIXNAS_FUZZ_SESSION)
  set(_agent_fuzz_libs mixnas_runtime)
elseif(MIXNAS_FUZZ_GCC_LIB_DIR)
  # measure.o (MeasureOptions) from the measurement library, the kernels (activation names) after
  # it.
  set(_agent_fuzz_libs ${MIXNAS_FUZZ_GCC_LIB_DIR}/libmixnas_measure.a
      ${MIXNAS_FUZZ_GCC_LIB_DIR}/libmixnas_runtime.a mixnas_runtime_format)
else()
  return()
endif()
foreach(_kind LAYERS QUERY)
  string(TOLOWER ${_kind} _name)
  add_executable(fuzz_agent_${_name} ${CMAKE_CURRENT_LIST_DIR}/fuzz_agent_request.cpp ${_agent_fuzz_sources})
  target_compile_definitions(fuzz_agent_${_name} PRIVATE FUZZ_AGENT_${_kind}=1)
  target_include_directories(fuzz_agent_${_name} SYSTEM PRIVATE ${CMAKE_BINARY_DIR}/third_party/agent_include)
  # The GCC objects call back into the runtime format and core; list them twice for the linker.
  target_link_libraries(fuzz_agent_${_name} PRIVATE ${_agent_fuzz_libs} mixnas_runtime_format mixnas_core)
  target_compile_options(fuzz_agent_${_name} PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_agent_${_name} PRIVATE -fsanitize=fuzzer)
endforeach()
