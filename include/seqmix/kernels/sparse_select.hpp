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
#include <cstring>
#include <type_traits>
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

// A candidate (score, key) as one unsigned integer that orders as ranks_before does: the
// score's bits made monotone (NaN above +inf) above the complement of the key index, so the
// partial selection compares plain integers.
template <class T>
struct candidate;
template <>
struct candidate<float> {
    using type = std::uint64_t;
    static type make(float s, std::int32_t j) {
        std::uint32_t u;
        std::memcpy(&u, &s, sizeof u);
        u = s != s ? 0xFFFFFFFFu : (u & 0x80000000u) ? ~u : u | 0x80000000u;
        return type(u) << 32 | (0xFFFFFFFFu - std::uint32_t(j));
    }
    static std::int32_t key(type c) { return std::int32_t(0xFFFFFFFFu - std::uint32_t(c)); }
};
template <>
struct candidate<double> {
    using type = unsigned __int128;
    static type make(double s, std::int32_t j) {
        std::uint64_t u;
        std::memcpy(&u, &s, sizeof u);
        u = s != s ? ~std::uint64_t(0) : (u >> 63) ? ~u : u | (std::uint64_t(1) << 63);
        return type(u) << 32 | (0xFFFFFFFFu - std::uint32_t(j));
    }
    static std::int32_t key(type c) { return std::int32_t(0xFFFFFFFFu - std::uint32_t(c)); }
};

// The top_k selection of one unit: `rows` query rows (rows in lanes) over keys [0, end),
// row r seeing keys [0, last[r]] (a causal diagonal) or none (last[r] < 0).
template <class T>
class topk_select {
    using cand = typename candidate<T>::type;

public:
    static constexpr index_t key_tile = 64;
    static index_t lanes_for(index_t rows) {
        constexpr index_t W = index_t(simd::width<T>);
        return (rows + W - 1) / W * W;
    }
    static index_t capacity(index_t top_k) { return 4 * top_k + 64; }
    // Scratch in elements of T (query panel, score tile, thresholds, diagonals) and candidates.
    static std::size_t scratch_size(index_t rows, index_t dk) {
        return std::size_t(lanes_for(rows)) * std::size_t(dk + key_tile + 3) + 64;
    }
    static std::size_t candidate_size(index_t rows, index_t top_k) {
        return std::size_t(lanes_for(rows)) * std::size_t(capacity(top_k));
    }

    topk_select(index_t rows, index_t dk, index_t top_k, T* scratch, cand* candidates, std::int32_t* counts)
        : L_(lanes_for(rows)), dk_(dk), k_(top_k), cap_(capacity(top_k)), buf_(candidates), count_(counts) {
        T* p = scratch;
        auto take = [&](std::size_t n) {
            T* r = p;
            p += (n + 15) / 16 * 16;
            return r;
        };
        qt_ = take(std::size_t(dk_ * L_));
        st_ = take(std::size_t(key_tile * L_));
        thr_ = take(std::size_t(L_));
        thr_key_ = take(std::size_t(L_));
        last_ = take(std::size_t(L_));
    }

    // Row r: its query (scaled as the attention engines scale it) and its last visible key.
    void set_row(index_t r, const T* q, index_t q_elem, T scale, index_t last) {
        for (index_t d = 0; d < dk_; ++d) qt_[d * L_ + r] = q[d * q_elem] * scale;
        last_[r] = T(last);
        thr_[r] = -std::numeric_limits<T>::infinity();
        thr_key_[r] = std::numeric_limits<T>::infinity();  // -inf scores pass until the first cut
        count_[r] = 0;
    }
    void clear_row(index_t r) { set_row(r, qt_, 0, T(0), -1); }  // zero query, no key

