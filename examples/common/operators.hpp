#pragma once
// The token mixers a block calls, as a policy: `fast` is seqmix's kernels, `reference` is
// seqmix::reference (plain loops in double). The tests build every block both ways and
// compare; the demos use `fast`. Decode steps exist only as kernels (the tests check them
// against prefill instead).
#include <utility>

#include <seqmix/seqmix.hpp>

namespace seqmix_examples {

#define SEQMIX_EXAMPLES_OPERATOR(name, space)          \
    template <class... Args>                           \
    static void name(Args&&... args) {                 \
        space::name(std::forward<Args>(args)...);      \
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

}  // namespace seqmix_examples
