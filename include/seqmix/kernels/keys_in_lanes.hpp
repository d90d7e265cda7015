#pragma once
// keys_in_lanes, the decode engine of the attention main loop (fewer query rows than a vector
// holds, e.g. one token and a GQA group): the W keys of a vector run along the lanes; each key
// row is loaded once for all rows, per-row reductions are horizontal. Rows in lanes would
// leave most lanes idle here and do W / rows times the arithmetic.
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
#include "key_block.hpp"
#include "kv_rows.hpp"
#include "pack.hpp"
#include "softmax_state.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

// KV: the key storage (keys and values stored as KV::key_type, KV::value_type; they widen to
// T in registers as they stream).
template <class T, class KV = kv_rows<T>>
class keys_in_lanes {
    static constexpr index_t W = index_t(simd::width<T>);
    using K = typename KV::key_type;
    using V = typename KV::value_type;

public:
    using keys_type = KV;
    // Keys per tile: the scores of 8 vectors of keys are computed at once, so the keys of a
    // tile are read in one pass and then their values in another (a plain two-stream read on
    // Zen 4 ran 14.5 GB/s switching streams every 8 KB, one head-major vector of keys at
    // D = 128, and 20.6 GB/s every 64 KB), and one softmax update serves them all (per
    // vector of keys, its serial chain of horizontal max, exp and sum took 19% of a decode).
    static constexpr index_t key_tile = 8 * W;
    static constexpr index_t score_tiles = 1;
    static constexpr index_t block = key_tile;

    static index_t pad(index_t d) { return (d + W - 1) / W * W; }
    static std::size_t scratch_size(const attention_dims& d) {
        return scratch_carver<T>::size_of(d.rows * pad(d.dk), d.rows * block, W * d.dk, d.heads * W * d.dv, W, d.rows,
                                          state_size(d));
    }
    static std::size_t bounds_size(const attention_dims& d) { return std::size_t(3 * d.rows); }
    static std::size_t state_size(const attention_dims& d) {  // whole cache lines: partials stay aligned
        return std::size_t(d.rows * (pad(d.dv) + 2) + 15) / 16 * 16;
    }

    keys_in_lanes(const attention_dims& d, T* scratch, index_t* bounds)
        : rows_(d.rows),
          dk_(d.dk),
          dv_(d.dv),
          dk_pad_(pad(d.dk)),
          dv_pad_(pad(d.dv)),
          heads_(d.heads),
          head_rows_(d.rows / d.heads) {
        scratch_carver<T> c(scratch);
        qs_ = c.take(std::size_t(rows_ * dk_pad_));
        prob_ = c.take(std::size_t(rows_ * block));
        k_pack_ = c.take(std::size_t(W * dk_));
        v_pack_ = c.take(std::size_t(heads_ * W * dv_));
        T* iota = c.take(std::size_t(W));
        slope_ = c.take(std::size_t(rows_));
        place_state(c.take(state_size(d)));
        for (index_t j = 0; j < W; ++j) iota[j] = T(j);
        lane_ = simd::load_aligned(iota);
        diag_ = bounds;
        vis_lo_ = diag_ + rows_;
        vis_hi_ = vis_lo_ + rows_;
    }

    // The state kept in `mem` (state_size elements): o row-major (rows x padded dv), m, l.
    static softmax_state<T> state_in(T* mem, const attention_dims& d) {
        const index_t dv_pad = pad(d.dv);
        return {mem + d.rows * dv_pad, mem + d.rows * (dv_pad + 1), mem, dv_pad, 1, d.dv};
    }
    void place_state(T* mem) {
        const softmax_state<T> st = state_in(mem, {rows_, dk_, dv_, heads_});
        o_ = st.o;
        m_ = st.m;
        l_ = st.l;
    }
    softmax_state<T> state() const { return {m_, l_, o_, dv_pad_, 1, dv_}; }
    index_t rows() const { return rows_; }

    template <class Q>
    void set_row(index_t r, const Q* q, index_t q_elem, T scale, index_t diag, T slope) {
        T* qd = qs_ + r * dk_pad_;
        pack_row(q, q_elem, dk_, qd, dk_pad_);
        simd::scale(scale, qd, std::size_t(dk_));
        diag_[r] = diag;
        slope_[r] = slope;
    }
    void clear_row(index_t r) {  // no query: zero scores, never written out
        std::fill_n(qs_ + r * dk_pad_, dk_pad_, T(0));
        diag_[r] = 0;
        slope_[r] = T(0);
    }
    void start() { state().reset(rows_); }  // queries were packed by set_row

