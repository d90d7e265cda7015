# Cross build of the tests for aarch64 (Arm64 Linux) with Debian's g++-aarch64-linux-gnu, run
# under qemu-user-static (ctest starts every test through CMAKE_CROSSCOMPILING_EMULATOR).
# xsimd and Catch2 are header-only: their Debian headers serve the target too, through the
# stand-in package configs of root/ (a second find root), which expose only those two
# directories (the host's /usr/include as a whole would put x86-64 glibc headers before the
# target's).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static -L /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu ${CMAKE_CURRENT_LIST_DIR}/root)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
