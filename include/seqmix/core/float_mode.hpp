#pragma once
// Subnormal numbers are flushed to zero for the library's own work. Intel cores take a
// microcode assist, about a hundred cycles, for every subnormal operand or result. Decays
// produce such values: exp of a cumulative log gate inside a chunk, or a state fading under
// strong gates. One scan over them ran 3.5x slower on a Xeon. Every thread of every parallel
// region of the library (core/parallel.hpp) runs its work with flush-to-zero and
// denormals-are-zero set, and restores the thread's own mode after, so nothing leaks to the
// caller or to a user's OpenMP threads. A value below 2^-126 in float (2^-1022 in double) is
// read and written as zero. That changes a result by less than the smallest normal number,
// far inside every accuracy contract.
#include <cstdint>

#if defined(__SSE__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 1)
#include <xmmintrin.h>
#define SEQMIX_HAS_MXCSR 1
#else
#define SEQMIX_HAS_MXCSR 0
#endif
#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define SEQMIX_HAS_FPCR 1  // AArch64: FPCR.FZ flushes subnormal inputs and results alike
#else
#define SEQMIX_HAS_FPCR 0
#endif

#include "abi.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN

// RAII: FTZ and DAZ set on this thread for the guard's lifetime (x86 MXCSR, AArch64 FPCR.FZ;
// elsewhere nothing).
class subnormals_flushed {
public:
#if SEQMIX_HAS_MXCSR
    static constexpr unsigned flags = 0x8040u;  // MXCSR bit 15 flush-to-zero, bit 6 denormals-are-zero
    subnormals_flushed() : saved_(_mm_getcsr()) {
        if ((saved_ & flags) != flags) _mm_setcsr(saved_ | flags);
    }
    ~subnormals_flushed() {
        if ((saved_ & flags) != flags) _mm_setcsr(saved_);
    }

private:
    unsigned saved_;
#elif SEQMIX_HAS_FPCR
    static constexpr std::uint64_t flags = std::uint64_t(1) << 24;  // FPCR.FZ
    subnormals_flushed() {
        __asm__ __volatile__("mrs %0, fpcr" : "=r"(saved_) : : "memory");
        if ((saved_ & flags) != flags) __asm__ __volatile__("msr fpcr, %0" : : "r"(saved_ | flags) : "memory");
    }
    ~subnormals_flushed() {
        if ((saved_ & flags) != flags) __asm__ __volatile__("msr fpcr, %0" : : "r"(saved_) : "memory");
    }

private:
    std::uint64_t saved_;
#else
    static constexpr unsigned flags = 0;
    subnormals_flushed() = default;
#endif
public:
    subnormals_flushed(const subnormals_flushed&) = delete;
    subnormals_flushed& operator=(const subnormals_flushed&) = delete;
};

SEQMIX_ABI_END
}  // namespace seqmix
