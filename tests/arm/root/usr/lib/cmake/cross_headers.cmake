# The host's header-only packages for a cross build: a directory holding only links to them.
set(seqmix_cross_headers ${CMAKE_BINARY_DIR}/cross-headers)
foreach(dir xsimd catch2)
  if(NOT EXISTS ${seqmix_cross_headers}/${dir})
    file(MAKE_DIRECTORY ${seqmix_cross_headers})
    file(CREATE_LINK /usr/include/${dir} ${seqmix_cross_headers}/${dir} SYMBOLIC)
  endif()
endforeach()
