#pragma once
// The contract of the local attention operators: sliding_window_attention (a band of keys
// around each query's diagonal, with dilation) and neighborhood_attention_1d/2d/3d (NATTEN's
// neighborhoods). Their options, and how they are validated: as the softmax_attention call
// they are a restriction of (contract/attention.hpp), plus their own options.
#include <cstdint>

#include "../core/abi.hpp"
#include "../core/validate.hpp"
#include "attention.hpp"

namespace seqmix {

struct window_options : attention_inputs {
    int window_left = -1;   // keys up to this many tokens before the diagonal (-1 = unbounded)
    int window_right = -1;  // keys up to this many tokens after it (-1 = unbounded)
    bool causal = false;    // window_right = 0
    int dilation = 1;       // only keys j with (diagonal - j) % dilation == 0 (NATTEN 1-D)
    double scale = 0;       // 0 = 1/sqrt(Dk)
    double softcap = 0;     // 0 = off
    const float* sinks = nullptr;  // [Hq]; a logit joining every row's denominator
};

SEQMIX_ABI_BEGIN
namespace detail {

// The softmax_attention options with the same band (dilation aside): what validation and
// the dilation-1 case run on.
inline attention_options band_options(const window_options& w) {
    attention_options o;
    static_cast<attention_inputs&>(o) = w;
    o.scale = w.scale;
    o.causal = w.causal;
    o.window_left = w.window_left;
    o.window_right = w.window_right;
    o.softcap = w.softcap;
    o.sinks = w.sinks;
    return o;
}

inline void check_window(const window_options& w, const char* op) {
    check(w.dilation >= 1, op, "dilation", ">= 1", w.dilation);
}

}  // namespace detail
SEQMIX_ABI_END
}  // namespace seqmix
