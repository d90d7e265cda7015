#define TU_NAME abi_tu_sse2
#include "abi_tu.inc"
