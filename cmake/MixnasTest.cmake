# mixnas_add_test(NAME <name> SOURCES <files...> LIBS <targets...> [LABELS <labels...>] [TIMEOUT s])
# One Catch2 executable, registered with ctest as one test. Under cross-compilation ctest runs it
# through CMAKE_CROSSCOMPILING_EMULATOR (qemu-aarch64).
if(NOT TARGET mixnas_catch_main)
  add_library(mixnas_catch_main STATIC ${CMAKE_SOURCE_DIR}/tests/catch_main.cpp)
  if(CMAKE_CROSSCOMPILING)
    # Catch2 is header-only, but the cross compiler must not see the host's /usr/include: expose
    # only catch2/ through a folder of its own.
    find_path(MIXNAS_CATCH2_INCLUDE catch2/catch.hpp REQUIRED)
    file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/third_party/catch2_include)
    file(CREATE_LINK ${MIXNAS_CATCH2_INCLUDE}/catch2 ${CMAKE_BINARY_DIR}/third_party/catch2_include/catch2
         SYMBOLIC)
    target_include_directories(mixnas_catch_main SYSTEM PUBLIC ${CMAKE_BINARY_DIR}/third_party/catch2_include)
  else()
    find_package(Catch2 REQUIRED)
    target_link_libraries(mixnas_catch_main PUBLIC Catch2::Catch2)
  endif()
endif()

function(mixnas_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE mixnas_catch_main ${T_LIBS})
  target_compile_definitions(${T_NAME} PRIVATE
    MIXNAS_SOURCE_DIR="${CMAKE_SOURCE_DIR}" MIXNAS_TEST_DATA_DIR="${CMAKE_SOURCE_DIR}/tests/data")
  set_target_properties(${T_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}")
endfunction()
