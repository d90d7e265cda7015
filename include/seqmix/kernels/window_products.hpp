#pragma once
// The products of the rows-in-lanes engine (kernels/rows_in_lanes.hpp) for neighbourhood
// windows: the query rows of a unit are consecutive pixels of an image line (one vector of
// lanes per query head), and lane l sees, in each window line t, the columns
// first(x0 + l) + dx for dx < kx. A key index is a window offset j = t * kx + dx: the same
// offset for every lane while the key itself moves with the lane, so no key outside a
// query's window is ever computed. The keys and values are packed once per image as
// transposed lines, [dim][column], and an offset's keys for all lanes are one vector load at
// column dx (lanes permuted where the window is shifted at the image's border). Scores:
// S[j][lanes] = sum_d Q^T[d][lanes] K^T[t][d][dx + lanes]; values: O^T[e][lanes] +=
// sum_j P[j][lanes] V^T[t][e][dx + lanes]. Every lane's FMA is useful work.
#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>

#include "../core/abi.hpp"
#include "../core/tensor_view.hpp"
#include "../simd/vec.hpp"
#include "key_block.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

// The packed window of a unit: element (line t, dim d, column c) of the keys at
// k + line_offset(t, k_line, k_plane) + d * ld + c, c counted from the unit's first window
// column (lane 0's); window lines run `per_plane` to a plane (3-D: depth then height).
template <class T>
struct window_keys {
    static constexpr int max_lanes = 16;
    const T* k = nullptr;
    const T* v = nullptr;
    index_t ld = 0;                    // columns of a packed line
    index_t k_line = 0, v_line = 0;    // the next window line of a plane
    index_t k_plane = 0, v_plane = 0;  // the next plane
    index_t per_plane = 1;             // window lines per plane
    index_t kx = 1;                    // offsets per window line
    bool shifted = false;              // some lane's window does not start at its own column
    bool aligned = false;              // not shifted, lane 0's first column on a vector boundary
    // Shifted windows whose columns all lie in two aligned vectors from `k - from`: lane l's
    // offset dx is lane offset_lanes[dx][l] = from + lane[l] + dx of them (a two-vector
    // permutation per offset, its indices made once per unit).
    bool two_vectors = false;
    index_t from = 0;
    std::array<std::int32_t, max_lanes> lane{};  // per lane: its first column minus lane 0's
    std::array<std::array<std::int32_t, max_lanes>, max_lanes> offset_lanes{};

    index_t line_offset(index_t t, index_t line, index_t plane) const {
        return per_plane == 1 ? t * plane : t / per_plane * plane + t % per_plane * line;
    }
    const T* key_line(index_t t) const { return k + line_offset(t, k_line, k_plane); }
    const T* value_line(index_t t) const { return v + line_offset(t, v_line, v_plane); }
    // The vector of lanes' elements at offset dx of a packed row (W consecutive columns from dx,
    // permuted for shifted windows).
    simd::vec<T> lanes_at(const T* row, index_t dx) const {
        const simd::vec<T> x = simd::load(row + dx);
        return shifted ? simd::permute2(x, x, lane.data()) : x;
    }
};

template <class T>
struct window_products {
    using keys = window_keys<T>;
    using V = simd::vec<T>;
    static constexpr index_t W = index_t(simd::width<T>);
    static constexpr int block = 8;  // offsets (scores) or value dims kept in registers

    // fn(t, dx0, dx1, j) for the window lines that keys [j0, j0 + n) cross: offsets
    // [dx0, dx1) of line t, the first of them key j.
    template <class Fn>
    static void by_line(const keys& kv, index_t j0, index_t n, Fn&& fn) {
        for (index_t j = j0; j < j0 + n;) {
            const index_t t = j / kv.kx, dx0 = j % kv.kx, dx1 = std::min(kv.kx, dx0 + j0 + n - j);
            fn(t, dx0, dx1, j);
            j += dx1 - dx0;
        }
    }

