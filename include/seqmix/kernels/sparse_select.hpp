#pragma once
// The selections of the sparse attention operators, made before the attention run:
//   - topk_select: each row's top_k keys by score (ties: lower index; NaN above everything).
//     Scores come in tiles of keys x rows-in-lanes (the prefill engine's S^T = K Q^T lane
//     panels); each row keeps a threshold, and one vector compare per key and vector of rows
//     passes on only the scores that can still enter the row's top_k. A row's candidates are
//     cut back to top_k (a partial selection, never a sort of all keys) when they fill their
//     buffer, raising its threshold: about top_k log(N / top_k) scores ever pass.
//   - block_select (MoBA): a query block's key blocks by mean query . mean key, computed as
//     (sum q . sum k) / (queries x keys) in double, so integer data gives exact ties.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "../core/abi.hpp"
#include "../core/tensor_view.hpp"
#include "../simd/blas1.hpp"
#include "../simd/vec.hpp"
#include "gemm_tile.hpp"
#include "kv_rows.hpp"
#include "pack.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

// A candidate ranks before another: NaN first, then the higher score, then the lower index.
template <class T>
inline bool ranks_before(T sa, std::int32_t a, T sb, std::int32_t b) {
    const bool na = sa != sa, nb = sb != sb;
    if (na != nb) return na;
    if (!na && sa != sb) return sa > sb;
    return a < b;
}

// The top_k selection of one unit: `rows` query rows (rows in lanes) over keys [0, k_count),
// row r seeing keys [0, last[r]] (a causal diagonal) or none (last[r] < 0).
template <class T>
class topk_select {
public:
    static constexpr index_t key_tile = 64;
    static index_t lanes_for(index_t rows) {
        constexpr index_t W = index_t(simd::width<T>);
        return (rows + W - 1) / W * W;
    }
    static index_t capacity(index_t top_k) { return 2 * top_k + 64; }
    // Scratch in elements of T and of int32 for `rows` rows of dk.
    static std::size_t scratch_size(index_t rows, index_t dk, index_t top_k) {
        const std::size_t L = std::size_t(lanes_for(rows));
        return L * std::size_t(dk + key_tile + 2 + capacity(top_k)) + 64;
    }
    static std::size_t index_size(index_t rows, index_t top_k) {
        return std::size_t(lanes_for(rows)) * std::size_t(capacity(top_k) + 1);
    }

    topk_select(index_t rows, index_t dk, index_t top_k, T* scratch, std::int32_t* indices)
        : rows_(rows), L_(lanes_for(rows)), dk_(dk), k_(top_k), cap_(capacity(top_k)) {
        T* p = scratch;
        auto take = [&](std::size_t n) {
            T* r = p;
            p += (n + 15) / 16 * 16;
            return r;
        };
        qt_ = take(std::size_t(dk_ * L_));
        st_ = take(std::size_t(key_tile * L_));
        thr_ = take(std::size_t(L_));
        last_ = take(std::size_t(L_));
        score_ = take(std::size_t(cap_ * L_));
        index_ = indices;
        count_ = indices + cap_ * L_;
    }

    // Row r: its query (scaled as the attention engines scale it) and its last visible key.
    void set_row(index_t r, const T* q, index_t q_elem, T scale, index_t last) {
        for (index_t d = 0; d < dk_; ++d) qt_[d * L_ + r] = q[d * q_elem] * scale;
        last_[r] = T(last);
        thr_[r] = -std::numeric_limits<T>::infinity();
        count_[r] = 0;
    }
    void clear_row(index_t r) {
        for (index_t d = 0; d < dk_; ++d) qt_[d * L_ + r] = T(0);
        last_[r] = T(-1);
        thr_[r] = -std::numeric_limits<T>::infinity();
        count_[r] = 0;
    }

    // Scores of keys [0, end) against every row, tile by tile, through the rows' thresholds.
    void run(const kv_rows<T>& kv, index_t end, index_t unmasked_end) {
        using V = simd::vec<T>;
        constexpr index_t W = index_t(simd::width<T>);
        for (index_t j0 = 0; j0 < end; j0 += key_tile) {
            const index_t n = std::min(key_tile, end - j0);
            kv.runs(j0, n, [&](index_t j, index_t c, const T* k, const T*) {
                panel_gemm<tile_update::overwrite>(c, dk_, L_, k, kv.k_row, kv.k_elem, qt_, L_, st_ + (j - j0) * L_, L_);
            });
            const bool masked = j0 + n > unmasked_end;
            for (index_t r0 = 0; r0 < L_; r0 += W) {
                const V thr = simd::load_aligned(thr_ + r0), last = simd::load_aligned(last_ + r0);
                for (index_t t = 0; t < n; ++t) {
                    const V s = simd::load_aligned(st_ + t * L_ + r0);
                    auto pass = (s >= thr) || simd::isnan(s);
                    if (masked) pass = pass && (V(T(j0 + t)) <= last);
                    if (!simd::any(pass)) continue;
                    for (unsigned bits = simd::mask_bits<T>(pass); bits; bits &= bits - 1)
                        push(r0 + __builtin_ctz(bits), st_[t * L_ + r0 + __builtin_ctz(bits)], std::int32_t(j0 + t));
                }
            }
        }
    }

    // Row r's selection, ascending, into list[0, top_k) (stride apart), -1 past its keys.
    void write(index_t r, std::int32_t* list, index_t stride) {
        std::int32_t* ix = index_ + r * cap_;
        index_t n = count_[r];
        if (n > k_) n = cut(r);
        std::sort(ix, ix + n);
        for (index_t t = 0; t < k_; ++t) list[t * stride] = t < n ? ix[t] : -1;
    }

private:
    void push(index_t r, T s, std::int32_t j) {
        std::int32_t& n = count_[r];
        score_[r * cap_ + n] = s;
        index_[r * cap_ + n] = j;
        if (++n == cap_) cut(r);
    }
    // Keeps row r's best top_k candidates; later keys must then beat the k-th (a later key
    // tying it loses on its index), so the threshold moves just above it.
    index_t cut(index_t r) {
        T* s = score_ + r * cap_;
        std::int32_t* ix = index_ + r * cap_;
        const index_t n = count_[r];
        order_.resize(std::size_t(n));
        for (index_t t = 0; t < n; ++t) order_[std::size_t(t)] = t;
        std::nth_element(order_.begin(), order_.begin() + (k_ - 1), order_.end(), [&](index_t a, index_t b) {
            return ranks_before(s[a], ix[a], s[b], ix[b]);
        });
        kept_s_.resize(std::size_t(k_));
        kept_i_.resize(std::size_t(k_));
        for (index_t t = 0; t < k_; ++t) {
            kept_s_[std::size_t(t)] = s[order_[std::size_t(t)]];
            kept_i_[std::size_t(t)] = ix[order_[std::size_t(t)]];
        }
        std::copy(kept_s_.begin(), kept_s_.end(), s);
        std::copy(kept_i_.begin(), kept_i_.end(), ix);
        const T kth = kept_s_[std::size_t(k_ - 1)];
        thr_[r] = kth != kth ? kth : std::nextafter(kth, std::numeric_limits<T>::infinity());
        return count_[r] = std::int32_t(k_);
    }

    index_t rows_, L_, dk_, k_, cap_;
    T *qt_, *st_, *thr_, *last_, *score_;
    std::int32_t *index_, *count_;
    std::vector<index_t> order_;
    std::vector<T> kept_s_;
    std::vector<std::int32_t> kept_i_;
};

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
