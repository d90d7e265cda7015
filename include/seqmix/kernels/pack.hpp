#pragma once
// Moving rows between user views (any strides) and the packed, padded tiles the kernels
// run on: row packing with zero padding, scaled emit of output rows, and state load/store.
// Unit-stride rows take vector copies; anything else goes element by element. Packed
// tiles are 64-byte aligned whatever the alignment of the user's buffers, so the
// micro-kernels only ever stream aligned scratch.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "../core/abi.hpp"
#include "../core/tensor_view.hpp"
#include "../simd/blas1.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

// dst[0..n) = src[i * stride], then zeros up to ld. src may be stored as S (bf16, ...).
template <class S, class T>
inline void pack_row(const S* src, index_t stride, index_t n, T* dst, index_t ld) {
    if (stride == 1) simd::copy(src, dst, std::size_t(n));
    else
        for (index_t i = 0; i < n; ++i) dst[i] = T(src[i * stride]);
    std::fill(dst + n, dst + ld, T(0));
}

// dst[i * stride] = mul * src[i] for i in [0, n); dst may be stored as D (bf16, ...):
// each value rounded once.
template <class T, class D>
inline void emit_row(const T* src, T mul, D* dst, index_t stride, index_t n) {
    if (stride == 1) simd::scaled_copy(mul, src, dst, std::size_t(n));
    else
        for (index_t i = 0; i < n; ++i) dst[i * stride] = storage_cast<D>(src[i] * mul);
}

// x / sqrt(sum x^2 + eps) over n values, in place (per-head l2 norm of packed q, k rows).
template <class T>
inline void l2_normalize(T* x, index_t n, double eps) {
    const T norm2 = simd::dot(static_cast<const T*>(x), static_cast<const T*>(x), std::size_t(n));
    simd::scale(T(1) / std::sqrt(norm2 + T(eps)), x, std::size_t(n));
}

// Prefetch (to L2) a row about to be packed, when it is contiguous.
template <class T>
inline void prefetch_row(const T* src, index_t stride, index_t n) {
    if (stride == 1) simd::prefetch(src, std::size_t(n));
}

// dst[i][j] = src[idx[i] * row_stride + j * col_stride] for i < n, j < cols, rows padded
// with zeros to ld: rows gathered by index (top-k keys, block tables, paged caches).
template <class T>
inline void gather_rows(const T* src, const std::int32_t* idx, index_t n, index_t row_stride, index_t col_stride,
                        index_t cols, T* dst, index_t ld) {
    for (index_t i = 0; i < n; ++i) pack_row(src + index_t(idx[i]) * row_stride, col_stride, cols, dst + i * ld, ld);
}

namespace detail {
// dst[i * drs + j * dcs] = src[i * srs + j * scs] in 16 x 16 tiles, walking i innermost: for
// blocks whose strided side has its rows as the contiguous axis (a transpose through cache
// rather than element-by-element gathers across cache lines).
template <class S, class T>
void copy_tiles(const S* src, index_t srs, index_t scs, T* dst, index_t drs, index_t dcs, index_t rows, index_t cols) {
    constexpr index_t tile = 16;
    for (index_t j0 = 0; j0 < cols; j0 += tile)
        for (index_t i0 = 0; i0 < rows; i0 += tile) {
            const index_t i1 = std::min(rows, i0 + tile), j1 = std::min(cols, j0 + tile);
            for (index_t j = j0; j < j1; ++j)
                for (index_t i = i0; i < i1; ++i)
                    dst[i * drs + j * dcs] = storage_cast<T>(compute_type_of<S>(src[i * srs + j * scs]));
        }
}
// Rows are the outer axis of a view with strides (rs, cs): walk it row by row.
inline bool row_major_walk(index_t rs, index_t cs) { return cs == 1 || std::abs(rs) >= std::abs(cs); }
}  // namespace detail

