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
#include <cstdint>
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
        u ^= std::uint32_t(std::int32_t(u) >> 31) | 0x80000000u;  // negatives flipped, positives above them
        u = s != s ? 0xFFFFFFFFu : u;                               // branch-free: signs are random
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
        u ^= std::uint64_t(std::int64_t(u) >> 63) | (std::uint64_t(1) << 63);
        u = s != s ? ~std::uint64_t(0) : u;
        return type(u) << 32 | (0xFFFFFFFFu - std::uint32_t(j));
    }
    static std::int32_t key(type c) { return std::int32_t(0xFFFFFFFFu - std::uint32_t(c)); }
};

// A KV head's keys transposed for the selection: chunk c holds keys [c * chunk, (c+1) * chunk)
// as a [dk][chunk] panel (keys along the lanes, zeros past the last key), so a unit's scores
// come out row-major, S = Q K^T, one row's keys contiguous.
template <class T>
struct key_panels {
    static constexpr index_t chunk = 256;
    static index_t chunks(index_t keys) { return (keys + chunk - 1) / chunk; }
    static std::size_t size(index_t keys, index_t dk) { return std::size_t(chunks(keys) * dk * chunk); }
    static void pack(const kv_rows<T>& kv, index_t keys, index_t dk, T* to) {
        std::fill(to, to + size(keys, dk), T(0));
        kv.runs(0, keys, [&](index_t j0, index_t n, const T* k, const T*) {
            for (index_t j = j0; j < j0 + n; ++j) {
                const T* key = k + (j - j0) * kv.k_row;
                T* col = to + (j / chunk) * dk * chunk + j % chunk;
                for (index_t d = 0; d < dk; ++d) col[d * chunk] = key[d * kv.k_elem];
            }
        });
    }
};

// The top_k selection of one unit: `rows` query rows over keys [0, end) of one KV head's
// panels, row r seeing keys [0, last[r]] (a causal diagonal; < 0: none). Chunks of keys go in
// bit-reversed order (scores that trend along the sequence, as recency does, would otherwise
// let nearly every key of an ascending walk through). Per row and vector of keys, one compare
// with the row's k-th (score, key) so far lets through only keys that can still enter; the
// candidates are cut back to top_k by a partial selection (nth_element on integers that order
// as the ranking does) when they fill their buffer, and after each chunk once they pass 2 top_k.
template <class T>
class topk_select {
    using cand = typename candidate<T>::type;
    static constexpr index_t chunk = key_panels<T>::chunk;

public:
    static index_t capacity(index_t top_k) { return 4 * top_k + chunk; }
    static std::size_t scratch_size(index_t rows, index_t dk) {  // packed queries and a chunk of scores
        return std::size_t(rows * (dk + chunk) + 32);
    }
    static std::size_t candidate_size(index_t rows, index_t top_k) { return std::size_t(rows * capacity(top_k)); }

    topk_select(index_t rows, index_t dk, index_t top_k, T* scratch, cand* candidates)
        : rows_(rows), dk_(dk), k_(top_k), cap_(capacity(top_k)), qs_(scratch), s_(scratch + rows * dk),
          buf_(candidates) {
        s_ += (16 - reinterpret_cast<std::uintptr_t>(s_) / sizeof(T) % 16) % 16;  // aligned rows of scores
        count_.assign(std::size_t(rows), 0);
        thr_.assign(std::size_t(rows), -std::numeric_limits<T>::infinity());
        thr_key_.assign(std::size_t(rows), std::numeric_limits<std::int32_t>::max());
        last_.assign(std::size_t(rows), -1);
    }

    // Row r: its query (scaled as the attention engines scale it) and its last visible key.
    void set_row(index_t r, const T* q, index_t q_elem, T scale, index_t last) {
        for (index_t d = 0; d < dk_; ++d) qs_[r * dk_ + d] = q[d * q_elem] * scale;
        last_[std::size_t(r)] = last;
    }
    void clear_row(index_t r) {
        std::fill_n(qs_ + r * dk_, dk_, T(0));
        last_[std::size_t(r)] = -1;
    }

    void run(const T* panels, index_t end) {
        using V = simd::vec<T>;
        constexpr index_t W = index_t(simd::width<T>);
        const index_t chunks = (end + chunk - 1) / chunk;
        int bits = 0;
        while ((index_t(1) << bits) < chunks) ++bits;
        alignas(64) T iota[simd::width<T>];
        for (index_t j = 0; j < W; ++j) iota[j] = T(j);
        const V lane = simd::load_aligned(iota);
        for (index_t t = 0, first = 1; t < (index_t(1) << bits); ++t) {
            index_t c = 0;
            for (int b = 0; b < bits; ++b) c |= ((t >> b) & 1) << (bits - 1 - b);
            if (c >= chunks) continue;
            const index_t j0 = c * chunk, n = std::min(chunk, end - j0), lanes = (n + W - 1) / W * W;
            panel_gemm<tile_update::overwrite>(rows_, dk_, lanes, qs_, dk_, index_t(1), panels + c * dk_ * chunk, chunk,
                                               s_, chunk);
            for (index_t r = 0; r < rows_; ++r) {
                const index_t seen = std::min(last_[std::size_t(r)] + 1, j0 + n) - j0;  // keys of the chunk row r sees
                if (seen <= 0) continue;
                const T* sr = s_ + r * chunk;
                // A row's first chunk: its k-th largest score is where the row's threshold starts
                // (at least top_k keys of the chunk beat anything below it), so the chunk's keys
                // below it are never stored.
                if (count_[std::size_t(r)] == 0 && thr_key_[std::size_t(r)] == std::numeric_limits<std::int32_t>::max())
                    thr_[std::size_t(r)] = kth_score(sr, seen);
                const V thr = V(thr_[std::size_t(r)]), thr_key = V(T(thr_key_[std::size_t(r)]));
                for (index_t x = 0; x < seen; x += W) {
                    const V s = simd::load_aligned(sr + x), j = lane + V(T(j0 + x));
                    auto pass = (s > thr) || ((s == thr) && (j < thr_key)) || simd::isnan(s);
                    if (x + W > seen) pass = pass && (lane < V(T(seen - x)));
                    if (!simd::any(pass)) continue;
                    cand* out = buf_ + r * cap_;
                    std::int32_t& cnt = count_[std::size_t(r)];
                    if (cnt + W > cap_) cut(r);
                    for (unsigned m = simd::mask_bits<T>(pass); m; m &= m - 1) {
                        const index_t l = __builtin_ctz(m);
                        out[cnt++] = candidate<T>::make(sr[x + l], std::int32_t(j0 + x + l));
                    }
                }
                if (count_[std::size_t(r)] > (first ? k_ : 2 * k_)) cut(r);
            }
            first = 0;
        }
    }

