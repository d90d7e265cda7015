#pragma once
// The CPU the library runs on, read once from cpuid: its vendor and its L1 data cache. The
// kernels' automatic choices that differ between microarchitectures (kernels/host_tuning.hpp)
// read it; a choice never depends on timing, so one host always takes the same path and gives
// the same bits.
#include <cstddef>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define SEQMIX_HAS_CPUID 1
#else
#define SEQMIX_HAS_CPUID 0
#endif

#include "abi.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN

enum class cpu_vendor { other, intel, amd };

struct host_cpu {
    cpu_vendor vendor = cpu_vendor::other;
    std::size_t l1d_bytes = std::size_t(32) * 1024;  // when cpuid does not say
};

namespace detail {
inline host_cpu read_host_cpu() {
    host_cpu h;
#if SEQMIX_HAS_CPUID
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return h;
    const unsigned max_leaf = a;
    // "GenuineIntel" / "AuthenticAMD": the vendor string in ebx, edx, ecx.
    if (b == 0x756e6547u && d == 0x49656e69u && c == 0x6c65746eu) h.vendor = cpu_vendor::intel;
    if (b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u) h.vendor = cpu_vendor::amd;
    // Deterministic cache parameters (leaf 4 on Intel, 0x8000001D on AMD): the level-1 data
    // cache is the first entry of type 1 (data) at level 1.
    const unsigned leaf = h.vendor == cpu_vendor::amd ? 0x8000001Du : 4u;
    if (leaf == 4u && max_leaf < 4u) return h;
    if (leaf != 4u && unsigned(__get_cpuid_max(0x80000000u, nullptr)) < leaf) return h;
    for (unsigned i = 0; i < 8; ++i) {
        __cpuid_count(leaf, i, a, b, c, d);
        const unsigned type = a & 0x1fu, level = (a >> 5) & 0x7u;
        if (type == 0) break;
        if (type == 1 && level == 1) {
            const std::size_t ways = (b >> 22) + 1, partitions = ((b >> 12) & 0x3ffu) + 1, line = (b & 0xfffu) + 1;
            h.l1d_bytes = ways * partitions * line * (std::size_t(c) + 1);
            break;
        }
    }
#endif
    return h;
}
}  // namespace detail

// This machine's CPU (read on first use; the same answer in every thread).
inline const host_cpu& this_host() {
    static const host_cpu h = detail::read_host_cpu();
    return h;
}

SEQMIX_ABI_END
}  // namespace seqmix
