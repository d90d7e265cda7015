#pragma once
// The chunkwise scan shared by the linear-attention family: chunks of each (sequence, head)
// pass their state along, S <- exp(g_c) S + dS_c; outputs come from kernels/chunkwise.hpp.
//
// The arithmetic is fixed by the data, never by the thread count. Causal scans:
//   - enough (sequence, head) units for the threads: a thread takes a group of heads of one
//     sequence and walks their chunks, `chunks_per_pass` chunks of each head in turn, so
//     the rows of q, k, v it reads stay near each other in [B,N,H,D] memory;
//   - otherwise (one long sequence on many cores): each sequence is cut into segments, one
//     per work item. An item first runs the state-only pass (k, v, gates, dS and the chain:
//     about 30% of the full cost) over the chunks before its segment, then the full pass
//     over its segment. Both passes perform exactly the chain above, so every schedule
//     computes the same bits, and no per-chunk state is stored.
// Bidirectional scans: (1) the state sum of every group of chunks in parallel, (2) per unit
// the total, (3) every chunk's outputs from the total.
#include "../core/abi.hpp"
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../core/aligned_buffer.hpp"
#include "../core/parallel.hpp"
#include "../core/scratch.hpp"
#include "chunkwise.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

// Chunks of one head walked before the next head of the group (sequential schedule), and
// chunks per partial sum of a bidirectional scan.
constexpr index_t chunks_per_pass = 16;