// dst[i][j] = src[i * rs + j * cs] for a rows x cols block of any strides, rows padded with
// zeros to ld. A source whose columns are its strided axis (a channel-major [B, D, L] tensor
// read token by token) goes through detail::copy_tiles.
template <class S, class T>
void pack_block(const S* src, index_t rs, index_t cs, index_t rows, index_t cols, T* dst, index_t ld) {
    if (detail::row_major_walk(rs, cs)) {
        for (index_t i = 0; i < rows; ++i) pack_row(src + i * rs, cs, cols, dst + i * ld, ld);
        return;
    }
    detail::copy_tiles(src, rs, cs, dst, ld, index_t(1), rows, cols);
    for (index_t i = 0; i < rows; ++i) std::fill(dst + i * ld + cols, dst + (i + 1) * ld, T(0));
}

// dst[i * rs + j * cs] = src[i * ld + j]: a packed tile written back to a view of any
// strides (the inverse of pack_block), rounded into D when it is a storage type.
template <class T, class D>
void unpack_block(const T* src, index_t ld, index_t rows, index_t cols, D* dst, index_t rs, index_t cs) {
    if (detail::row_major_walk(rs, cs)) {
        for (index_t i = 0; i < rows; ++i) emit_row(src + i * ld, T(1), dst + i * rs, cs, cols);
        return;
    }
    detail::copy_tiles(src, ld, index_t(1), dst, rs, cs, rows, cols);
}

namespace detail {
// One (sequence, head) state of a [seqs, H, dk, dv] view (stored as S) read through strides
// (rs, cs) into a packed [rows][ld] block (zero padded); an empty view means the zero state.
template <class S, class T>
void load_state_block(const tensor_view<const S, 4>& src, index_t s, index_t h, index_t rs, index_t cs, index_t rows,
                      index_t cols, T* dst, index_t ld) {
    if (src.empty()) std::fill(dst, dst + rows * ld, T(0));
    else pack_block(src.ptr(s, h), rs, cs, rows, cols, dst, ld);
}
}  // namespace detail

// The state packed as [dk][ldv]: rows are the state's rows.
template <class S, class T>
void load_state_rows(const tensor_view<const S, 4>& src, index_t s, index_t h, index_t dk, index_t dv, T* St,
                     index_t ldv) {
    detail::load_state_block(src, s, h, src.stride(2), src.stride(3), dk, dv, St, ldv);
}

// The same state packed transposed, [dv][ldk] (policies whose products want the value axis
// first); store_state_columns writes it back.
template <class S, class T>
void load_state_columns(const tensor_view<const S, 4>& src, index_t s, index_t h, index_t dk, index_t dv, T* St,
                        index_t ldk) {
    detail::load_state_block(src, s, h, src.stride(3), src.stride(2), dv, dk, St, ldk);
}

// States written back are rounded once into the view's storage type S. Only the pipeline
// columns [c0, c1) (a value-split block; every column: 0 and the state's width) are written.
template <class T, class S>
void store_state_columns(const T* St, index_t ldk, index_t c0, index_t c1, index_t dv, const tensor_view<S, 4>& dst,
                         index_t s, index_t h) {
    if (dst.empty()) return;
    S* base = dst.ptr(s, h);
    for (index_t e = 0; e < dv; ++e)
        for (index_t d = c0; d < c1; ++d)
            base[d * dst.stride(2) + e * dst.stride(3)] = storage_cast<S>(St[e * ldk + d]);
}

// streaming: a snapshot, not read soon: unit-stride rows in T bypass the caches.
template <class T, class S>
void store_state_rows(const T* St, index_t ldv, index_t dk, index_t c0, index_t c1, const tensor_view<S, 4>& dst,
                      index_t s, index_t h, bool streaming = false) {
    if (dst.empty() || c0 >= c1) return;
    if constexpr (std::is_same_v<S, T>) {
        if (streaming && dst.stride(3) == 1) {
            for (index_t d = 0; d < dk; ++d)
                simd::copy_streaming(St + d * ldv + c0, dst.ptr(s, h, d, c0), std::size_t(c1 - c0));
            simd::stream_fence();
            return;
        }
    }
    for (index_t d = 0; d < dk; ++d) emit_row(St + d * ldv + c0, T(1), dst.ptr(s, h, d, c0), dst.stride(3), c1 - c0);
}

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