    // Scores of every head's rows for up to `block` keys, W keys at a time; with several
    // heads the W keys of every head are taken together, in address order for token-major
    // [B,N,H,D] caches (head by head would stride a page per key).
    // `ahead`: keys the schedule visits after these (the prefetch never reaches past them).
    void scores(const KV& kv, index_t j0, index_t n, index_t ahead) {
        kv.runs(j0, n, [&](index_t j, index_t c, const K* k, const V* v) {
            for (index_t t = 0; t < c; ++t) {
                keys_[std::size_t(j - j0 + t)] = k + t * kv.k_row;
                values_[std::size_t(j - j0 + t)] = v + t * kv.v_row;
            }
        });
        const index_t n_pad = (n + W - 1) / W * W;
        for (index_t j = n; j < n_pad; ++j) {  // lanes past the keys repeat the last one (masked later)
            keys_[std::size_t(j)] = keys_[std::size_t(n - 1)];
            values_[std::size_t(j)] = values_[std::size_t(n - 1)];
        }
        // Then the rows of the next W keys the schedule visits (or the last one again): each
        // vector of keys requests the lines of the next one as it streams, so the memory
        // requests stay spread over the compute (on Zen 5, head-major Nk = 32768 ran 27 GB/s
        // on 1 thread against 14 with the whole next tile requested at once, and 22-25 with
        // 4 or 8 keys ahead).
        end_ = std::min(j0 + n + ahead, kv.count);
        for (index_t t = 0; t < W; ++t) {
            const index_t j = std::min(j0 + n + t, end_ - 1);
            const bool next = j0 + n < end_ && !(kv.gather && kv.gather[j] < 0);
            keys_[std::size_t(n_pad + t)] = next ? kv.key(j) : keys_[std::size_t(n_pad - 1)];
            values_[std::size_t(n_pad + t)] = next ? kv.value(j) : values_[std::size_t(n_pad - 1)];
        }
        for (index_t c = 0; c < n_pad; c += W)
            for (index_t hh = 0; hh < heads_; ++hh) {
                const K* keys[2 * simd::width<T>];  // this vector of keys, then the next W
                for (index_t j = 0; j < 2 * W; ++j) keys[j] = keys_[std::size_t(c + j)] + hh * kv.k_head;
                const T* q = qs_ + hh * head_rows_ * dk_pad_;
                T* head_scores = prob_ + hh * head_rows_ * block + c;
                if (kv.k_elem == 1) {
                    dot_key_rows(q, dk_pad_, head_rows_, keys, dk_, head_scores, block, keys + W);
                } else {
                    const T* packed[simd::width<T>];
                    pack(keys, W, kv.k_elem, dk_, k_pack_, packed);
                    dot_key_rows(q, dk_pad_, head_rows_, packed, dk_, head_scores, block);
                }
            }
    }

    // Per row, for the tile [j0, j0 + n) of the scored block: logits transform, mask (the keys
    // the schedule says each row sees, in a masked tile), and the online-softmax update.
    template <class Schedule, class Logits>
    void softmax(index_t j0, index_t n, bool masked, const Schedule& keys, const Logits& lg) {
        using Vec = simd::vec<T>;
        constexpr T ninf = -std::numeric_limits<T>::infinity();
        const index_t n_pad = (n + W - 1) / W * W;
        partial_ = false;
        for (index_t r = 0; r < rows_; ++r) {
            T* pr = prob_ + r * block;
            index_t lo = j0, hi = j0 + n - 1;
            if (masked) {
                const key_range seen = keys.visible(r, j0);
                lo = std::max(seen.lo, lo);
                hi = std::min(seen.hi, hi);
            }
            vis_lo_[r] = lo;
            vis_hi_[r] = hi;
            if (lo > hi) {  // nothing visible in this tile
                std::fill_n(pr, n_pad, T(0));
                partial_ = true;
                continue;
            }
            partial_ = partial_ || lo > j0 || hi < j0 + n - 1;
            // The transformed, masked scores and their max; then probabilities and their sum.
            Vec mx0(ninf), mx1(ninf);
            for (index_t c = 0; c < n_pad; c += W) {
                Vec s = simd::load(pr + c);
                const index_t k0 = j0 + c;
                if (lg.any()) s = lg(s, Vec(T(diag_[r] - k0)) - lane_, Vec(slope_[r]));
                if (lo > k0 || hi < k0 + W - 1)
                    s = simd::select((lane_ >= Vec(T(lo - k0))) && (lane_ <= Vec(T(hi - k0))), s, Vec(ninf));
                simd::store(pr + c, s);
                if (c / W % 2 == 0) mx0 = simd::max(mx0, s);
                else mx1 = simd::max(mx1, s);
            }
            T& m = m_[r];
            T& l = l_[r];
            const T m_new = std::max(m, simd::hmax(simd::max(mx0, mx1)));
            const T m_use = m_new == ninf ? T(0) : m_new;  // avoids -inf - -inf
            Vec sum0(T(0)), sum1(T(0));
            for (index_t c = 0; c < n_pad; c += W) {
                const Vec p = simd::exp(simd::load(pr + c) - Vec(m_use));
                simd::store(pr + c, p);
                if (c / W % 2 == 0) sum0 = sum0 + p;
                else sum1 = sum1 + p;
            }
            const T alpha = std::exp(m - m_use);  // 0 on the first visible tile
            if (alpha != T(1)) simd::scale(alpha, o_ + r * dv_pad_, std::size_t(dv_pad_));
            l = l * alpha + simd::hsum(sum0 + sum1);
            m = m_new;
        }
    }

