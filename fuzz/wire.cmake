# Included through CMAKE_PROJECT_INCLUDE by fuzz/run.sh while the root CMakeLists.txt does not add
# fuzz/ itself: defines the fuzz targets once the root has defined every other target.
# (Deferred arguments are evaluated late, so the path is baked in now through EVAL.)
if(MIXNAS_BUILD_FUZZ)
  cmake_language(EVAL CODE
    "cmake_language(DEFER DIRECTORY [[${CMAKE_SOURCE_DIR}]] CALL include [[${CMAKE_CURRENT_LIST_DIR}/targets.cmake]])")
endif()
