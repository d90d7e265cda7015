#define TU_NAME abi_tu_native_omp
#include "abi_tu.inc"
