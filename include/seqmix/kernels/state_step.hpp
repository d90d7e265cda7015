#pragma once
// Decode steps over state pools. The pool helper (for_each_slot: slots, pad_slot, per-thread
// scratch) serves every *_step. For matrix states, one step per head fused into a single
// pass over the state rows: S[d][:] = decay_d S[d][:] + k_d v, then o = S^T q (columns in
// blocks of four vectors held in registers, so each state element is loaded and stored
// once), and its row form o_d = S[d][:] . c for the state-space models.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "../core/abi.hpp"
#include "../core/parallel.hpp"
#include "../core/scratch.hpp"
#include "../core/tensor_view.hpp"
#include "../simd/exp.hpp"
#include "../simd/vec.hpp"
#include "pack.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

// S: dk rows of n columns, row stride lds, unit column stride, stored as St (T, or bf16 /
// fp16: read as floats, rounded once on store). decay: dk values (vector gate) or one
// value broadcast to all rows (decay_stride 0). v and o hold n values.
template <class T, class St>
void state_step(St* S, index_t lds, index_t dk, index_t n, const T* q, const T* k, const T* v, const T* decay,
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
        // Full blocks and the tail block in separate loops: one loop holding both paths (the
        // tail's lane-by-lane conversions) kept the accumulators in memory.
        if (cnt[NB - 1] == W) {
            for (index_t d = 0; d < dk; ++d) {
                St* row = S + d * lds + e0;
                const V dec(decay[d * decay_stride]), kd(k[d]), qd(q[d]);
                for (index_t j = 0; j < NB; ++j) {
                    const V s = simd::fma(simd::load_as<T>(row + j * W), dec, kd * vv[j]);
                    simd::store_as(row + j * W, s);
                    acc[j] = simd::fma(qd, s, acc[j]);
                }
            }
        } else {
            for (index_t d = 0; d < dk; ++d) {
                St* row = S + d * lds + e0;
                const V dec(decay[d * decay_stride]), kd(k[d]), qd(q[d]);
                for (index_t j = 0; j < NB && cnt[j] > 0; ++j) {
                    const std::size_t r = std::size_t(cnt[j]);
                    const V old =
                        r == std::size_t(W) ? simd::load_as<T>(row + j * W) : simd::load_as_partial<T>(row + j * W, r);
                    const V s = simd::fma(old, dec, kd * vv[j]);
                    if (r == std::size_t(W)) simd::store_as(row + j * W, s);
                    else simd::store_as_partial(row + j * W, s, r);
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

// y = S^T x (y[e] = sum_d x[d] S[d][e]) over dk rows of n columns, any strides: the
// state read of the delta rule's first pass. Unit-stride columns go in blocks of four
// vectors held in registers across all rows.
template <class T, class St>
void state_transpose_times(const St* S, index_t lds, index_t lcs, index_t dk, index_t n, const T* x, T* y) {
    using V = simd::vec<T>;
    constexpr index_t W = index_t(simd::width<T>);
    constexpr index_t NB = 4;
    if (lcs != 1) {
        std::fill(y, y + n, T(0));
        for (index_t d = 0; d < dk; ++d)
            for (index_t e = 0; e < n; ++e) y[e] += x[d] * T(S[d * lds + e * lcs]);
        return;
    }
    index_t e0 = 0;
    for (; e0 + NB * W <= n; e0 += NB * W) {
        V acc[NB];
        for (index_t j = 0; j < NB; ++j) acc[j] = V(T(0));
        for (index_t d = 0; d < dk; ++d) {
            const V xd(x[d]);
            for (index_t j = 0; j < NB; ++j) acc[j] = simd::fma(xd, simd::load_as<T>(S + d * lds + e0 + j * W), acc[j]);
        }
        for (index_t j = 0; j < NB; ++j) simd::store(y + e0 + j * W, acc[j]);
    }
    for (; e0 < n; e0 += W) {
        const std::size_t cnt = std::size_t(std::min(W, n - e0));
        V acc(T(0));
        for (index_t d = 0; d < dk; ++d) acc = simd::fma(V(x[d]), simd::load_as_partial<T>(S + d * lds + e0, cnt), acc);
        simd::store_partial(y + e0, acc, cnt);
    }
}

// One decode step's vectors for one (row, head): what an operator fills before the state
// pass (q, k: dk values; v: the state's columns; decay: dk values or one) and the output.
// S, lds, lcs: the state of this (slot, head), stored as St, for operators that read it
// before the pass (the delta rule's prediction S^T k); work: dk values of scratch for them.
template <class T, class St = T>
struct step_vectors {
    T *q = nullptr, *k = nullptr, *v = nullptr, *decay = nullptr, *o = nullptr, *work = nullptr;
    index_t decay_stride = 0;  // 1: per-row decays, 0: one decay for the whole state
    const St* S = nullptr;
    index_t lds = 0, lcs = 0;
};

// The q and k rows (of head h's key head) and the v row of batch row b, from a step's
// [B,H,D] views (Args: step_args), packed into r.
template <class T, class St, class Args>
void pack_step_rows(const Args& s, index_t b, index_t h, step_vectors<T, St>& r) {
    const index_t hk = h / (s.hv / s.hk);
    pack_row(s.q.ptr(b, hk), s.q.stride(2), s.dk, r.q, s.dk);
    pack_row(s.k.ptr(b, hk), s.k.stride(2), s.dk, r.k, s.dk);
    pack_row(s.v.ptr(b, h), s.v.stride(2), s.dv, r.v, s.dv);
}

// The decays exp(g) of row b, head h into r: one per key channel (g [B,H,Dk], one vector
// exp per W channels) or one per head (g [B,H], through the step's gate projection).
template <class G, std::size_t RG, class T, class St, class Project>
void step_decay(const tensor_view<const G, RG>& g, index_t b, index_t h, index_t dk, step_vectors<T, St>& r,
                const Project& project) {
    if constexpr (RG == 3) {
        pack_row(g.ptr(b, h), g.stride(2), dk, r.decay, dk);
        simd::exp_inplace(r.decay, std::size_t(dk));
        r.decay_stride = 1;
    } else {
        r.decay[0] = std::exp(project(T(g(b, h)), h));
        r.decay_stride = 0;
    }
}

// The state pools of every decode step: for each (batch row b, item i) whose row has a
// slot (`indices[b]`, or b; a negative slot, pad_slot, skips the row entirely),
// body(b, i, slot, scratch) with `scratch_elems` elements of per-thread scratch. Items of
// one row never share state (heads, channel blocks), so rows and items run in parallel.
template <class T, class Body>
void for_each_slot(const std::int32_t* indices, index_t batch, index_t items, int num_threads,
                   std::size_t scratch_elems, Body&& body) {
    const int threads = resolve_threads(num_threads, batch * items);
    thread_scratch<T> scratch(threads, scratch_elems);
    // Contiguous ranges, not round-robin: neighbouring items' states are neighbours in the pool.
    parallel_ranges(batch * items, threads, [&](index_t x, int t) {
        const index_t b = x / items, i = x % items;
        const index_t slot = indices ? index_t(indices[b]) : b;
        if (slot < 0) return;  // padding row: no state touched, output left as it was
        body(b, i, slot, scratch.get(t));
    });
}

// The decode-step driver shared by every matrix-state recurrence: for each (row b, head h)
// with a slot, it carves per-thread scratch (T: the compute type), calls fill(b, h, vectors),
// runs the fused state pass on state[slot, h] (or its element-wise form when the state's
// columns are strided), then finish(b, h, vectors) writes the output row. state:
// [slots, H, dk, n], stored as St (T, or bf16 / fp16: read as floats, rounded on store).
template <class T, class St, class Fill, class Finish>
void step_rows(const tensor_view<St, 4>& state, const std::int32_t* indices, index_t batch, int num_threads,
               Fill&& fill, Finish&& finish) {
    const index_t hv = state.extent(1), dk = state.extent(2), n = state.extent(3);
    const bool fast = state.stride(3) == 1;
    for_each_slot<T>(indices, batch, hv, num_threads, scratch_carver<T>::size_of(dk, dk, dk, dk, n, n),
                     [&](index_t b, index_t h, index_t slot, T* scratch) {
                         scratch_carver<T> cv(scratch);
                         step_vectors<T, St> r;
                         r.q = cv.take(std::size_t(dk));
                         r.k = cv.take(std::size_t(dk));
                         r.decay = cv.take(std::size_t(dk));
                         r.work = cv.take(std::size_t(dk));
                         r.v = cv.take(std::size_t(n));
                         r.o = cv.take(std::size_t(n));
                         r.decay_stride = 0;
                         r.S = state.ptr(slot, h);
                         r.lds = state.stride(2);
                         r.lcs = state.stride(3);
                         fill(b, h, r);
                         if (fast) {
                             state_step(state.ptr(slot, h), state.stride(2), dk, n, static_cast<const T*>(r.q),
                                        static_cast<const T*>(r.k), static_cast<const T*>(r.v),
                                        static_cast<const T*>(r.decay), r.decay_stride, r.o);
                         } else {
                             std::fill(r.o, r.o + n, T(0));
                             for (index_t d = 0; d < dk; ++d)
                                 for (index_t e = 0; e < n; ++e) {
                                     St& stored = state(slot, h, d, e);
                                     const T s_ = r.decay[d * r.decay_stride] * T(stored) + r.k[d] * r.v[e];
                                     stored = storage_cast<St>(s_);
                                     r.o[e] += r.q[d] * s_;
                                 }
                         }
                         finish(b, h, r);
                     });
}

// The row form of a decode step (Mamba-2's state [P][S], stored as St, read against C):
// S[d][e] = decay S[d][e] + k_d v_e, then o_d = sum_e S[d][e] c_e, for rows d < rows and
// columns e < n (row stride lds, column stride lcs). Unit-stride rows of up to 8 vectors
// keep v and c in registers; wider rows stream them from cache.
template <class T, class St>
void state_step_dot(St* S, index_t lds, index_t lcs, index_t rows, index_t n, T decay, const T* k, const T* v,
                    const T* c, T* o) {
    using V = simd::vec<T>;
    constexpr index_t W = index_t(simd::width<T>);
    if (lcs != 1) {
        for (index_t d = 0; d < rows; ++d) {
            T sum = 0;
            for (index_t e = 0; e < n; ++e) {
                St& stored = S[d * lds + e * lcs];
                const T s_ = decay * T(stored) + k[d] * v[e];
                stored = storage_cast<St>(s_);
                sum += s_ * c[e];
            }
            o[d] = sum;
        }
        return;
    }
    constexpr index_t NB = 8;
    const index_t nv = (n + W - 1) / W;
    const bool in_registers = nv <= NB;
    V vv[NB], cc[NB];
    auto lanes = [&](index_t j) { return std::size_t(std::min(W, n - j * W)); };
    auto load_lanes = [&](const auto* p, index_t j) {
        return lanes(j) == std::size_t(W) ? simd::load_as<T>(p + j * W) : simd::load_as_partial<T>(p + j * W, lanes(j));
    };
    if (in_registers)
        for (index_t j = 0; j < nv; ++j) {
            vv[j] = load_lanes(v, j);
            cc[j] = load_lanes(c, j);
        }
    const V dec(decay);
    for (index_t d = 0; d < rows; ++d) {
        St* row = S + d * lds;
        const V kd(k[d]);
        V acc(T(0));
        for (index_t j = 0; j < nv; ++j) {
            const V s = simd::fma(load_lanes(row, j), dec, kd * (in_registers ? vv[j] : load_lanes(v, j)));
            if (lanes(j) == std::size_t(W)) simd::store_as(row + j * W, s);
            else simd::store_as_partial(row + j * W, s, lanes(j));
            acc = simd::fma(s, in_registers ? cc[j] : load_lanes(c, j), acc);
        }
        o[d] = simd::hsum(acc);
    }
}

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
