#pragma once
// Row-oriented pieces for few query rows against a long run of keys (decode): a block of
// W keys (one vector width) at a time, keys and values read in place through one row
// pointer per key (contiguous, strided or paged alike).
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "../core/abi.hpp"
#include "../core/tensor_view.hpp"
#include "../simd/blas1.hpp"
#include "../simd/convert.hpp"
#include "../simd/vec.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

// scores[r * lds + j] = q_r . k_j for RB query rows q_r = q + r * ldq and the W keys
// keys[j] (keys[j] for j >= nkeys repeat the last key; callers mask those lanes). Every key
// row is loaded once for all RB query rows: rows of one head of a [B,N,H,D] tensor are
// 4 KB apart and share one L1 set, so re-reading them per query row would go to L2.
// q rows must be readable (zero padded) up to d rounded up to W.
// `ahead` (or nullptr): the W rows read next in the same stream, requested line by line as
// these keys stream, so the memory requests stay spread over the compute. Keys may be stored
// as K (bf16, ...): they widen to T in registers.
template <class T, int RB, class K>
inline void dot_key_block(const T* q, index_t ldq, const K* const* keys, index_t d, T* scores, index_t lds,
                          const K* const* ahead) {
    using V = simd::vec<T>;
    constexpr index_t W = index_t(simd::width<T>);
    constexpr index_t G = W < 4 ? W : 4;  // keys per pass: RB x G accumulators stay in registers
    V part[RB][W];
    for (index_t g = 0; g < W; g += G) {
        const K* kp[G];
        const K* later[G];
        for (index_t j = 0; j < G; ++j) kp[j] = keys[g + j], later[j] = ahead ? ahead[g + j] : nullptr;
        V acc[RB][G];
        for (int r = 0; r < RB; ++r)
            for (index_t j = 0; j < G; ++j) acc[r][j] = V(T(0));
        // The whole vectors of d, with or without the requests (a branch per pass, not per load).
        auto pass = [&](auto request) {
            index_t d0 = 0;
            for (; d0 + W <= d; d0 += W) {
                V kv[G];
                for (index_t j = 0; j < G; ++j) {
                    if constexpr (decltype(request)::value)
                        if (d0 * index_t(sizeof(K)) % 64 == 0) simd::prefetch_line(later[j] + d0);
                    kv[j] = simd::load_as<T>(kp[j] + d0);
                    simd::keep_in_register(kv[j]);  // one load per key and per row, not per FMA
                }
                for (int r = 0; r < RB; ++r) {
                    V qv = simd::load(q + r * ldq + d0);
                    simd::keep_in_register(qv);
                    for (index_t j = 0; j < G; ++j) acc[r][j] = simd::fma(qv, kv[j], acc[r][j]);
                }
            }
            return d0;
        };
        const index_t d0 = ahead ? pass(std::true_type{}) : pass(std::false_type{});
        if (d0 < d) {
            V kv[G];
            for (index_t j = 0; j < G; ++j) kv[j] = simd::load_as_partial<T>(kp[j] + d0, std::size_t(d - d0));
            for (int r = 0; r < RB; ++r) {
                const V qv = simd::load(q + r * ldq + d0);
                for (index_t j = 0; j < G; ++j) acc[r][j] = simd::fma(qv, kv[j], acc[r][j]);
            }
        }
        for (int r = 0; r < RB; ++r)
            for (index_t j = 0; j < G; ++j) part[r][g + j] = acc[r][j];
    }
    for (int r = 0; r < RB; ++r) simd::store(scores + r * lds, simd::hsum_rows(part[r]));
}

// The same for any number of query rows, in blocks the register file holds.
// Only the first block of rows requests `ahead`: the later ones read the same keys.
template <class T, class K>
inline void dot_key_rows(const T* q, index_t ldq, index_t rows, const K* const* keys, index_t d, T* scores, index_t lds,
                         const K* const* ahead = nullptr) {
    constexpr int RB = simd::register_count >= 32 ? 4 : 2;
    index_t r = 0;
    for (; r + RB <= rows; r += RB, ahead = nullptr)
        dot_key_block<T, RB>(q + r * ldq, ldq, keys, d, scores + r * lds, lds, ahead);
    for (; r < rows; ++r, ahead = nullptr) dot_key_block<T, 1>(q + r * ldq, ldq, keys, d, scores + r * lds, lds, ahead);
}

