#pragma once
// rows_in_lanes, the prefill engine of the attention main loop (many query rows per unit):
// query rows run along the vector lanes. Q^T is packed once (scale folded in); S^T = K Q^T
// and O^T += V^T P^T are lane-panel GEMMs reading K and V in place, and the per-row
// reductions of the online softmax are vertical.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "../core/abi.hpp"
#include "../core/scratch.hpp"
#include "../core/tensor_view.hpp"
#include "../simd/blas1.hpp"
#include "../simd/exp.hpp"
#include "attention_policies.hpp"
#include "attention_dims.hpp"
#include "bf16_dot.hpp"
#include "gemm_tile.hpp"
#include "key_block.hpp"
#include "kv_rows.hpp"
#include "online_softmax.hpp"
#include "pack.hpp"
#include "softmax_state.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

// The products of the rows-in-lanes engine, over keys stored as kv_rows: lane-panel GEMMs
// reading K and V in place (S^T = K Q^T, O^T += V^T P^T). Another key storage brings its own
// products (kernels/window_products.hpp: neighbourhood windows, each lane its own keys).
template <class T>
struct lane_panel_products {
    using keys = kv_rows<T>;

    // st[(j - j0) * L + lane] = the score of key j for each lane (row).
    static void scores(const keys& kv, index_t j0, index_t n, index_t dk, index_t L, const T* qt, T* st) {
        kv.runs(j0, n, [&](index_t j, index_t c, const T* k, const T*) {
            score_panel(c, dk, L, k, kv.k_row, kv.k_elem, qt, st + (j - j0) * L);
        });
    }
    // Whether the values of keys [j0, j0 + n) are all finite (else masked keys take the exact
    // path); any key storage, in place.
    template <class KV>
    static bool values_finite(const KV& kv, index_t j0, index_t n, index_t dv) {
        bool finite = true;
        kv.runs(j0, n, [&](index_t, index_t c, const auto*, const auto* v) {
            finite = finite && rows_finite(v, c, kv.v_row, dv, kv.v_elem);
        });
        return finite;
    }
    // O^T = O^T diag(alpha) + V^T P^T over keys [j0, j0 + n).
    static void values(const keys& kv, index_t j0, index_t n, index_t dv, index_t L, const T* p, T* ot,
                       const T* alpha) {
        kv.runs(j0, n, [&](index_t j, index_t c, const T*, const T* v) {
            // The first run rescales by alpha; later runs continue the same sums.
            value_panel(j == j0, dv, c, L, v, kv.v_elem, kv.v_row, p + (j - j0) * L, ot, alpha);
        });
    }
    // The value row of key j as lane `lane` sees it, and its element stride.
    static const T* value_of(const keys& kv, index_t j, index_t, index_t& elem) {
        elem = kv.v_elem;
        return kv.value(j);
    }

private:
    // The two GEMMs out of line: inlined into the unit loop, GCC 12 compiled their
    // micro-kernels with more loads (callgrind: 4-7% more instructions at N = 512).
    [[gnu::noinline]] static void score_panel(index_t keys, index_t dk, index_t L, const T* k, index_t k_row,
                                              index_t k_elem, const T* qt, T* st) {
        panel_gemm<tile_update::overwrite>(keys, dk, L, k, k_row, k_elem, qt, L, st, L);
    }
    [[gnu::noinline]] static void value_panel(bool rescale, index_t dv, index_t keys, index_t L, const T* v,
                                              index_t v_elem, index_t v_row, const T* p, T* ot, const T* alpha) {
        if (rescale) panel_gemm<tile_update::scale_accumulate>(dv, keys, L, v, v_elem, v_row, p, L, ot, L, alpha);
        else panel_gemm<tile_update::accumulate>(dv, keys, L, v, v_elem, v_row, p, L, ot, L);
    }
};

// KV: the key storage the engine is given. When it is not the products' own (keys and values
// stored as bf16, ...), each tile's keys and values are converted into float rows in the
// scratch first, once for all the rows of the unit, and the products read those.
// Bf16Dot (queries, keys and values stored as bf16, on AVX512-BF16 targets): the products run
// as bf16 dot products (kernels/bf16_dot.hpp) instead. S = Q K^T takes the bf16 queries
// unscaled and bf16 keys in place (exact products; the row's scale multiplies the scores);
// O^T += V^T P^T takes each tile's values as bf16 pairs and the probabilities split into two
// bf16 terms, so no input is rounded beyond its storage.
template <class T, class Products = lane_panel_products<T>, class KV = typename Products::keys, bool Bf16Dot = false>
class rows_in_lanes {
    static constexpr bool converts = !std::is_same_v<KV, typename Products::keys>;
#if SEQMIX_HAS_BF16_DOT
    static constexpr bool bf16_dot = Bf16Dot;
#else
    static constexpr bool bf16_dot = false;
#endif
    static index_t pairs(index_t n) { return (n + 1) / 2; }

public:
    using keys_type = KV;
    static constexpr index_t key_tile = 64;  // 128 and 256 were slower on Zen 4 (D 64/128)
    static constexpr index_t score_tiles = 1;

