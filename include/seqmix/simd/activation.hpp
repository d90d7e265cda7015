#pragma once
// Element-wise activations of the state-space models, on vectors: silu (the output gate
// and the convolution's activation) and softplus (the discretization step of Mamba).
#include "../core/abi.hpp"
#include "exp.hpp"
#include "vec.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace simd {

// x / (1 + exp(-x)).
template <class T>
inline vec<T> silu(const vec<T>& x) {
    return x / (vec<T>(T(1)) + exp(-x));
}

// log(1 + exp(x)), and x itself above 20 (as Mamba's kernels: the two differ by < 3e-9 there).
template <class T>
inline vec<T> softplus(const vec<T>& x) {
    return simd::select(x > vec<T>(T(20)), x, vec<T>(xsimd::log1p(exp(x))));
}

}  // namespace simd
SEQMIX_ABI_END
}  // namespace seqmix
