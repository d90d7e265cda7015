#pragma once
// Online softmax on transposed score tiles: st[j * ld + r] is the score of key j for
// query row r, so the rows of the attention matrix run along the vector lanes and every
// per-row reduction (max, sum) is a plain vertical vector operation.
#include <cmath>
#include <limits>

#include "../core/abi.hpp"
#include "../core/tensor_view.hpp"
#include "../simd/exp.hpp"
#include "../simd/vec.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

// One FlashAttention-2 step: the running max m and sum l absorb the tile, the tile turns
// into probabilities exp(s - m_new), and alpha = exp(m_old - m_new) is what the output
// accumulator must be scaled by. Rows with nothing visible yet keep m = -inf, l = 0.
template <class T>
inline void online_softmax_update(T* st, index_t keys, index_t ld, index_t lanes, T* m, T* l, T* alpha) {
    using V = simd::vec<T>;
    constexpr index_t W = index_t(simd::width<T>);
    const V ninf(-std::numeric_limits<T>::infinity());
    for (index_t r = 0; r < lanes; r += W) {
        V mx0 = simd::load_aligned(m + r), mx1 = ninf;
        index_t j = 0;
        for (; j + 2 <= keys; j += 2) {
            mx0 = simd::max(mx0, simd::load_aligned(st + j * ld + r));
            mx1 = simd::max(mx1, simd::load_aligned(st + (j + 1) * ld + r));
        }
        if (j < keys) mx0 = simd::max(mx0, simd::load_aligned(st + j * ld + r));
        const V m_old = simd::load_aligned(m + r);
        const V m_new = simd::max(mx0, mx1);
        const V m_use = simd::select(m_new == ninf, V(T(0)), m_new);  // avoids -inf - -inf
        V s0(T(0)), s1(T(0));
        j = 0;
        for (; j + 2 <= keys; j += 2) {
            T* p0 = st + j * ld + r;
            T* p1 = p0 + ld;
            const V e0 = simd::exp_nonpositive(simd::load_aligned(p0) - m_use);
            const V e1 = simd::exp_nonpositive(simd::load_aligned(p1) - m_use);
            simd::store_aligned(p0, e0);
            simd::store_aligned(p1, e1);
            s0 = s0 + e0;
            s1 = s1 + e1;
        }
        if (j < keys) {
            T* p0 = st + j * ld + r;
            const V e0 = simd::exp_nonpositive(simd::load_aligned(p0) - m_use);
            simd::store_aligned(p0, e0);
            s0 = s0 + e0;
        }
        const V a = simd::exp_nonpositive(m_old - m_use);
        simd::store_aligned(alpha + r, a);
        simd::store_aligned(l + r, simd::fma(simd::load_aligned(l + r), a, s0 + s1));
        simd::store_aligned(m + r, m_new);
    }
}

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