// The same with the keys k + j * k_stride, j < nkeys.
template <class T>
inline void dot_key_rows(const T* q, index_t ldq, index_t rows, const T* k, index_t k_stride, index_t nkeys, index_t d,
                         T* scores, index_t lds) {
    const T* keys[simd::width<T>];
    for (index_t j = 0; j < index_t(simd::width<T>); ++j) keys[j] = k + std::min(j, nkeys - 1) * k_stride;
    dot_key_rows(q, ldq, rows, keys, d, scores, lds);
}

// o_r[0..dv) += sum_{j < nkeys} p[r * ldp + j] * values[j] for RB rows. o rows have stride
// ldo and are padded to a multiple of W; value rows are read exactly dv. RB rows by NV
// vectors of o stay in registers while the keys stream, so each probability is broadcast
// once per NV vectors of o. `ahead`: as for dot_key_block, value rows read later. Values may be
// stored as S: they widen to T in registers.
template <class T, int RB, int NV, class S>
inline void accumulate_value_block(const T* p, index_t ldp, const S* const* values, index_t nkeys, T* o, index_t ldo,
                                   index_t dv, const S* const* ahead) {
    using V = simd::vec<T>;
    constexpr index_t W = index_t(simd::width<T>);
    for (index_t e0 = 0; e0 < dv; e0 += NV * W) {
        V acc[RB][NV];
        for (int r = 0; r < RB; ++r)
            for (int v = 0; v < NV; ++v)
                acc[r][v] = e0 + v * W < dv ? simd::load_aligned(o + r * ldo + e0 + v * W) : V(T(0));
        if (e0 + NV * W <= dv) {
            for (index_t j = 0; j < nkeys; ++j) {
                V x[NV];
                for (int v = 0; v < NV; ++v) {
                    if (ahead && (e0 + v * W) * index_t(sizeof(S)) % 64 == 0)
                        simd::prefetch_line(ahead[j] + e0 + v * W);
                    x[v] = simd::load_as<T>(values[j] + e0 + v * W);
                }
                for (int r = 0; r < RB; ++r) {
                    const V b(p[r * ldp + j]);
                    for (int v = 0; v < NV; ++v) acc[r][v] = simd::fma(b, x[v], acc[r][v]);
                }
            }
        } else {  // the last block: whole vectors, a partial one, then nothing past dv
            for (index_t j = 0; j < nkeys; ++j) {
                V x[NV];
                for (int v = 0; v < NV; ++v) {
                    const index_t e = e0 + v * W;
                    x[v] = e + W <= dv ? simd::load_as<T>(values[j] + e)
                           : e < dv    ? simd::load_as_partial<T>(values[j] + e, std::size_t(dv - e))
                                       : V(T(0));
                }
                for (int r = 0; r < RB; ++r) {
                    const V b(p[r * ldp + j]);
                    for (int v = 0; v < NV; ++v) acc[r][v] = simd::fma(b, x[v], acc[r][v]);
                }
            }
        }
        for (int r = 0; r < RB; ++r)
            for (int v = 0; v < NV; ++v)
                if (e0 + v * W < dv) simd::store_aligned(o + r * ldo + e0 + v * W, acc[r][v]);
    }
}

// The same for any number of rows.
template <class T, class S>
inline void accumulate_value_rows(const T* p, index_t ldp, index_t rows, const S* const* values, index_t nkeys, T* o,
                                  index_t ldo, index_t dv, const S* const* ahead = nullptr) {
    constexpr int RB = simd::register_count >= 32 ? 4 : 2, NV = 4;
    index_t r = 0;
    for (; r + RB <= rows; r += RB, ahead = nullptr)
        accumulate_value_block<T, RB, NV>(p + r * ldp, ldp, values, nkeys, o + r * ldo, ldo, dv, ahead);
    for (; r < rows; ++r, ahead = nullptr)
        accumulate_value_block<T, 1, NV>(p + r * ldp, ldp, values, nkeys, o + r * ldo, ldo, dv, ahead);
}

// false if any of `rows` rows of n values (row stride rs, element stride es) is Inf or NaN.
// Masked keys multiply their values by an exact 0, which an Inf or NaN value turns into
// NaN: tiles with masked keys check their values first and take the exact path if needed.
template <class T>
inline bool rows_finite(const T* x, index_t rows, index_t rs, index_t n, index_t es) {
    for (index_t j = 0; j < rows; ++j) {
        const T* row = x + j * rs;
        if (es == 1) {
            if (!simd::all_finite(row, std::size_t(n))) return false;
        } else {
            for (index_t e = 0; e < n; ++e)
                if (!std::isfinite(compute_type_of<T>(row[e * es]))) return false;
        }
    }
    return true;
}

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
