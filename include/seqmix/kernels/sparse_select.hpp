#pragma once
// The top-k selection of topk_attention, made before the attention run: every visible score
// of a unit of query rows is computed row-major (S = Q K^T over keys packed as [dim][key]
// panels, with the lane-panel GEMM), then each row's k-th largest score is found by a bitwise
// search over the scores' order-preserving integer image, each trial one vector count, and
// one pass writes the keys above it and the lowest-indexed ties, ascending (no sort, no
// heap). Ties rank the lower key first and NaN above every number (ranks_before), as the
// MoBA block selection of block_sparse_attention also ranks.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

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
    const bool na = std::isnan(sa), nb = std::isnan(sb);
    if (na != nb) return na;
    if (!na && sa != sb) return sa > sb;
    return a < b;
}

// The order-preserving integer image of scores (NaN above +inf, -0 below +0), back to a
// score: the bitwise search walks these integers.
template <class T>
struct ordered {
    using type = std::conditional_t<std::is_same_v<T, float>, std::uint32_t, std::uint64_t>;
    static constexpr type top = type(1) << (sizeof(type) * 8 - 1);
    static T value(type u) {
        if (u == type(~type(0))) return std::numeric_limits<T>::quiet_NaN();
        u = (u & top) ? u & ~top : ~u;
        T s;
        std::memcpy(&s, &u, sizeof s);
        return s;
    }
};

// A KV head's keys transposed for the selection: chunk c holds keys [c * chunk, (c+1) * chunk)
// as a [dk][chunk] panel (keys along the lanes, zeros past the last key), so a unit's scores
// come out row-major, S = Q K^T, one row's keys contiguous.
template <class T>
struct key_panels {
    static constexpr index_t chunk = 256;
    static index_t chunks(index_t keys) { return (keys + chunk - 1) / chunk; }
    static std::size_t size(index_t keys, index_t dk) { return std::size_t(chunks(keys) * dk * chunk); }
    // Each run of keys transposed into its panels (pack.hpp's tiled transpose), zeros past
    // the last key.
    template <class KV>
    static void pack(const KV& kv, index_t keys, index_t dk, T* to) {
        std::fill(to, to + size(keys, dk), T(0));
        kv.runs(0, keys, [&](index_t j0, index_t n, const auto* k, const auto*) {
            for (index_t j = j0; j < j0 + n;) {  // the part of the run in one panel
                const index_t c = std::min(j0 + n, (j / chunk + 1) * chunk) - j;
                detail::copy_tiles(k + (j - j0) * kv.k_row, kv.k_elem, kv.k_row,
                                   to + j / chunk * dk * chunk + j % chunk, chunk, index_t(1), dk, c);
                j += c;
            }
        });
    }
};

// The top_k selection of one unit: `rows` query rows over keys [0, end) of one KV head's
// panels, row r seeing keys [0, last[r]] (a causal diagonal; < 0: none). Every score of the
// unit is computed into a row-major buffer (S = Q K^T, a row's keys contiguous); then per row
// the k-th largest score is found by a bitwise search over the order-preserving integer image
// of the scores, each trial one vector compare and count per W scores (no sort, no heap, no
// candidate buffer), and one more pass writes the keys above it and the lowest-indexed ties,
// ascending as they come.
template <class T>
class topk_select {
    using U = typename ordered<T>::type;
    static constexpr index_t chunk = key_panels<T>::chunk;

public:
    // Rows per unit: their scores of every key stay within about 1 MB.
    static index_t rows_for(index_t keys) {
        return std::clamp<index_t>((index_t(1) << 18) / std::max<index_t>(keys, 1), 4, 32);
    }
    static index_t stride_for(index_t keys) { return key_panels<T>::chunks(keys) * chunk; }
    static std::size_t scratch_size(index_t rows, index_t dk, index_t keys) {  // packed queries and the scores
        return std::size_t(rows * (dk + stride_for(keys)) + 32);
    }

    // scratch: scratch_size elements; last: `rows` indices (the rows' last visible keys).
    topk_select(index_t rows, index_t dk, index_t top_k, index_t keys, T* scratch, index_t* last)
        : rows_(rows), dk_(dk), k_(top_k), ld_(stride_for(keys)), qs_(scratch), s_(scratch + rows * dk), last_(last) {
        s_ += (16 - reinterpret_cast<std::uintptr_t>(s_) / sizeof(T) % 16) % 16;  // aligned rows of scores
        std::fill_n(last_, rows, index_t(-1));
    }

    // Row r: its query (unscaled: see score) and its last visible key.
    template <class Q>
    void set_row(index_t r, const Q* q, index_t q_elem, index_t last) {
        for (index_t d = 0; d < dk_; ++d) qs_[r * dk_ + d] = T(q[d * q_elem]);
        last_[r] = last;
    }
    void clear_row(index_t r) {
        std::fill_n(qs_ + r * dk_, dk_, T(0));
        last_[r] = -1;
    }

