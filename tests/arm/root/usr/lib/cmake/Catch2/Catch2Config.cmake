# Stand-in for Debian's Catch2 (v2, header-only) in the aarch64 cross build.
include(${CMAKE_CURRENT_LIST_DIR}/../cross_headers.cmake)
set(Catch2_VERSION 2.13.10)
if(NOT TARGET Catch2::Catch2)
  add_library(Catch2::Catch2 INTERFACE IMPORTED)
  set_target_properties(Catch2::Catch2 PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${seqmix_cross_headers})
endif()
