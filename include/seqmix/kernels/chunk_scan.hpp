#pragma once
// The chunkwise scan shared by the linear-attention family: chunks of each (sequence, head)
// pass their state along; outputs come from kernels/chunkwise.hpp pieces.
//
// Two schedules, one arithmetic. With at least as many (sequence, head) units as threads,
// each unit walks its chunks in order. Otherwise (one long sequence on many cores) the
// three-phase sequence-parallel form runs: (1) every chunk's state contribution dS_c and
// gate, in parallel; (2) per unit, the short sequential scan S_c = exp(g_c) S_{c-1} + dS_c,
// keeping each chunk's starting state; (3) every chunk's outputs, in parallel. Both
// schedules evaluate exactly the same floating-point operations in the same order, so
// results are bitwise identical for any thread count.
#include <algorithm>
#include <vector>

#include "../core/aligned_buffer.hpp"
#include "../core/parallel.hpp"
#include "../core/scratch.hpp"
#include "chunkwise.hpp"

namespace seqmix::kernels {

struct chunk_scan_shape {
    index_t units;           // (sequence, head) pairs
    index_t dk, dv;          // feature dim, value dim incl. a normalizer column
    index_t chunk;           // tokens per chunk
    gate_kind gate;
    bool causal;             // false: bidirectional, every token sees the whole sequence
    std::vector<index_t> len;  // tokens of each unit
};

// pack(unit, t0, chunk_tile&)       fills q, k, v, b of tokens [t0, t0 + len) (len is set)
// emit(unit, t0, len, O, ldv)       consumes the outputs O [len][ldv]
// load_state(unit, S, ldv)          writes the initial state [dk][ldv] (zeros if none)
// store_state(unit, S, ldv)         receives the final state
template <class T, class Pack, class Emit, class Load, class Store>
void chunk_scan(const chunk_scan_shape& sh, int num_threads, const Pack& pack, const Emit& emit,
                const Load& load_state, const Store& store_state) {
    constexpr index_t W = index_t(simd::width<T>);
    const index_t C = sh.chunk;
    const index_t ldk = (sh.dk + W - 1) / W * W, ldv = (sh.dv + W - 1) / W * W;
    const index_t lda = (C + W - 1) / W * W + W;
    const index_t b_size = sh.gate == gate_kind::vector ? C * ldk : lda;
    const std::size_t per_thread = scratch_carver<T>::size_of(C * ldk, C * ldk, C * ldv, b_size, C * lda, C * ldv,
                                                              C * ldk, C * ldk, sh.dk * ldv, sh.dk * ldv, ldk);
    std::vector<index_t> first(std::size_t(sh.units) + 1, 0);  // first chunk of each unit
    for (index_t u = 0; u < sh.units; ++u)
        first[std::size_t(u) + 1] = first[std::size_t(u)] + (sh.len[std::size_t(u)] + C - 1) / C;
    const index_t chunks = first.back();
    const int threads = resolve_threads(num_threads, std::max<index_t>(chunks, 1));
    thread_scratch<T> scratch(threads, per_thread);

    struct work {
        chunk_tile<T> tile;
        T *A, *O, *wq, *wk, *dS, *S, *gate;
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
        w.dS = cv.take(std::size_t(sh.dk * ldv));
        w.S = cv.take(std::size_t(sh.dk * ldv));
        w.gate = cv.take(std::size_t(ldk));
        return w;
    };
    auto load_chunk = [&](work& w, index_t u, index_t c) {
        const index_t t0 = c * C;
        w.tile.len = std::min(C, sh.len[std::size_t(u)] - t0);
        pack(u, t0, w.tile);
        return t0;
    };
    auto outputs = [&](work& w, index_t u, index_t t0, const T* S_prev) {
        if (sh.causal) chunk_scores(w.tile, w.A, lda, w.wq, w.wk);
        chunk_output(w.tile, w.A, lda, S_prev, w.O, w.wq, sh.causal);
        emit(u, t0, w.tile.len, static_cast<const T*>(w.O), ldv);
    };

    if (sh.causal && sh.units >= threads) {
        parallel_for(sh.units, threads, [&](index_t u, int t) {
            work w = carve(t);
            load_state(u, w.S, ldv);
            for (index_t c = 0; c < first[std::size_t(u) + 1] - first[std::size_t(u)]; ++c) {
                const index_t t0 = load_chunk(w, u, c);
                outputs(w, u, t0, w.S);
                chunk_state_delta(w.tile, w.dS, w.wq);
                chunk_total_gate(w.tile, w.gate);
                state_advance(w.S, w.dS, w.gate, sh.gate, sh.dk, ldv);
            }
            store_state(u, static_cast<const T*>(w.S), ldv);
        });
        return;
    }

    // Sequence-parallel form: one state (and one gate) per chunk.
    aligned_buffer<T> states{std::size_t(std::max<index_t>(chunks, 1) * sh.dk * ldv)};
    aligned_buffer<T> gates{std::size_t(std::max<index_t>(chunks, 1) * ldk)};
    aligned_buffer<T> totals{std::size_t(sh.causal ? 1 : std::max<index_t>(sh.units, 1) * sh.dk * ldv)};
    std::vector<index_t> unit_of(static_cast<std::size_t>(chunks));
    for (index_t u = 0; u < sh.units; ++u)
        for (index_t c = first[std::size_t(u)]; c < first[std::size_t(u) + 1]; ++c) unit_of[std::size_t(c)] = u;

    parallel_for(chunks, threads, [&](index_t gc, int t) {  // phase 1
        work w = carve(t);
        const index_t u = unit_of[std::size_t(gc)];
        load_chunk(w, u, gc - first[std::size_t(u)]);
        chunk_state_delta(w.tile, states.data() + gc * sh.dk * ldv, w.wq);
        chunk_total_gate(w.tile, gates.data() + gc * ldk);
    });
    parallel_for(sh.units, resolve_threads(num_threads, sh.units), [&](index_t u, int t) {  // phase 2
        work w = carve(t);
        load_state(u, w.S, ldv);
        for (index_t gc = first[std::size_t(u)]; gc < first[std::size_t(u) + 1]; ++gc) {
            T* st = states.data() + gc * sh.dk * ldv;
            std::copy(st, st + sh.dk * ldv, w.dS);
            if (sh.causal) std::copy(w.S, w.S + sh.dk * ldv, st);  // the state this chunk starts from
            state_advance(w.S, w.dS, gates.data() + gc * ldk, sh.causal ? sh.gate : gate_kind::none, sh.dk, ldv);
        }
        if (!sh.causal) std::copy(w.S, w.S + sh.dk * ldv, totals.data() + u * sh.dk * ldv);
        store_state(u, static_cast<const T*>(w.S), ldv);
    });
    parallel_for(chunks, threads, [&](index_t gc, int t) {  // phase 3
        work w = carve(t);
        const index_t u = unit_of[std::size_t(gc)];
        const index_t t0 = load_chunk(w, u, gc - first[std::size_t(u)]);
        outputs(w, u, t0, sh.causal ? states.data() + gc * sh.dk * ldv : totals.data() + u * sh.dk * ldv);
    });
}

}  // namespace seqmix::kernels
