#pragma once
// Unit-lower triangular solves of chunk size, vectorized across the right-hand sides: the
// UT transform of the delta rule, (I + strictly_lower(diag(beta) K K^T))^-1 applied to
// beta V and beta K, is one of these per right-hand-side panel.
#include <algorithm>

#include "../core/abi.hpp"
#include "../core/tensor_view.hpp"
#include "../simd/blas1.hpp"
#include "gemm_tile.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

// X <- (I - strictly_lower(A))^-1 X, in place, by forward substitution over the rows:
//   X_t += sum_{s<t} A[t][s] X_s
// X is [L][ldx] with `lanes` lanes (a multiple of the vector width); only A's entries
// below the diagonal are read. Rows go in blocks of the micro-tile height: the block's
// dependence on every earlier block is one panel product, the triangle inside it a few
// row updates.
template <class T>
void unit_lower_solve(index_t L, const T* A, index_t lda, T* X, index_t ldx, index_t lanes) {
    constexpr index_t block = panel_blocking<T>::mr;
    for (index_t t0 = 0; t0 < L; t0 += block) {
        const index_t t1 = std::min(L, t0 + block);
        if (t0 > 0)
            panel_gemm<tile_update::accumulate>(t1 - t0, t0, lanes, A + t0 * lda, lda, 1, static_cast<const T*>(X), ldx,
                                                X + t0 * ldx, ldx);
        for (index_t t = t0 + 1; t < t1; ++t)
            for (index_t s = t0; s < t; ++s) simd::axpy(A[t * lda + s], X + s * ldx, X + t * ldx, std::size_t(lanes));
    }
}

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
