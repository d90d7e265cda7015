#pragma once
// The gates of the references, in double: a per-head log gate projected from a raw value
// (gate_projection_options) and the learning rate sigmoid(b) (delta_options::beta_sigmoid).
#include <cmath>

#include "../core/abi.hpp"
#include "../core/tensor_view.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace reference {
namespace detail {

// g itself without A_log; else -exp(A_log[h]) * log(1 + exp(g + dt_bias[h])).
inline double projected_gate(double g, const float* A_log, const float* dt_bias, index_t h) {
    if (!A_log) return g;
    const double x = g + (dt_bias ? double(dt_bias[h]) : 0.0);
    return -std::exp(double(A_log[h])) * (x > 30 ? x : std::log1p(std::exp(x)));
}

inline double learning_rate(double beta, bool sigmoid) { return sigmoid ? 1.0 / (1.0 + std::exp(-beta)) : beta; }

}  // namespace detail
}  // namespace reference
SEQMIX_ABI_END
}  // namespace seqmix
