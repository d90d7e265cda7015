#define TU_NAME abi_tu_native_serial
#include "abi_tu.inc"
