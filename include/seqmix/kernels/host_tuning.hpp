#pragma once
// The automatic choices that differ between CPU families, each from the same benchmark rows on
// both (bench/, docs/performance.md). They read the host from cpuid (core/host_cpu.hpp), never
// a timing, so a host always takes the same path; the bits may differ between hosts.
#include <cstddef>

#include "../core/abi.hpp"
#include "../core/host_cpu.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

// bf16 q, k and v on an AVX512-BF16 target: vdpbf16ps, or float FMAs on the widened values.
// AMD Zen 5 runs vdpbf16ps at twice the FMA's rate (ceiling rows bf16_peak 540, fma_peak 273
// GFLOP/s; bf16 prefill H8 D128 N2048 1.25x the float one). An Intel Xeon (family 6 model 207)
// runs it at half (86 and 175 GFLOP/s): the bf16 prefill ran 0.40x the float one.
inline bool bf16_dot_products_pay() { return this_host().vendor == cpu_vendor::amd; }

// The delta rule's automatic form: the recurrence token by token, or the WY / UT chunk products
// (rows delta_rule/chunk/.../form:*). AMD Zen 4 / Zen 5 ran the recurrence faster at Dk = Dv = 64
// and 128 (1.15-1.35x on Zen 4, 1.04-1.11x on Zen 5). An Intel Xeon (family 6 model 207) ran it
// 1.3-1.8x faster at 64, while at 128 the chunk products were 1.16-1.58x faster: a state beyond
// its 48 KiB L1 makes each token a pass over L2.
inline bool delta_recurrence_pays(std::size_t state_bytes) {
    const host_cpu& h = this_host();
    return h.vendor != cpu_vendor::intel || state_bytes <= h.l1d_bytes;
}

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
