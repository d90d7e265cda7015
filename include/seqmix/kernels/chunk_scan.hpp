#pragma once
// The chunkwise scan shared by the linear-attention family: chunks of each (sequence, head)
// pass their state along; outputs come from kernels/chunkwise.hpp pieces.
//
// The arithmetic is fixed by the data, never by the thread count: chunks are grouped into
// super-chunks of `chunks_per_super` chunks. Inside a super-chunk the state is chained
// chunk by chunk for the outputs; across super-chunks it advances as
//   S_{k+1} = exp(G_k) S_k + T_k,   T_k = the chained contributions of super-chunk k alone,
// G_k its summed log gate. Two schedules evaluate exactly these operations:
//   - enough (sequence, head) units for the threads: a thread takes a group of heads of one
//     sequence and walks their super-chunks together (super-chunk k of every head, then
//     k + 1), so the rows of q, k, v it reads are near each other in [B,N,H,D] memory;
//   - otherwise (one long sequence on many cores), each sequence is cut into segments of
//     super-chunks, one per thread; a thread first runs the cheap contribution-only pass
//     (T_k, G_k and the scan above) over the super-chunks before its segment, then the
//     full pass over its segment. Bidirectional scans use three phases instead.
// So results are bitwise identical for any thread count, with no per-chunk state buffers.
#include <algorithm>
#include <limits>
#include <vector>

#include "../core/aligned_buffer.hpp"
#include "../core/parallel.hpp"
#include "../core/scratch.hpp"
#include "chunkwise.hpp"