// Default chunk length, from the sweep in bench/bench_linear_attention.cpp (N = 8192):
// 32 tokens. 64 and 128 were slower at D = 64 and 128; 16 was 5-10% faster on one thread
// at D = 64 but about 10% slower for one sequence on two threads (the state-only prefix
// pass weighs more), so one size for all.
inline index_t default_chunk_size(index_t) { return 32; }

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
// emit(unit, t0, len, O, ldv)          consumes the outputs O [len][ldv]
// load_state(unit, S, ldv)             writes the initial state [dk][ldv] (zeros if none)
// store_state(unit, S, ldv)            receives the final state
template <class T, class Pack, class Emit, class Load, class Store>
void chunk_scan(const chunk_scan_shape& sh, int num_threads, const Pack& pack, const Emit& emit,
                const Load& load_state, const Store& store_state) {
    constexpr index_t W = index_t(simd::width<T>);
    const index_t C = sh.chunk;
    const index_t ldk = (sh.dk + W - 1) / W * W, ldv = (sh.dv + W - 1) / W * W;
    const index_t lda = (C + W - 1) / W * W + W;
    const index_t b_size = sh.gate == gate_kind::vector ? C * ldk : lda;
    const index_t state = sh.dk * ldv;
    auto chunks_of = [&](index_t u) { return (sh.len[std::size_t(u)] + C - 1) / C; };

    // The team that would really run (one thread inside a user's parallel region).
    const int team = available_threads(num_threads);
    // Head groups of the sequential schedule: as few as give every thread work.
    const index_t heads = std::max<index_t>(sh.heads, 1), seqs = sh.units / heads;
    const index_t groups_per_seq = std::clamp<index_t>((team + std::max<index_t>(seqs, 1) - 1) /
                                                           std::max<index_t>(seqs, 1), 1, heads);
    const index_t group_size = (heads + groups_per_seq - 1) / groups_per_seq;
    const index_t groups = seqs * groups_per_seq;
    const bool grouped = sh.causal && groups >= team;
    // Sequence segments repeat a prefix pass each: never more of them than processors.
    const index_t seg_plan = std::min(team, processor_count());
    const index_t segs = std::max<index_t>(1, (seg_plan + sh.units - 1) / std::max<index_t>(sh.units, 1));
    index_t bidirectional_parts = 0;
    for (index_t u = 0; u < sh.units && !sh.causal; ++u)
        bidirectional_parts += (chunks_of(u) + chunks_per_pass - 1) / chunks_per_pass;
    // Threads (and scratch slices) never exceed the work items of the schedule taken.
    const int max_threads = resolve_threads(
        num_threads, grouped ? groups : sh.causal ? sh.units * segs : std::max(bidirectional_parts, sh.units));

    thread_scratch<T> scratch(max_threads, scratch_carver<T>::size_of(C * ldk, C * ldk, C * ldv, b_size, b_size,
                                                                      C * lda, C * ldv, C * ldk, C * ldk,
                                                                      group_size * state));
    struct work {
        chunk_tile<T> tile;
        T *A, *O, *wq, *wk, *states;
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
        w.tile.b_lo = cv.take(std::size_t(b_size));
        w.A = cv.take(std::size_t(C * lda));
        w.O = cv.take(std::size_t(C * ldv));
        w.wq = cv.take(std::size_t(C * ldk));
        w.wk = cv.take(std::size_t(C * ldk));
        w.states = cv.take(std::size_t(group_size * state));
        return w;
    };
    // Chunks [c0, c1) of unit u. With outputs: emit them from the state S as it stands at
    // each chunk. State chain (causal, or a bidirectional partial sum without outputs):
    // S <- exp(g_c) S + dS_c.
    auto run_chunks = [&](work& w, index_t u, index_t c0, index_t c1, T* S, bool outputs) {
        const bool chain = sh.causal || !outputs;
        for (index_t c = c0; c < c1; ++c) {
            const index_t t0 = c * C;
            w.tile.len = std::min(C, sh.len[std::size_t(u)] - t0);
            pack(u, t0, w.tile, outputs);
            if (outputs) {
                if (sh.causal) chunk_scores(w.tile, w.A, lda, w.wq, w.wk);
                chunk_output(w.tile, w.A, lda, static_cast<const T*>(S), w.O, w.wq, sh.causal);
                emit(u, t0, w.tile.len, static_cast<const T*>(w.O), ldv);
            }
            if (chain) chunk_state_update(w.tile, S, w.wq);
        }
    };

    if (grouped) {
        parallel_for(groups, max_threads, [&](index_t gi, int t) {
            work w = carve(t);
            const index_t s0 = gi / groups_per_seq, h0 = (gi % groups_per_seq) * group_size;
            const index_t n = std::max<index_t>(0, std::min(heads, h0 + group_size) - h0);
            const index_t u0 = s0 * heads + h0;
            for (index_t i = 0; i < n; ++i) load_state(u0 + i, w.states + i * state, ldv);
            const index_t chunks = n > 0 ? chunks_of(u0) : 0;  // one sequence: the same for every head
            for (index_t c = 0; c < chunks; c += chunks_per_pass)
                for (index_t i = 0; i < n; ++i)
                    run_chunks(w, u0 + i, c, std::min(chunks, c + chunks_per_pass), w.states + i * state, true);
            for (index_t i = 0; i < n; ++i) store_state(u0 + i, static_cast<const T*>(w.states + i * state), ldv);
        });
        return;
    }

    if (sh.causal) {
        // Segment ends m_i balance r m_i + (m_{i+1} - m_i) across items (r: the state-only
        // pass relative to the full pass).
        constexpr double r = 0.3;  // swept 0.15-0.6 at H=1, D=64, 2 threads
        auto segment_end = [&](index_t n, index_t i) {
            double sum = 0, part = 0, wgt = 1;
            for (index_t j = 0; j < segs; ++j, wgt *= 1 - r) {
                sum += wgt;
                if (j < i) part += wgt;
            }
            return std::min(n, index_t(std::llround(double(n) * part / sum)));
        };
        // Every segment of a unit starts from its initial state while the last one writes the
        // final state, which may be the same memory (in place): read them all first. There
        // are fewer units than threads here, so this is small.
        aligned_buffer<T> initial{std::size_t(std::max<index_t>(sh.units, 1) * state)};
        for (index_t u = 0; u < sh.units; ++u) load_state(u, initial.data() + u * state, ldv);
        parallel_for(sh.units * segs, max_threads, [&](index_t item, int t) {
            const index_t u = item / segs, i = item % segs, n = chunks_of(u);
            const index_t m0 = segment_end(n, i), m1 = i + 1 == segs ? n : segment_end(n, i + 1);
            if (m0 == m1 && i + 1 != segs) return;
            work w = carve(t);
            std::copy(initial.data() + u * state, initial.data() + (u + 1) * state, w.states);
            run_chunks(w, u, 0, m0, w.states, false);
            run_chunks(w, u, m0, m1, w.states, true);
            if (i + 1 == segs) store_state(u, static_cast<const T*>(w.states), ldv);
        });
        return;
    }

    // Bidirectional.
    std::vector<index_t> first(std::size_t(sh.units) + 1, 0);  // first chunk group of each unit
    for (index_t u = 0; u < sh.units; ++u)
        first[std::size_t(u) + 1] = first[std::size_t(u)] + (chunks_of(u) + chunks_per_pass - 1) / chunks_per_pass;
    const index_t parts = first.back();
    std::vector<index_t> unit_of(static_cast<std::size_t>(parts));
    for (index_t u = 0; u < sh.units; ++u)
        for (index_t k = first[std::size_t(u)]; k < first[std::size_t(u) + 1]; ++k) unit_of[std::size_t(k)] = u;
    aligned_buffer<T> sums{std::size_t(std::max<index_t>(parts, 1) * state)};
    aligned_buffer<T> totals{std::size_t(std::max<index_t>(sh.units, 1) * state)};
    auto part_range = [&](index_t k, index_t u) {
        const index_t c0 = (k - first[std::size_t(u)]) * chunks_per_pass;
        return std::make_pair(c0, std::min(chunks_of(u), c0 + chunks_per_pass));
    };
    parallel_for(parts, max_threads, [&](index_t k, int t) {  // (1) partial sums
        work w = carve(t);
        const index_t u = unit_of[std::size_t(k)];
        T* S = sums.data() + k * state;
        std::fill(S, S + state, T(0));
        const auto [c0, c1] = part_range(k, u);
        run_chunks(w, u, c0, c1, S, false);
    });
    parallel_for(sh.units, max_threads, [&](index_t u, int) {  // (2) totals, in part order
        T* S = totals.data() + u * state;
        load_state(u, S, ldv);
        for (index_t k = first[std::size_t(u)]; k < first[std::size_t(u) + 1]; ++k)
            state_add(S, static_cast<const T*>(sums.data() + k * state), sh.dk, ldv);
        store_state(u, static_cast<const T*>(S), ldv);
    });
    parallel_for(parts, max_threads, [&](index_t k, int t) {  // (3) outputs
        work w = carve(t);
        const index_t u = unit_of[std::size_t(k)];
        const auto [c0, c1] = part_range(k, u);
        run_chunks(w, u, c0, c1, totals.data() + u * state, true);
    });
}

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
