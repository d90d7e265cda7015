# Finds seqmix's dependencies; used by the build and by the installed seqmixConfig.cmake.
# Debian's xsimd 8.1 package exports its target with a link to a target named `xtl` that
# its config never defines (xtl is only needed for xtl::xcomplex support, which seqmix does
# not use). Use the real xtl when installed, otherwise an empty stand-in, so that the
# link line does not get a bogus -lxtl.
if(NOT TARGET xtl)
  find_package(xtl QUIET)
  if(NOT TARGET xtl)
    add_library(xtl INTERFACE IMPORTED)
  endif()
endif()
