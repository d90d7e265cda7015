// The references alone: every seqmix::reference header without the fast pieces. A kernel bug
// cannot hide in both the kernel and its reference if the references never include kernels/
// or simd/ (the SIMD layer, the only place xsimd is named, is what every kernel builds on).
#include <seqmix/reference/delta_rule.hpp>
#include <seqmix/reference/gated_linear_attention.hpp>
#include <seqmix/reference/linear_attention.hpp>
#include <seqmix/reference/local_attention.hpp>
#include <seqmix/reference/softmax_attention.hpp>
#include <seqmix/reference/sparse_attention.hpp>
#include <seqmix/reference/state_space.hpp>

#if defined(XSIMD_HPP)
#error "a seqmix::reference header includes the SIMD layer (simd/ or kernels/)"
#endif

#include <cmath>
#include <vector>

#include "catch.hpp"

TEST_CASE("the references build and run without the SIMD layer") {
    // One query over two keys: weights softmax(0, 1) on values 1 and 3.
    std::vector<double> q{1}, k{0, 1}, v{1, 3}, out(1);
    seqmix::attention_options o;
    o.scale = 1;
    seqmix::reference::softmax_attention(seqmix::tensor_view<const double, 3>(q.data(), {1, 1, 1}),
                                         seqmix::tensor_view<const double, 3>(k.data(), {2, 1, 1}),
                                         seqmix::tensor_view<const double, 3>(v.data(), {2, 1, 1}),
                                         seqmix::tensor_view<double, 3>(out.data(), {1, 1, 1}), o);
    const double e = std::exp(1.0);
    CHECK(std::abs(out[0] - (1 + 3 * e) / (1 + e)) < 1e-15);
}
