#pragma once
// Per-target inline namespace (the model is Highway's per-target namespaces). A header-only
// library compiles its function bodies in every translation unit that includes it, with that
// unit's flags: two units built with different -march (a per-ISA dispatch unit, a plugin) or
// one with and one without OpenMP would otherwise emit different bodies under one symbol
// name, and the linker would keep just one of them (an AVX-512 body may then run on a CPU
// without AVX-512). Every seqmix function therefore lives in
//   namespace seqmix { inline namespace abi_<isa>_<threads> { ... } }
// so each combination has its own symbols; user code still writes seqmix::softmax_attention.
// Types that users name in their own signatures (tensor_view, tensor, error, the options
// structs) stay in namespace seqmix and carry no ISA-dependent code.
#include <xsimd/config/xsimd_config.hpp>

// The instruction set xsimd's default architecture is chosen from (the same macros).
// AVX512-BF16 changes kernel bodies (bf16 dot products) under the same xsimd architecture.
#if XSIMD_WITH_AVX512BW && defined(__AVX512BF16__)
#define SEQMIX_ABI_ISA avx512bf16
#elif XSIMD_WITH_AVX512BW
#define SEQMIX_ABI_ISA avx512bw
#elif XSIMD_WITH_AVX512DQ
#define SEQMIX_ABI_ISA avx512dq
#elif XSIMD_WITH_AVX512CD
#define SEQMIX_ABI_ISA avx512cd
#elif XSIMD_WITH_AVX512F
#define SEQMIX_ABI_ISA avx512f
#elif XSIMD_WITH_FMA3_AVX2
#define SEQMIX_ABI_ISA fma3_avx2
#elif XSIMD_WITH_AVX2
#define SEQMIX_ABI_ISA avx2
#elif XSIMD_WITH_FMA3_AVX
#define SEQMIX_ABI_ISA fma3_avx
#elif XSIMD_WITH_AVX
#define SEQMIX_ABI_ISA avx
#elif XSIMD_WITH_FMA4
#define SEQMIX_ABI_ISA fma4
#elif XSIMD_WITH_FMA3_SSE
#define SEQMIX_ABI_ISA fma3_sse4_2
#elif XSIMD_WITH_SSE4_2
#define SEQMIX_ABI_ISA sse4_2
#elif XSIMD_WITH_SSE4_1
#define SEQMIX_ABI_ISA sse4_1
#elif XSIMD_WITH_SSSE3
#define SEQMIX_ABI_ISA ssse3
#elif XSIMD_WITH_SSE3
#define SEQMIX_ABI_ISA sse3
#elif XSIMD_WITH_SSE2
#define SEQMIX_ABI_ISA sse2
#elif XSIMD_WITH_NEON64
#define SEQMIX_ABI_ISA neon64
#elif XSIMD_WITH_NEON
#define SEQMIX_ABI_ISA neon
#else
#define SEQMIX_ABI_ISA scalar
#endif

#if defined(_OPENMP)
#define SEQMIX_ABI_THREADS _omp
#else
#define SEQMIX_ABI_THREADS _serial
#endif

#define SEQMIX_ABI_CAT3_(a, b, c) a##b##c
#define SEQMIX_ABI_CAT3(a, b, c) SEQMIX_ABI_CAT3_(a, b, c)
#define SEQMIX_ABI_STR_(x) #x
#define SEQMIX_ABI_STR(x) SEQMIX_ABI_STR_(x)
// The namespace name, e.g. abi_avx512bw_omp or abi_sse2_serial.
#define SEQMIX_ABI SEQMIX_ABI_CAT3(abi_, SEQMIX_ABI_ISA, SEQMIX_ABI_THREADS)
#define SEQMIX_ABI_BEGIN inline namespace SEQMIX_ABI {
#define SEQMIX_ABI_END }

namespace seqmix {
SEQMIX_ABI_BEGIN
// The target this translation unit's seqmix code was built for ("abi_avx512bw_omp", ...).
inline const char* abi_name() { return SEQMIX_ABI_STR(SEQMIX_ABI); }
SEQMIX_ABI_END
}  // namespace seqmix