    // The scores of keys [0, end) for every row: (q . k) * factor, factor being the attention's
    // scale times the KV head's k_scale, as the reference has them. The product is scaled, not
    // the query: products that tie exactly (integer data) then tie here too, whatever the scale,
    // and the lower key wins as in the reference. (Scaled queries broke such ties by rounding:
    // with scale 1/sqrt(2), -1 * 2 + -1 * 0 and -1 * 3 + -1 * -1 came out apart.)
    void score(const T* panels, index_t end, T factor) {
        constexpr index_t W = index_t(simd::width<T>);
        for (index_t j0 = 0; j0 < end; j0 += chunk) {
            const index_t lanes = (std::min(chunk, end - j0) + W - 1) / W * W;
            panel_gemm<tile_update::overwrite>(rows_, dk_, lanes, qs_, dk_, index_t(1), panels + j0 * dk_, chunk,
                                               s_ + j0, ld_);
        }
        if (factor == T(1)) return;
        for (index_t r = 0; r < rows_; ++r) simd::scale(factor, s_ + r * ld_, std::size_t(end));
    }

    // Row r's selection, ascending, into list[0, top_k) (stride apart), -1 past its keys.
    void write(index_t r, std::int32_t* list, index_t stride) const {
        using V = simd::vec<T>;
        constexpr index_t W = index_t(simd::width<T>);
        const index_t n = last_[r] + 1;
        const T* sr = s_ + r * ld_;
        index_t out = 0;
        if (n > 0) {
            const T kth = kth_score(sr, n);
            const bool nan_kth = std::isnan(kth);
            index_t ties_left = k_ - (nan_kth ? 0 : count_above(sr, n, kth));  // ties taken, lowest keys first
            for (index_t x = 0; x < n; x += W) {
                const V s = simd::load_aligned(sr + x);
                unsigned above = nan_kth ? 0u : simd::mask_bits<T>((s > V(kth)) || simd::isnan(s));
                unsigned tie = simd::mask_bits<T>(nan_kth ? simd::isnan(s) : (s == V(kth)));
                if (x + W > n) {
                    const unsigned valid = (1u << (n - x)) - 1u;
                    above &= valid;
                    tie &= valid;
                }
                for (; tie && ties_left > 0; --ties_left) {  // the lowest ties of this vector
                    above |= tie & (0u - tie);
                    tie &= tie - 1;
                }
                for (; above; above &= above - 1) list[stride * out++] = std::int32_t(x + __builtin_ctz(above));
            }
        }
        for (; out < k_; ++out) list[stride * out] = -1;
    }

private:
    // Scores of sr[0, n) (aligned) for which pred(vector) holds, lane by lane.
    template <class Pred>
    static index_t count(const T* sr, index_t n, Pred&& pred) {
        constexpr index_t W = index_t(simd::width<T>);
        index_t c = 0;
        for (index_t x = 0; x < n; x += W) {
            unsigned bits = simd::mask_bits<T>(pred(simd::load_aligned(sr + x)));
            if (x + W > n) bits &= (1u << (n - x)) - 1u;
            c += __builtin_popcount(bits);
        }
        return c;
    }
    static index_t count_above(const T* sr, index_t n, T t) {  // scores > t, NaN included
        return count(sr, n, [&](const simd::vec<T>& s) { return (s > simd::vec<T>(t)) || simd::isnan(s); });
    }
    // The k-th largest of n scores (NaN above everything; -inf when n <= top_k), searched bit by
    // bit in the ordered image of the scores, each trial one vector compare and count per W scores.
    T kth_score(const T* sr, index_t n) const {
        using V = simd::vec<T>;
        constexpr index_t W = index_t(simd::width<T>);
        if (n <= k_) return -std::numeric_limits<T>::infinity();
        // NaN ranks above every trial: counted once. Each trial then counts s >= f with two
        // independent vector accumulators (a compare and a masked add per vector); the tail
        // reads NaN, which no compare passes.
        const index_t full = n / W * W;
        const index_t nans = count(sr, n, [](const V& s) { return simd::isnan(s); });
        const V tail = full < n
                           ? simd::load_partial(sr + full, std::size_t(n - full), std::numeric_limits<T>::quiet_NaN())
                           : V(std::numeric_limits<T>::quiet_NaN());
        auto at_least = [&](T f) {
            const V fv(f), one(T(1)), zero(T(0));
            V c0 = simd::select(tail >= fv, one, zero), c1 = zero;
            index_t x = 0;
            for (; x + 2 * W <= full; x += 2 * W) {
                c0 = c0 + simd::select(simd::load_aligned(sr + x) >= fv, one, zero);
                c1 = c1 + simd::select(simd::load_aligned(sr + x + W) >= fv, one, zero);
            }
            if (x < full) c0 = c0 + simd::select(simd::load_aligned(sr + x) >= fv, one, zero);
            return nans + index_t(simd::hsum(c0 + c1));
        };
        U t = 0;
        for (int b = int(sizeof(U) * 8) - 1; b >= 0; --b) {
            const U trial = U(t | (U(1) << b));
            const index_t c = at_least(ordered<T>::value(trial));
            if (c < k_) continue;
            t = trial;
            if (c == k_) break;
        }
        return ordered<T>::value(t);
    }

    index_t rows_, dk_, k_, ld_;
    T *qs_, *s_;     // queries [rows][dk]; scores [rows][ld]
    index_t* last_;  // per row: its last visible key
};

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