namespace seqmix::kernels {

constexpr index_t chunks_per_super = 16;

struct chunk_scan_shape {
    index_t units;             // (sequence, head) pairs, sequence-major
    index_t heads;             // units per sequence
    index_t dk, dv;            // feature dim, value dim incl. a normalizer column
    index_t chunk;             // tokens per chunk
    gate_kind gate;
    bool causal;               // false: bidirectional, every token sees the whole sequence
    std::vector<index_t> len;  // tokens of each unit
};

// Copies between one (sequence, head) state of a [seqs, H, dk, dv] view and the packed
// [dk][ldv] scratch form; an empty source means the zero state.
template <class T>
void load_state_rows(const tensor_view<const T, 4>& src, index_t s, index_t h, index_t dk, index_t dv, T* S,
                     index_t ldv) {
    std::fill(S, S + dk * ldv, T(0));
    if (src.empty()) return;
    for (index_t d = 0; d < dk; ++d)
        for (index_t e = 0; e < dv; ++e) S[d * ldv + e] = src(s, h, d, e);
}

template <class T>
void store_state_rows(const T* S, index_t ldv, index_t dk, index_t dv, const tensor_view<T, 4>& dst, index_t s,
                      index_t h) {
    if (dst.empty()) return;
    for (index_t d = 0; d < dk; ++d)
        for (index_t e = 0; e < dv; ++e) dst(s, h, d, e) = S[d * ldv + e];
}

// pack(unit, t0, chunk_tile&, with_q) fills q (if with_q), k, v, b of tokens [t0, t0 + len)
// emit(unit, t0, len, O, ldv)       consumes the outputs O [len][ldv]
// load_state(unit, S, ldv)          writes the initial state [dk][ldv] (zeros if none)
// store_state(unit, S, ldv)         receives the final state
template <class T, class Pack, class Emit, class Load, class Store>
void chunk_scan(const chunk_scan_shape& sh, int num_threads, const Pack& pack, const Emit& emit,
                const Load& load_state, const Store& store_state) {
    constexpr index_t W = index_t(simd::width<T>);
    const index_t C = sh.chunk, SC = C * chunks_per_super;
    const index_t ldk = (sh.dk + W - 1) / W * W, ldv = (sh.dv + W - 1) / W * W;
    const index_t lda = (C + W - 1) / W * W + W;
    const index_t b_size = sh.gate == gate_kind::vector ? C * ldk : lda;
    const index_t state = sh.dk * ldv;
    // Head groups of the sequential schedule: as few as give every thread work.
    const index_t seqs = sh.units / std::max<index_t>(sh.heads, 1);
    const int max_threads = resolve_threads(num_threads, std::numeric_limits<int>::max());
    const index_t groups_per_seq =
        std::clamp<index_t>((max_threads + std::max<index_t>(seqs, 1) - 1) / std::max<index_t>(seqs, 1), 1,
                            std::max<index_t>(sh.heads, 1));
    const index_t group_size = (sh.heads + groups_per_seq - 1) / std::max<index_t>(groups_per_seq, 1);
    const index_t groups = seqs * groups_per_seq;
    const std::size_t per_thread = scratch_carver<T>::size_of(C * ldk, C * ldk, C * ldv, b_size, C * lda, C * ldv,
                                                              C * ldk, C * ldk, state, state, state, state, ldk, ldk,
                                                              group_size * state);
    std::vector<index_t> first(std::size_t(sh.units) + 1, 0);  // first super-chunk of each unit
    for (index_t u = 0; u < sh.units; ++u)
        first[std::size_t(u) + 1] = first[std::size_t(u)] + (sh.len[std::size_t(u)] + SC - 1) / SC;
    const index_t supers = first.back();
    const int threads = resolve_threads(num_threads, std::max<index_t>(std::max(supers, groups), 1));
    thread_scratch<T> scratch(threads, per_thread);

    struct work {
        chunk_tile<T> tile;
        T *A, *O, *wq, *wk, *dS, *S, *I, *Tk, *gate, *G, *group_states;
    };
    auto carve = [&](int t) {
        scratch_carver<T> cv(scratch.get(t));
        work w;
        w.tile.dk = sh.dk;
        w.tile.dv = sh.dv;
        w.tile.ldk = ldk;
        w.tile.ldv = ldv;
        w.tile.gate = sh.gate;
        w.tile.q = cv.take(std::size_t(C * ldk));
        w.tile.k = cv.take(std::size_t(C * ldk));
        w.tile.v = cv.take(std::size_t(C * ldv));
        w.tile.b = cv.take(std::size_t(b_size));
        w.A = cv.take(std::size_t(C * lda));
        w.O = cv.take(std::size_t(C * ldv));
        w.wq = cv.take(std::size_t(C * ldk));
        w.wk = cv.take(std::size_t(C * ldk));
        w.dS = cv.take(std::size_t(state));
        w.S = cv.take(std::size_t(state));
        w.I = cv.take(std::size_t(state));
        w.Tk = cv.take(std::size_t(state));
        w.gate = cv.take(std::size_t(ldk));
        w.G = cv.take(std::size_t(ldk));
        w.group_states = cv.take(std::size_t(group_size * state));
        return w;
    };
    const gate_kind inner_gate = sh.causal ? sh.gate : gate_kind::none;
    const index_t gate_len = sh.gate == gate_kind::vector ? sh.dk : 1;
    // One super-chunk of unit u starting from state S (when outputs): outputs chained from S
    // (S is advanced in place), and/or T_k, G_k (when contribution).
    auto run_super = [&](work& w, index_t u, index_t k, T* S, bool outputs, bool contribution) {
        const index_t t_begin = k * SC, t_end = std::min(sh.len[std::size_t(u)], t_begin + SC);
        if (contribution) {
            std::fill(w.Tk, w.Tk + state, T(0));
            std::fill(w.G, w.G + gate_len, T(0));
        }
        for (index_t t0 = t_begin; t0 < t_end; t0 += C) {
            w.tile.len = std::min(C, t_end - t0);
            pack(u, t0, w.tile, outputs);
            if (outputs) {
                if (sh.causal) chunk_scores(w.tile, w.A, lda, w.wq, w.wk);
                chunk_output(w.tile, w.A, lda, static_cast<const T*>(S), w.O, w.wq, sh.causal);
                emit(u, t0, w.tile.len, static_cast<const T*>(w.O), ldv);
            }
            if (!sh.causal && !contribution) continue;
            chunk_state_delta(w.tile, w.dS, w.wq);
            chunk_total_gate(w.tile, w.gate);
            if (outputs && sh.causal) state_advance(S, w.dS, w.gate, inner_gate, sh.dk, ldv);
            if (contribution) {
                state_advance(w.Tk, w.dS, w.gate, inner_gate, sh.dk, ldv);
                if (inner_gate != gate_kind::none)
                    for (index_t d = 0; d < gate_len; ++d) w.G[d] += w.gate[d];
            }
        }
    };
    // S = exp(G) S + T across one super-chunk.
    auto advance_super = [&](T* S, const T* Tk, const T* G) { state_advance(S, Tk, G, inner_gate, sh.dk, ldv); };

    if (sh.causal && groups >= max_threads) {
        parallel_for(groups, threads, [&](index_t gi, int t) {
            work w = carve(t);
            const index_t s0 = gi / groups_per_seq, h0 = (gi % groups_per_seq) * group_size;
            const index_t h1 = std::min(sh.heads, h0 + group_size);
            const index_t u0 = s0 * sh.heads + h0;
            for (index_t u = u0; u < u0 + (h1 - h0); ++u) load_state(u, w.group_states + (u - u0) * state, ldv);
            const index_t n_super = first[std::size_t(u0) + 1] - first[std::size_t(u0)];  // same sequence: same count
            for (index_t k = 0; k < n_super; ++k)
                for (index_t u = u0; u < u0 + (h1 - h0); ++u) {
                    T* S = w.group_states + (u - u0) * state;
                    std::copy(S, S + state, w.I);
                    run_super(w, u, k, w.I, true, true);
                    advance_super(S, w.Tk, w.G);
                }
            for (index_t u = u0; u < u0 + (h1 - h0); ++u) store_state(u, static_cast<const T*>(w.group_states + (u - u0) * state), ldv);
        });
        return;
    }

    if (sh.causal) {
        // Few (sequence, head) units for many threads: each unit's super-chunks are cut into
        // segments, one per work item. Item i first runs the contribution-only pass over the
        // super-chunks before its segment (T_k, G_k and the scan, a fraction r of the full
        // cost), then the ordinary pass over its segment. Segment ends m_i are balanced so
        // that r m_i + (m_{i+1} - m_i) is the same for every item.
        constexpr double r = 0.3;  // contribution pass / full pass: swept 0.15-0.6 (H=1, D=64, 2 threads)
        const index_t segs = std::max<index_t>(1, (max_threads + sh.units - 1) / std::max<index_t>(sh.units, 1));
        auto segment_end = [&](index_t n_super, index_t i) {  // m_i
            double sum = 0, part = 0, w = 1;
            for (index_t j = 0; j < segs; ++j, w *= 1 - r) {
                sum += w;
                if (j < i) part += w;
            }
            return std::min(n_super, index_t(std::llround(double(n_super) * part / sum)));
        };
        parallel_for(sh.units * segs, threads, [&](index_t item, int t) {
            const index_t u = item / segs, i = item % segs;
            const index_t n_super = first[std::size_t(u) + 1] - first[std::size_t(u)];
            const index_t m0 = segment_end(n_super, i), m1 = i + 1 == segs ? n_super : segment_end(n_super, i + 1);
            if (m0 == m1 && i + 1 != segs) return;
            work w = carve(t);
            load_state(u, w.S, ldv);
            for (index_t k = 0; k < m0; ++k) {
                run_super(w, u, k, nullptr, false, true);
                advance_super(w.S, w.Tk, w.G);
            }
            for (index_t k = m0; k < m1; ++k) {
                std::copy(w.S, w.S + state, w.I);
                run_super(w, u, k, w.I, true, true);
                advance_super(w.S, w.Tk, w.G);
            }
            if (i + 1 == segs) store_state(u, static_cast<const T*>(w.S), ldv);
        });
        return;
    }

    // Bidirectional: (1) every super-chunk's contribution in parallel, (2) per unit the sum,
    // (3) every super-chunk's outputs from the total.
    aligned_buffer<T> states{std::size_t(std::max<index_t>(supers, 1) * state)};
    aligned_buffer<T> gates{std::size_t(std::max<index_t>(supers, 1) * ldk)};
    aligned_buffer<T> totals{std::size_t(sh.causal ? 1 : std::max<index_t>(sh.units, 1) * state)};
    std::vector<index_t> unit_of(static_cast<std::size_t>(supers));
    for (index_t u = 0; u < sh.units; ++u)
        for (index_t k = first[std::size_t(u)]; k < first[std::size_t(u) + 1]; ++k) unit_of[std::size_t(k)] = u;

    parallel_for(supers, threads, [&](index_t gk, int t) {  // phase 1: T_k and G_k
        work w = carve(t);
        const index_t u = unit_of[std::size_t(gk)];
        run_super(w, u, gk - first[std::size_t(u)], nullptr, false, true);
        std::copy(w.Tk, w.Tk + state, states.data() + gk * state);
        std::copy(w.G, w.G + gate_len, gates.data() + gk * ldk);
    });
    parallel_for(sh.units, resolve_threads(num_threads, sh.units), [&](index_t u, int t) {  // phase 2: the scan
        work w = carve(t);
        load_state(u, w.S, ldv);
        for (index_t gk = first[std::size_t(u)]; gk < first[std::size_t(u) + 1]; ++gk) {
            T* st = states.data() + gk * state;
            std::copy(st, st + state, w.Tk);
            if (sh.causal) std::copy(w.S, w.S + state, st);  // the state super-chunk gk starts from
            advance_super(w.S, w.Tk, gates.data() + gk * ldk);
        }
        if (!sh.causal) std::copy(w.S, w.S + state, totals.data() + u * state);
        store_state(u, static_cast<const T*>(w.S), ldv);
    });
    parallel_for(supers, threads, [&](index_t gk, int t) {  // phase 3: outputs
        work w = carve(t);
        const index_t u = unit_of[std::size_t(gk)];
        const T* from = sh.causal ? states.data() + gk * state : totals.data() + u * state;
        std::copy(from, from + state, w.I);
        run_super(w, u, gk - first[std::size_t(u)], w.I, true, false);
    });
}

}  // namespace seqmix::kernels
