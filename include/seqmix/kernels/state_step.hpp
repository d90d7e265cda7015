#pragma once
// One decode step of a matrix-state recurrence for one head, fused into a single pass over
// the state rows: S[d][:] = decay_d S[d][:] + k_d v, then o = S^T q. Columns go in blocks of
// four vectors held in registers across all rows, so each state element is loaded and
// stored once and costs two FMAs.
#include "../core/abi.hpp"
#include <algorithm>

#include "../core/tensor_view.hpp"
#include "../simd/vec.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

// S: dk rows of n columns, row stride lds, unit column stride. decay: dk values (vector
// gate) or one value broadcast to all rows (decay_stride 0). v and o hold n values.
template <class T>
void state_step(T* S, index_t lds, index_t dk, index_t n, const T* q, const T* k, const T* v, const T* decay,
                index_t decay_stride, T* o) {
    using V = simd::vec<T>;
    constexpr index_t W = index_t(simd::width<T>);
    constexpr index_t NB = 4;
    for (index_t e0 = 0; e0 < n; e0 += NB * W) {
        V vv[NB], acc[NB];
        index_t cnt[NB];
        for (index_t j = 0; j < NB; ++j) {
            cnt[j] = std::clamp<index_t>(n - (e0 + j * W), 0, W);
            vv[j] = cnt[j] == W ? simd::load(v + e0 + j * W) : simd::load_partial(v + e0 + j * W, std::size_t(cnt[j]));
            acc[j] = V(T(0));
        }
        const bool full = cnt[NB - 1] == W;
        for (index_t d = 0; d < dk; ++d) {
            T* row = S + d * lds + e0;
            const V dec(decay[d * decay_stride]), kd(k[d]), qd(q[d]);
            if (full) {
                for (index_t j = 0; j < NB; ++j) {
                    const V s = simd::fma(simd::load(row + j * W), dec, kd * vv[j]);
                    simd::store(row + j * W, s);
                    acc[j] = simd::fma(qd, s, acc[j]);
                }
            } else {
                for (index_t j = 0; j < NB; ++j) {
                    if (cnt[j] == 0) break;
                    const V s = simd::fma(simd::load_partial(row + j * W, std::size_t(cnt[j])), dec, kd * vv[j]);
                    simd::store_partial(row + j * W, s, std::size_t(cnt[j]));
                    acc[j] = simd::fma(qd, s, acc[j]);
                }
            }
        }
        for (index_t j = 0; j < NB && cnt[j] > 0; ++j) {
            if (cnt[j] == W) simd::store(o + e0 + j * W, acc[j]);
            else simd::store_partial(o + e0 + j * W, acc[j], std::size_t(cnt[j]));
        }
    }
}

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
