#pragma once
// Moving rows between user views (any strides) and the packed, padded tiles the kernels
// run on: row packing with zero padding, scaled emit of output rows, and state load/store.
// Unit-stride rows take vector copies; anything else goes element by element. Packed
// tiles are 64-byte aligned whatever the alignment of the user's buffers, so the
// micro-kernels only ever stream aligned scratch.
#include <algorithm>

#include "../core/abi.hpp"
#include "../core/tensor_view.hpp"
#include "../simd/blas1.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

// dst[0..n) = src[i * stride], then zeros up to ld.
template <class T>
inline void pack_row(const T* src, index_t stride, index_t n, T* dst, index_t ld) {
    if (stride == 1) simd::copy(src, dst, std::size_t(n));
    else for (index_t i = 0; i < n; ++i) dst[i] = src[i * stride];
    std::fill(dst + n, dst + ld, T(0));
}

// dst[i * stride] = mul * src[i] for i in [0, n).
template <class T>
inline void emit_row(const T* src, T mul, T* dst, index_t stride, index_t n) {
    if (stride == 1) simd::scaled_copy(mul, src, dst, std::size_t(n));
    else for (index_t i = 0; i < n; ++i) dst[i * stride] = src[i] * mul;
}

// Prefetch (to L2) a row about to be packed, when it is contiguous.
template <class T>
inline void prefetch_row(const T* src, index_t stride, index_t n) {
    if (stride == 1) simd::prefetch(src, std::size_t(n));
}

// One (sequence, head) state of a [seqs, H, dk, dv] view into the packed [dk][ldv] form
// (zero padded); an empty view means the zero state.
template <class T>
void load_state_rows(const tensor_view<const T, 4>& src, index_t s, index_t h, index_t dk, index_t dv, T* S,
                     index_t ldv) {
    if (src.empty()) {
        std::fill(S, S + dk * ldv, T(0));
        return;
    }
    for (index_t d = 0; d < dk; ++d) pack_row(src.ptr(s, h, d), src.stride(3), dv, S + d * ldv, ldv);
}

template <class T>
void store_state_rows(const T* S, index_t ldv, index_t dk, index_t dv, const tensor_view<T, 4>& dst, index_t s,
                      index_t h) {
    if (dst.empty()) return;
    for (index_t d = 0; d < dk; ++d) emit_row(S + d * ldv, T(1), dst.ptr(s, h, d), dst.stride(3), dv);
}

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