    static index_t lanes_for(index_t rows) {
        constexpr index_t W = index_t(simd::width<T>);
        return (rows + W - 1) / W * W;
    }
    static std::size_t scratch_size(const attention_dims& d) {
        const index_t L = lanes_for(d.rows);
        const index_t dv16 = (d.dv + 15) / 16 * 16;  // bf16 pairs take floats' room: a pair is one float
        return scratch_carver<T>::size_of(
            d.dk * L, key_tile * L, d.dv * L, L, L, L, L, L, L, L, d.dk * L, converts ? key_tile * d.dk : 0,
            converts ? key_tile * d.dv : 0, bf16_dot ? pairs(d.dk) * L : 0, bf16_dot ? key_tile / 2 * dv16 : 0,
            bf16_dot ? key_tile / 2 * L : 0, bf16_dot ? key_tile / 2 * L : 0, bf16_dot ? L : 0);
    }
    // `o` (dv x lanes, transposed) may live outside the scratch (a split-KV partial).
    rows_in_lanes(const attention_dims& d, T* scratch, index_t* bounds)
        : dk_(d.dk), dv_(d.dv), L_(lanes_for(d.rows)), round_p_(d.round_probabilities) {
        scratch_carver<T> c(scratch);
        qt_ = c.take(std::size_t(dk_ * L_));
        st_ = c.take(std::size_t(key_tile * L_));
        ot_ = c.take(std::size_t(dv_ * L_));
        m_ = c.take(L_);
        l_ = c.take(L_);
        alpha_ = c.take(L_);
        slope_ = c.take(L_);
        rel_ = c.take(L_);
        lo_rel_ = c.take(L_);
        hi_rel_ = c.take(L_);
        q_rows_ = c.take(std::size_t(dk_ * L_));  // after the hot tiles: keeps them where they were
        if constexpr (converts) {
            k_tile_ = c.take(std::size_t(key_tile * dk_));
            v_tile_ = c.take(std::size_t(key_tile * dv_));
        }
        if constexpr (bf16_dot) {
            dv16_ = (dv_ + 15) / 16 * 16;
            q_pairs_ = reinterpret_cast<std::uint16_t*>(c.take(std::size_t(pairs(dk_) * L_)));
            v_pairs_ = reinterpret_cast<std::uint16_t*>(c.take(std::size_t(key_tile / 2 * dv16_)));
            p_hi_ = reinterpret_cast<std::uint16_t*>(c.take(std::size_t(key_tile / 2 * L_)));
            p_lo_ = reinterpret_cast<std::uint16_t*>(c.take(std::size_t(key_tile / 2 * L_)));
            q_scale_ = c.take(std::size_t(L_));
        }
        lo_ = bounds;
        hi_ = bounds + L_;
        diag_ = bounds + 2 * L_;
    }
    static std::size_t bounds_size(const attention_dims& d) { return std::size_t(3 * lanes_for(d.rows)); }
    static std::size_t state_size(const attention_dims& d) {  // whole cache lines: partials stay aligned
        return std::size_t((d.dv + 2) * lanes_for(d.rows) + 15) / 16 * 16;
    }

    // The state kept in `mem` (state_size elements): o transposed (dv x lanes), m, l.
    static softmax_state<T> state_in(T* mem, const attention_dims& d) {
        const index_t L = lanes_for(d.rows);
        return {mem + d.dv * L, mem + (d.dv + 1) * L, mem, 1, L, d.dv};
    }
    // Puts the state in `mem` (a split-KV partial) instead of the scratch.
    void place_state(T* mem) {
        const softmax_state<T> st = state_in(mem, {L_, dk_, dv_});
        ot_ = st.o;
        m_ = st.m;
        l_ = st.l;
    }
    softmax_state<T> state() const { return {m_, l_, ot_, 1, L_, dv_}; }
    index_t rows() const { return L_; }  // every lane is a row: set_row or clear_row each