    // Scores of keys [0, end) against every row, tile by tile, through the rows' thresholds.
    // Tiles go in bit-reversed order: scores that trend along the keys (recency) would let
    // nearly every key of an ascending walk pass; in this order only about log2(tiles) tiles
    // can hold all-time highs.
    void run(const kv_rows<T>& kv, index_t end, index_t unmasked_end) {
        using V = simd::vec<T>;
        constexpr index_t W = index_t(simd::width<T>);
        const index_t tiles = (end + key_tile - 1) / key_tile;
        int bits = 0;
        while ((index_t(1) << bits) < tiles) ++bits;
        for (index_t t = 0; t < (index_t(1) << bits); ++t) {
            index_t tile = 0;
            for (int b = 0; b < bits; ++b) tile |= ((t >> b) & 1) << (bits - 1 - b);
            if (tile >= tiles) continue;
            const index_t j0 = tile * key_tile, n = std::min(key_tile, end - j0);
            kv.runs(j0, n, [&](index_t j, index_t c, const T* k, const T*) {
                panel_gemm<tile_update::overwrite>(c, dk_, L_, k, kv.k_row, kv.k_elem, qt_, L_, st_ + (j - j0) * L_, L_);
            });
            const bool masked = j0 + n > unmasked_end;
            for (index_t r0 = 0; r0 < L_; r0 += W) {
                const V thr = simd::load_aligned(thr_ + r0), thr_key = simd::load_aligned(thr_key_ + r0);
                const V last = simd::load_aligned(last_ + r0);
                for (index_t x = 0; x < n; ++x) {
                    const V s = simd::load_aligned(st_ + x * L_ + r0), j(T(j0 + x));
                    auto pass = (s > thr) || ((s == thr) && (j < thr_key)) || simd::isnan(s);
                    if (masked) pass = pass && (j <= last);
                    if (!simd::any(pass)) continue;
                    for (unsigned m = simd::mask_bits<T>(pass); m; m &= m - 1) {
                        const index_t r = r0 + __builtin_ctz(m);
                        push(r, st_[x * L_ + r], std::int32_t(j0 + x));
                    }
                }
            }
        }
    }

    // Row r's selection, ascending, into list[0, top_k) (stride apart), -1 past its keys.
    void write(index_t r, std::int32_t* list, index_t stride) {
        cand* c = buf_ + r * cap_;
        index_t n = count_[r];
        if (n > k_) n = cut(r);
        std::sort(c, c + n, [](cand a, cand b) { return candidate<T>::key(a) < candidate<T>::key(b); });
        for (index_t t = 0; t < k_; ++t) list[t * stride] = t < n ? candidate<T>::key(c[t]) : -1;
    }

private:
    void push(index_t r, T s, std::int32_t j) {
        std::int32_t& n = count_[r];
        buf_[r * cap_ + n] = candidate<T>::make(s, j);
        if (++n == cap_) cut(r);
    }
    // Keeps row r's best top_k candidates; later keys must then rank before the k-th: a higher
    // score, or its score and a lower index (tiles come in any order).
    index_t cut(index_t r) {
        cand* c = buf_ + r * cap_;
        std::nth_element(c, c + (k_ - 1), c + count_[r], [](cand a, cand b) { return a > b; });
        const cand kth = c[k_ - 1];
        // The k-th's score back from its bits: candidates below it can never enter.
        thr_[r] = score_of(kth);  // NaN: only NaN passes (isnan)
        thr_key_[r] = T(candidate<T>::key(kth));
        return count_[r] = std::int32_t(k_);
    }
    static T score_of(cand c) {
        using U = std::conditional_t<std::is_same_v<T, float>, std::uint32_t, std::uint64_t>;
        U u = U(c >> 32);
        constexpr U top = U(1) << (sizeof(U) * 8 - 1);
        if (u == U(~U(0))) return std::numeric_limits<T>::quiet_NaN();
        u = (u & top) ? u & ~top : ~u;
        T s;
        std::memcpy(&s, &u, sizeof s);
        return s;
    }

    index_t L_, dk_, k_, cap_;
    T *qt_, *st_, *thr_, *thr_key_, *last_;  // thr_, thr_key_: each row's k-th (score, key)
    cand* buf_;
    std::int32_t* count_;
};

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