    // Row r's selection, ascending, into list[0, top_k) (stride apart), -1 past its keys.
    void write(index_t r, std::int32_t* list, index_t stride) {
        cand* c = buf_ + r * cap_;
        index_t n = count_[std::size_t(r)];
        if (n > k_) n = cut(r);
        std::sort(c, c + n, [](cand a, cand b) { return candidate<T>::key(a) < candidate<T>::key(b); });
        for (index_t t = 0; t < k_; ++t) list[t * stride] = t < n ? candidate<T>::key(c[t]) : -1;
    }

private:
    // The k-th largest of n scores (NaN above everything; -inf when n <= top_k), searched bit by
    // bit in the order-preserving integer image of the scores, each trial one vector compare
    // and count per 16 scores.
    T kth_score(const T* sr, index_t n) const {
        using V = simd::vec<T>;
        constexpr index_t W = index_t(simd::width<T>);
        if (n <= k_) return -std::numeric_limits<T>::infinity();
        auto at_least = [&](T f) {  // scores >= f, NaN counted as above every f
            index_t c = 0;
            for (index_t x = 0; x < n; x += W) {
                const V s = simd::load_aligned(sr + x);
                auto m = (s >= V(f)) || simd::isnan(s);
                unsigned bits = simd::mask_bits<T>(m);
                if (x + W > n) bits &= (1u << (n - x)) - 1u;
                c += __builtin_popcount(bits);
            }
            return c;
        };
        using U = std::conditional_t<std::is_same_v<T, float>, std::uint32_t, std::uint64_t>;
        U t = 0;
        for (int b = int(sizeof(U) * 8) - 1; b >= 0; --b) {
            const U trial = U(t | (U(1) << b));
            const index_t c = at_least(from_ordered(trial));
            if (c < k_) continue;
            t = trial;
            if (c == k_) break;
        }
        return from_ordered(t);
    }
    static T from_ordered(std::conditional_t<std::is_same_v<T, float>, std::uint32_t, std::uint64_t> u) {
        using U = decltype(u);
        constexpr U top = U(1) << (sizeof(U) * 8 - 1);
        if (u == U(~U(0))) return std::numeric_limits<T>::quiet_NaN();
        u = (u & top) ? u & ~top : ~u;
        T s;
        std::memcpy(&s, &u, sizeof s);
        return s;
    }

    // Keeps row r's best top_k candidates; later keys must then rank before the k-th: a
    // higher score, or its score and a lower key.
    index_t cut(index_t r) {
        cand* c = buf_ + r * cap_;
        std::int32_t& n = count_[std::size_t(r)];
        if (n <= k_) return n;
        const cand kth = kth_largest(c, n, k_);
        index_t kept = 0;
        for (index_t i = 0; i < n; ++i) {  // distinct candidates: exactly top_k are >= the k-th
            const cand x = c[i];             // branch-free: about half are kept
            c[kept] = x;
            kept += x >= kth;
        }
        thr_[std::size_t(r)] = score_of(kth);  // NaN: only NaN passes (isnan)
        thr_key_[std::size_t(r)] = candidate<T>::key(kth);
        return n = std::int32_t(kept);
    }
    // The k-th largest of n distinct values, bit by bit from the top: each step counts the
    // values at or above a trial value (a compare and add per value, vectorized, no branch
    // to mispredict: nth_element spent ~5000 cycles on 200 candidates in mispredictions).
    // It stops once exactly k values lie at or above the trial: the k-th is their minimum.
    static cand kth_largest(const cand* c, index_t n, index_t k) {
        cand t = 0;
        for (int b = int(sizeof(cand) * 8) - 1; b >= 0; --b) {
            const cand trial = t | (cand(1) << b);
            index_t at_least = 0;
            for (index_t i = 0; i < n; ++i) at_least += c[i] >= trial;
            if (at_least < k) continue;
            t = trial;
            if (at_least == k) {
                cand m = ~cand(0);
                for (index_t i = 0; i < n; ++i)
                    if (c[i] >= trial) m = std::min(m, c[i]);
                return m;
            }
        }
        return t;
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

    index_t rows_, dk_, k_, cap_;
    T *qs_, *s_;  // queries [rows][dk]; scores of a chunk [rows][chunk]
    cand* buf_;   // candidates [rows][cap]
    std::vector<std::int32_t> count_, thr_key_;
    std::vector<T> thr_;
    std::vector<index_t> last_;
};

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