    static void scores(const keys& kv, index_t j0, index_t n, index_t dk, index_t L, const T* qt, T* st) {
        by_line(kv, j0, n, [&](index_t t, index_t dx0, index_t dx1, index_t j) {
            const T* line = kv.key_line(t);
            if ((kv.aligned || kv.two_vectors) && dx0 == 0 && dx1 == kv.kx && kv.kx <= W) {  // from aligned loads
                with_offsets(kv.kx, [&](auto k) {
                    for (index_t r0 = 0; r0 < L; r0 += W)
                        if (kv.aligned)
                            score_line<decltype(k)::value, false>(kv, line, dk, qt + r0, L, st + (j - j0) * L + r0);
                        else score_line<decltype(k)::value, true>(kv, line, dk, qt + r0, L, st + (j - j0) * L + r0);
                });
                return;
            }
            for (index_t r0 = 0; r0 < L; r0 += W)
                for (index_t c0 = dx0; c0 < dx1; c0 += block)
                    with_count(dx1 - c0, [&](auto cn) {
                        score_offsets<decltype(cn)::value>(kv, line, c0, dk, qt + r0, L,
                                                           st + (j + c0 - dx0 - j0) * L + r0);
                    });
        });
    }

    static bool values_finite(const keys& kv, index_t j0, index_t n, index_t dv) {
        bool finite = true;
        by_line(kv, j0, n, [&](index_t t, index_t dx0, index_t dx1, index_t) {
            finite = finite && rows_finite(kv.value_line(t) + dx0, dv, kv.ld, dx1 - dx0 + W - 1, index_t(1));
        });
        return finite;
    }

    static void values(const keys& kv, index_t j0, index_t n, index_t dv, index_t L, const T* p, T* ot,
                       const T* alpha) {
        if ((kv.aligned || kv.two_vectors) && j0 % kv.kx == 0 && n % kv.kx == 0 && kv.kx <= W) {  // whole lines
            with_offsets(kv.kx, [&](auto k) {
                for (index_t r0 = 0; r0 < L; r0 += W)
                    for (index_t e0 = 0; e0 < dv; e0 += block)
                        with_count(dv - e0, [&](auto en) {
                            constexpr int K = decltype(k)::value, C = decltype(en)::value;
                            if (kv.aligned)
                                value_lines<K, C, false>(kv, j0, n, e0, p + r0, L, ot + e0 * L + r0, alpha + r0);
                            else value_lines<K, C, true>(kv, j0, n, e0, p + r0, L, ot + e0 * L + r0, alpha + r0);
                        });
            });
            return;
        }
        for (index_t r0 = 0; r0 < L; r0 += W)
            for (index_t e0 = 0; e0 < dv; e0 += block)
                with_count(dv - e0, [&](auto en) {
                    value_dims<decltype(en)::value>(kv, j0, n, e0, p + r0, L, ot + e0 * L + r0, alpha + r0);
                });
    }

