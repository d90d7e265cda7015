# Stand-in for Debian's xsimd package in the aarch64 cross build (tests/arm/toolchain.cmake).
include(${CMAKE_CURRENT_LIST_DIR}/../cross_headers.cmake)
set(xsimd_VERSION 8.1.0)
if(NOT TARGET xsimd)
  add_library(xsimd INTERFACE IMPORTED)
  set_target_properties(xsimd PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${seqmix_cross_headers})
endif()
