#pragma once
// The token mixers a block calls, as a policy: `fast` is seqmix's kernels, `reference` is
// seqmix::reference (plain loops in double). The tests build every block both ways and
// compare; the demos use `fast`. Decode steps exist only as kernels (the tests check them
// against prefill instead).
#include <cstdint>
#include <utility>

#include <seqmix/seqmix.hpp>

namespace seqmix_examples {

#define SEQMIX_EXAMPLES_OPERATOR(name, space)     \
    template <class... Args>                      \
    static void name(Args&&... args) {            \
        space::name(std::forward<Args>(args)...); \
    }

struct fast_operators {
    SEQMIX_EXAMPLES_OPERATOR(softmax_attention, seqmix)
    SEQMIX_EXAMPLES_OPERATOR(causal_conv1d, seqmix)
    SEQMIX_EXAMPLES_OPERATOR(selective_scan, seqmix)
    SEQMIX_EXAMPLES_OPERATOR(ssd_scan, seqmix)
    SEQMIX_EXAMPLES_OPERATOR(gated_delta_rule, seqmix)
    SEQMIX_EXAMPLES_OPERATOR(gated_linear_attention, seqmix)
};

struct reference_operators {
    SEQMIX_EXAMPLES_OPERATOR(softmax_attention, seqmix::reference)
    SEQMIX_EXAMPLES_OPERATOR(causal_conv1d, seqmix::reference)
    SEQMIX_EXAMPLES_OPERATOR(selective_scan, seqmix::reference)
    SEQMIX_EXAMPLES_OPERATOR(ssd_scan, seqmix::reference)
    SEQMIX_EXAMPLES_OPERATOR(gated_delta_rule, seqmix::reference)
    SEQMIX_EXAMPLES_OPERATOR(gated_linear_attention, seqmix::reference)
};

#undef SEQMIX_EXAMPLES_OPERATOR

// The short convolution of the Mamba and DeltaNet blocks: depthwise, SiLU, an optional bias
// (empty: none); the decode form reads and updates the pool slots `slots`.
inline seqmix::conv1d_options silu_conv(const float* bias, int threads) {
    seqmix::conv1d_options o;
    o.bias = bias;
    o.activation = seqmix::activation::silu;
    o.num_threads = threads;
    return o;
}
inline seqmix::conv1d_step_options silu_conv_step(const float* bias, const std::int32_t* slots, int threads) {
    seqmix::conv1d_step_options o;
    o.bias = bias;
    o.activation = seqmix::activation::silu;
    o.state_indices = slots;
    o.num_threads = threads;
    return o;
}

}  // namespace seqmix_examples