    static const T* value_of(const keys& kv, index_t j, index_t lane, index_t& elem) {
        elem = kv.ld;
        const index_t l = lane % W;
        return kv.value_line(j / kv.kx) + j % kv.kx + (kv.shifted ? kv.lane[std::size_t(l)] : l);
    }

private:
    // fn(std::integral_constant<int, c>) for c = min(count, block): the register blocks below
    // need their size at compile time (a run-time count kept the accumulators in memory).
    template <class Fn>
    static void with_count(index_t count, Fn&& fn) {
        switch (std::min<index_t>(count, block)) {
            case 1: return fn(std::integral_constant<int, 1>{});
            case 2: return fn(std::integral_constant<int, 2>{});
            case 3: return fn(std::integral_constant<int, 3>{});
            case 4: return fn(std::integral_constant<int, 4>{});
            case 5: return fn(std::integral_constant<int, 5>{});
            case 6: return fn(std::integral_constant<int, 6>{});
            case 7: return fn(std::integral_constant<int, 7>{});
            default: return fn(std::integral_constant<int, block>{});
        }
    }
    // fn(std::integral_constant<int, k>) for k = kx <= W (the shifts unrolled at compile time).
    template <int K = 1, class Fn>
    static void with_offsets(index_t kx, Fn&& fn) {
        if constexpr (K <= int(W)) {
            if (kx == K) return fn(std::integral_constant<int, K>{});
            with_offsets<K + 1>(kx, fn);
        }
    }
    template <int First, int Count, class F>
    static void unrolled(F&& f) {
        if constexpr (Count > 0) {
            f(std::integral_constant<int, First>{});
            unrolled<First + 1, Count - 1>(f);
        }
    }
    // Offset c's vector of lanes from the two aligned vectors (a, b) of a packed row.
    template <int C, bool Shuffled>
    static V offset_of(const keys& kv, const V& a, const V& b) {
        if constexpr (Shuffled) return simd::permute2(a, b, kv.offset_lanes[std::size_t(C)].data());
        else return simd::shift_lanes<C>(a, b);
    }
    // All K offsets of one window line for one vector of lanes: per dim two aligned loads, the
    // offsets' vectors shifted (or, for a window shifted at the border, permuted) out of them;
    // unaligned loads would split cache lines.
    template <int K, bool Shuffled>
    static void score_line(const keys& kv, const T* line, index_t dk, const T* qt, index_t L, T* st) {
        const T* base = line - kv.from;
        V acc[K];
        for (int c = 0; c < K; ++c) acc[c] = V(T(0));
        for (index_t d = 0; d < dk; ++d) {
            const V q = simd::load_aligned(qt + d * L);
            const T* row = base + d * kv.ld;
            const V a = simd::load_aligned(row), b = simd::load_aligned(row + W);
            unrolled<0, K>(
                [&](auto c) { acc[c] = simd::fma(q, offset_of<decltype(c)::value, Shuffled>(kv, a, b), acc[c]); });
        }
        for (int c = 0; c < K; ++c) simd::store_aligned(st + c * L, acc[c]);
    }
    // C value dims from e0 over whole window lines [j0, j0 + n): the line's K probabilities
    // kept in registers, each value row read by two aligned loads and shifted K times.
    template <int K, int C, bool Shuffled>
    static void value_lines(const keys& kv, index_t j0, index_t n, index_t e0, const T* p, index_t L, T* ot,
                            const T* alpha) {
        V acc[C];
        const V a0 = simd::load_aligned(alpha);
        for (int e = 0; e < C; ++e) acc[e] = simd::load_aligned(ot + e * L) * a0;
        for (index_t j = j0; j < j0 + n; j += K) {
            const T* line = kv.value_line(j / K) - kv.from + e0 * kv.ld;
            V pj[K];
            for (int c = 0; c < K; ++c) pj[c] = simd::load_aligned(p + (j + c - j0) * L);
            for (int e = 0; e < C; ++e) {
                const V a = simd::load_aligned(line + e * kv.ld), b = simd::load_aligned(line + e * kv.ld + W);
                unrolled<0, K>([&](auto c) {
                    acc[e] = simd::fma(pj[c], offset_of<decltype(c)::value, Shuffled>(kv, a, b), acc[e]);
                });
            }
        }
        for (int e = 0; e < C; ++e) simd::store_aligned(ot + e * L, acc[e]);
    }
    // C offsets from c0 of one window line, for one vector of lanes.
    template <int C>
    static void score_offsets(const keys& kv, const T* line, index_t c0, index_t dk, const T* qt, index_t L, T* st) {
        V acc[C];
        for (int c = 0; c < C; ++c) acc[c] = V(T(0));
        if (kv.shifted) {
            for (index_t d = 0; d < dk; ++d) {
                const V q = simd::load_aligned(qt + d * L);
                for (int c = 0; c < C; ++c) acc[c] = simd::fma(q, kv.lanes_at(line + d * kv.ld, c0 + c), acc[c]);
            }
        } else {
            for (index_t d = 0; d < dk; ++d) {
                const V q = simd::load_aligned(qt + d * L);
                const T* row = line + d * kv.ld + c0;
                for (int c = 0; c < C; ++c) acc[c] = simd::fma(q, simd::load(row + c), acc[c]);
            }
        }
        for (int c = 0; c < C; ++c) simd::store_aligned(st + c * L, acc[c]);
    }
    // C value dims from e0 for one vector of lanes, over keys [j0, j0 + n): O^T = O^T alpha + V^T P^T.
    template <int C>
    static void value_dims(const keys& kv, index_t j0, index_t n, index_t e0, const T* p, index_t L, T* ot,
                           const T* alpha) {
        V acc[C];
        const V a = simd::load_aligned(alpha);
        for (int e = 0; e < C; ++e) acc[e] = simd::load_aligned(ot + e * L) * a;
        by_line(kv, j0, n, [&](index_t t, index_t dx0, index_t dx1, index_t j) {
            const T* line = kv.value_line(t) + e0 * kv.ld;
            for (index_t dx = dx0; dx < dx1; ++dx) {
                const V pj = simd::load_aligned(p + (j + dx - dx0 - j0) * L);
                if (kv.shifted)
                    for (int e = 0; e < C; ++e) acc[e] = simd::fma(pj, kv.lanes_at(line + e * kv.ld, dx), acc[e]);
                else
                    for (int e = 0; e < C; ++e) acc[e] = simd::fma(pj, simd::load(line + e * kv.ld + dx), acc[e]);
            }
        });
        for (int e = 0; e < C; ++e) simd::store_aligned(ot + e * L, acc[e]);
    }
};

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
