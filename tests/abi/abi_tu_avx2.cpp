#define TU_NAME abi_tu_avx2
#include "abi_tu.inc"