    // P V for the tile, a vector of keys at a time (the values of the next one requested).
    void accumulate(const KV& kv, index_t j0, index_t n, bool) {
        for (index_t hh = 0; hh < heads_; ++hh)
            for (index_t c = 0; c < n; c += W) {
                const index_t count = std::min(W, n - c);
                const V* values[2 * simd::width<T>];  // these keys' values, then the next W keys'
                for (index_t j = 0; j < 2 * W; ++j) values[j] = values_[std::size_t(c + j)] + hh * kv.v_head;
                if (kv.v_elem == 1) {
                    accumulate_tile(values, count, c, j0 + c, hh, values + W);
                } else {
                    const T* packed[simd::width<T>];
                    pack(values, count, kv.v_elem, dv_, v_pack_ + hh * W * dv_, packed);
                    accumulate_tile(packed, count, c, j0 + c, hh, static_cast<const T* const*>(nullptr));
                }
            }
    }

private:
    // P V of head hh's rows for `count` keys from k0 (scores at column c of the tile), values
    // stored as S.
    template <class S>
    void accumulate_tile(const S* const* values, index_t count, index_t c, index_t k0, index_t hh,
                         const S* const* ahead) {
        const index_t r0 = hh * head_rows_;
        bool exact = false;  // masked keys must not reach a row even as 0 * Inf: only visible ones then
        for (index_t j = 0; partial_ && j < count && !exact; ++j)
            exact = !rows_finite(values[j], 1, 0, dv_, index_t(1));
        if (!exact) {
            accumulate_value_rows(prob_ + r0 * block + c, block, head_rows_, values, count, o_ + r0 * dv_pad_, dv_pad_,
                                  dv_, ahead);
            return;
        }
        for (index_t r = r0; r < r0 + head_rows_; ++r)
            for (index_t j = std::max(vis_lo_[r], k0); j <= std::min(vis_hi_[r], k0 + count - 1); ++j)
                simd::axpy(prob_[r * block + c + j - k0], values[j - k0], o_ + r * dv_pad_, std::size_t(dv_));
    }
    // Strided head dims: `count` rows copied contiguous (as T), their pointers in `packed`.
    template <class S>
    static void pack(const S* const* rows, index_t count, index_t elem, index_t d, T* to, const T** packed) {
        for (index_t j = 0; j < count; ++j) {
            pack_row(rows[j], elem, d, to + j * d, d);
            packed[j] = to + j * d;
        }
    }

    index_t rows_, dk_, dv_, dk_pad_, dv_pad_, heads_, head_rows_;
    T *qs_, *prob_, *k_pack_, *v_pack_, *slope_, *o_, *m_, *l_;
    index_t *diag_, *vis_lo_, *vis_hi_;  // vis: the keys each row sees in the current tile
    simd::vec<T> lane_;
    bool partial_ = false;
    index_t end_ = 0;                         // the schedule's keys end before this one (or the cache's)
    std::array<const K*, block + W> keys_{};  // the tile's rows, then the next W
    std::array<const V*, block + W> values_{};
};

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