    // Row r's query (scaled when packed), diagonal and ALiBi slope. Which keys it sees comes
    // from the schedule, tile by tile.
    template <class Q>
    void set_row(index_t r, const Q* q, index_t q_elem, T scale, index_t diag, T slope) {
        T* staged = q_rows_ + r * dk_;
        pack_row(q, q_elem, dk_, staged, dk_);
        if constexpr (bf16_dot) q_scale_[r] = scale;  // kept apart: the staged query stays exact in bf16
        else simd::scale(scale, staged, std::size_t(dk_));
        diag_[r] = diag;
        slope_[r] = slope;
    }
    void clear_row(index_t r) {  // a lane with no query: zero scores, never written out
        std::fill_n(q_rows_ + r * dk_, dk_, T(0));
        if constexpr (bf16_dot) q_scale_[r] = T(1);
        diag_[r] = 0;
        slope_[r] = T(0);
    }
    // The staged query rows transposed into Q^T 16 rows at a time (a contiguous store of
    // their lanes per d, never one line per element), and the state emptied.
    void start() {
        for (index_t r0 = 0; r0 < L_; r0 += 16)
            for (index_t d = 0; d < dk_; ++d)
                for (index_t r = r0; r < std::min(r0 + 16, L_); ++r) qt_[d * L_ + r] = q_rows_[r * dk_ + d];
#if SEQMIX_HAS_BF16_DOT
        if constexpr (bf16_dot) bf16_dot::pack_pairs(qt_, L_, dk_, L_, q_pairs_, nullptr);
#endif
        state().reset(L_);
    }

    void scores(const keys_type& kv, index_t j0, index_t n, index_t) {
        if constexpr (bf16_dot) {
            bf16_scores(kv, j0, n);
        } else if constexpr (converts) {
            Products::scores(converted(kv, j0, n, true), 0, n, dk_, L_, qt_, st_);
        } else {
            Products::scores(kv, j0, n, dk_, L_, qt_, st_);
        }
    }

    // Logits transform and mask in one pass over the tile, then the online-softmax update.
    // A masked tile asks the schedule which of its keys each row sees.
    template <class Schedule, class Logits>
    void softmax(index_t j0, index_t n, bool masked, const Schedule& keys, const Logits& lg) {
        using V = simd::vec<T>;
        constexpr index_t W = index_t(simd::width<T>);
        if (lg.any() || masked) {
            for (index_t r = 0; r < L_; ++r) {
                rel_[r] = T(diag_[r] - j0);
                if (!masked) continue;
                const key_range seen = keys.visible(r, j0);
                lo_[r] = seen.lo;
                hi_[r] = seen.hi;
                lo_rel_[r] = T(std::clamp<index_t>(lo_[r] - j0, -1, key_tile + 1));
                hi_rel_[r] = T(std::clamp<index_t>(hi_[r] - j0, -2, key_tile));
            }
            const V ninf(-std::numeric_limits<T>::infinity());
            for (index_t r = 0; r < L_; r += W) {
                const V rel = simd::load_aligned(rel_ + r), slope = simd::load_aligned(slope_ + r);
                const V lo = simd::load_aligned(lo_rel_ + r), hi = simd::load_aligned(hi_rel_ + r);
                for (index_t j = 0; j < n; ++j) {
                    T* p = st_ + j * L_ + r;
                    V s = simd::load_aligned(p);
                    const V jj = simd::broadcast(T(j));
                    if (lg.any()) s = lg(s, rel - jj, slope);
                    if (masked) s = simd::select((jj >= lo) && (jj <= hi), s, ninf);
                    simd::store_aligned(p, s);
                }
            }
        }
        online_softmax_update(st_, n, L_, L_, m_, l_, alpha_);
    }

    void accumulate(const keys_type& kv, index_t j0, index_t n, bool masked) {
        if constexpr (bf16_dot)
            if (kv.v_elem == 1 && !(masked && !Products::values_finite(kv, j0, n, dv_))) return bf16_values(kv, j0, n);
        if constexpr (converts) accumulate_from(converted(kv, j0, n, false), j0, 0, n, masked);
        else accumulate_from(kv, j0, j0, n, masked);
    }

private:
#if SEQMIX_HAS_BF16_DOT
    // S^T = K Q^T for keys [j0, j0 + n) by bf16 dot products (keys with a strided head dim:
    // converted as elsewhere), then each row's scale.
    void bf16_scores(const keys_type& kv, index_t j0, index_t n) {
        using V = simd::vec<T>;
        if (kv.k_elem == 1) {
            kv.runs(j0, n, [&](index_t j, index_t c, const bf16* k, const bf16*) {
                T* st = st_ + (j - j0) * L_;
                bf16_dot::panel_gemm<tile_update::overwrite>(c, dk_ / 2, L_, k, kv.k_row, 2, q_pairs_, nullptr, st, L_);
                if (dk_ % 2)  // the last dim of an odd head dim: one broadcast FMA per key
                    for (index_t t = 0; t < c; ++t) {
                        const V kd = V(T(k[t * kv.k_row + dk_ - 1]));
                        for (index_t r = 0; r < L_; r += index_t(simd::width<T>))
                            simd::store_aligned(st + t * L_ + r,
                                                simd::fma(kd, simd::load_aligned(qt_ + (dk_ - 1) * L_ + r),
                                                          simd::load_aligned(st + t * L_ + r)));
                    }
            });
        } else {
            Products::scores(converted(kv, j0, n, true), 0, n, dk_, L_, qt_, st_);
        }
        for (index_t j = 0; j < n; ++j)
            for (index_t r = 0; r < L_; r += index_t(simd::width<T>))
                simd::store_aligned(st_ + j * L_ + r,
                                    simd::load_aligned(st_ + j * L_ + r) * simd::load_aligned(q_scale_ + r));
    }
    // O^T = O^T diag(alpha) + V^T P^T over keys [j0, j0 + n): the tile's values as bf16 pairs,
    // P as pairs of its bf16 head and the bf16 of its remainder.
    void bf16_values(const keys_type& kv, index_t j0, index_t n) {
        const bf16* rows[key_tile];
        kv.runs(j0, n, [&](index_t j, index_t c, const bf16*, const bf16* v) {
            for (index_t t = 0; t < c; ++t) rows[j - j0 + t] = v + t * kv.v_row;
        });
        for (index_t k = 0; k < n; k += 2) {
            const bf16* second = k + 1 < n ? rows[k + 1] : nullptr;
            bf16_dot::pack_pair_rows(rows[k], second, dv_, dv16_, v_pairs_ + k * dv16_);
        }
        bf16_dot::pack_pairs(st_, L_, n, L_, p_hi_, round_p_ ? nullptr : p_lo_);
        const auto* vp = reinterpret_cast<const bf16*>(v_pairs_);
        bf16_dot::panel_gemm<tile_update::scale_accumulate>(dv_, pairs(n), L_, vp, 2, 2 * dv16_, p_hi_,
                                                            round_p_ ? nullptr : p_lo_, ot_, L_, alpha_);
    }
#else
    void bf16_scores(const keys_type&, index_t, index_t) {}
    void bf16_values(const keys_type&, index_t, index_t) {}
#endif

    // The tile's keys [j0, j0 + n) (or their values) as float rows in the scratch: key j is
    // row j - j0 of the result.
    typename Products::keys converted(const keys_type& kv, index_t j0, index_t n, bool keys) const {
        T* to = keys ? k_tile_ : v_tile_;
        const index_t d = keys ? dk_ : dv_;
        kv.runs(j0, n, [&](index_t j, index_t c, const auto* k, const auto* v) {
            for (index_t t = 0; t < c; ++t) {
                T* row = to + (j - j0 + t) * d;
                if (keys) pack_row(k + t * kv.k_row, kv.k_elem, d, row, d);
                else pack_row(v + t * kv.v_row, kv.v_elem, d, row, d);
            }
        });
        typename Products::keys tile{};
        tile.k = k_tile_;
        tile.v = v_tile_;
        tile.k_row = dk_;
        tile.v_row = dv_;
        tile.k_elem = tile.v_elem = 1;
        tile.count = n;
        return tile;
    }

    // P V for the tile's keys [j0, j0 + n), which are keys [first, first + n) of kv.
    void accumulate_from(const typename Products::keys& kv, index_t j0, index_t first, index_t n, bool masked) {
        // Masked keys must not reach a row even as 0 * Inf: with a non-finite value, only the
        // visible keys are added, one by one.
        if (masked && !Products::values_finite(kv, first, n, dv_)) {
            for (index_t e = 0; e < dv_; ++e)
                for (index_t r = 0; r < L_; ++r) ot_[e * L_ + r] *= alpha_[r];
            for (index_t r = 0; r < L_; ++r)
                for (index_t j = std::max(lo_[r], j0); j <= std::min(hi_[r], j0 + n - 1); ++j) {
                    index_t elem = 0;
                    const T* v = Products::value_of(kv, j - j0 + first, r, elem);
                    for (index_t e = 0; e < dv_; ++e) ot_[e * L_ + r] += st_[(j - j0) * L_ + r] * v[e * elem];
                }
            return;
        }
        Products::values(kv, first, n, dv_, L_, st_, ot_, alpha_);
    }

    index_t dk_, dv_, L_;
    bool round_p_;
    T *qt_, *st_, *ot_, *m_, *l_, *alpha_, *slope_, *rel_, *lo_rel_, *hi_rel_;
    index_t *lo_, *hi_, *diag_;                // lo_, hi_: the keys each row sees in the current masked tile
    T* q_rows_;                                // query rows as set, row-major, before start() transposes them
    T *k_tile_ = nullptr, *v_tile_ = nullptr;  // a tile's keys and values converted (converts)
    // bf16_dot: the queries, a tile's values and probabilities as bf16 pairs; the rows' scales.
    std::uint16_t *q_pairs_ = nullptr, *v_pairs_ = nullptr, *p_hi_ = nullptr, *p_lo_ = nullptr;
    T* q_scale_ = nullptr;
    index_t dv16_ = 0;
};

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
