#pragma once
// The chunk pipeline of the chunkwise recurrences (linear attention, GLA; next the delta rule
// and Mamba-2's SSD). A sequence is cut into chunks; each chunk has a state-independent part
// (`prepare`: packing, gates, scores, for the delta rule the UT transform) and a
// state-dependent part (`output` from the state entering the chunk, then `advance` of the
// state past it). The pipeline owns the schedules, the scratch and the passing of states;
// an operator brings a policy:
//
//   struct Policy {
//     using value_type = T;
//     index_t dk, dv;          // state rows, state columns (a normalizer counts as a column)
//     index_t ldv;             // padded state row stride (a multiple of the vector width)
//     index_t chunk;           // tokens per chunk
//     bool causal;             // false: bidirectional, every token sees the whole sequence
//     bool column_split;       // columns of the state may be computed apart (value split)
//     double prefix_cost;      // a state-only pass relative to a full pass (segment balance)
//     std::size_t prepared_size() const;                          // elements of one prepared chunk
//     void prepare(const chunk_ref<T>&, bool outputs) const;      // state independent
//     void output(const chunk_ref<T>&, const T* S, T* O, index_t c0, index_t c1) const;
//     void advance(const chunk_ref<T>&, T* S, index_t c0, index_t c1) const;
//     void emit(const chunk_ref<T>&, const T* O, index_t c0, index_t c1) const;
//     void load_state(index_t unit, T* S) const;                  // [dk][ldv], zeros if none
//     void store_state(index_t unit, const T* S) const;
//     // columns [c0, c1) of S, the state after the unit's (k + 1)-th snapshot interval
//     void store_snapshot(index_t unit, index_t k, const T* S, index_t c0, index_t c1) const;
//     // optional: outputs and advance in one pass over the chunk's tokens (a policy that
//     // runs the recurrence itself); when present the pipeline calls it instead of output,
//     // emit and advance, and advance is only called for state-only passes
//     void fused_pass(const chunk_ref<T>&, T* S, T* O, index_t c0, index_t c1) const;
//   };
//
// Snapshots cost no extra pass: chunks are cut at every multiple of the snapshot interval
// (chunk_cuts), so each snapshot is the state between two chunks, stored as it passes.
//
// Columns [c0, c1) of the state are multiples of the vector width and never mix, so every
// schedule below computes the same bits for any thread count:
//   - head groups: (sequence, head) units at least as many as threads; a thread walks a
//     group of heads of one sequence, `chunks_per_pass` chunks of each head in turn;
//   - value split: fewer units than threads; chunks are prepared in parallel a super-chunk
//     at a time, then threads take column blocks of the state through the chain;
//   - segments: fewer units than threads and no column split; each item runs a state-only
//     prefix pass up to its segment (the cost model balances segment lengths);
//   - bidirectional: partial state sums in parallel, then outputs from the total.
#include <algorithm>
#include <cmath>
#include <new>
#include <type_traits>
#include <vector>

#include "../core/abi.hpp"
#include "../core/parallel.hpp"
#include "../core/scratch.hpp"
#include "chunkwise.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

// One chunk in flight: whose it is, where it starts, and its prepared data.
template <class T>
struct chunk_ref {
    index_t unit, t0, len;
    T* prepared;
};

// Chunks of one head walked before the next head of the group (head-group schedule), and
// chunks per partial sum of a bidirectional scan.
constexpr index_t chunks_per_pass = 16;
// Tokens prepared together before the value-split chain runs over them (one barrier each).
constexpr index_t tokens_per_stage = 1024;

// Default chunk length, from the sweep in bench/bench_linear_attention.cpp (B=1, H=4,
// N = 8192, 1 thread, Zen 4): 16 tokens for feature dims up to 64 (2-8% faster than 32 for
// all three gate kinds), 32 above (16 and 32 equal at 128); 64 and 128 were slower. The
// value split has no prefix pass, so small chunks cost nothing on one long sequence.
inline index_t default_chunk_size(index_t dk) { return dk <= 64 ? 16 : 32; }

// Unit lengths and the per-sequence head count of a pipeline run.
struct chunk_units {
    index_t units;                  // (sequence, head) pairs, sequence-major
    index_t heads;                  // units per sequence
    std::vector<index_t> len;       // tokens of each unit
    index_t snapshot_interval = 0;  // tokens between snapshots; 0: none

    // Every (sequence, head) of a problem with num_seqs sequences of hv heads each
    // (a recurrent_problem, or anything with those members, sequence(s).len and
    // snapshot_interval).
    template <class Problem>
    static chunk_units per_head(const Problem& p) {
        chunk_units cu{p.num_seqs * p.hv, p.hv, {}, p.snapshot_interval};
        cu.len.reserve(std::size_t(cu.units));
        for (index_t u = 0; u < cu.units; ++u) cu.len.push_back(p.sequence(u / p.hv).len);
        return cu;
    }
};

// Where the chunks of a unit start: every `chunk` tokens, restarted at every multiple of the
// snapshot interval, so that each snapshot is the state between two chunks. With an interval
// that is a multiple of the chunk these are the plain cuts. The tokens before a cut never see
// the tokens after it, so a snapshot has the bits of a call that ends there.
struct chunk_cuts {
    index_t chunk, interval;  // interval 0: no snapshots
    index_t per_interval;     // chunks per interval, ceil(interval / chunk)

    chunk_cuts(index_t c, index_t i) : chunk(c), interval(i), per_interval(i > 0 ? (i + c - 1) / c : 1) {}
    index_t count(index_t n) const {
        if (interval == 0) return (n + chunk - 1) / chunk;
        return n / interval * per_interval + (n % interval + chunk - 1) / chunk;
    }
    index_t start(index_t c) const {
        return interval == 0 ? c * chunk : c / per_interval * interval + c % per_interval * chunk;
    }
    index_t length(index_t c, index_t n) const {
        const index_t t0 = start(c);
        index_t end = std::min(n, t0 + chunk);
        if (interval > 0) end = std::min(end, (c / per_interval + 1) * interval);
        return end - t0;
    }
    // k when the state after chunk c is snapshot k (the state after token (k + 1) interval), else -1.
    index_t snapshot_after(index_t c, index_t n) const {
        if (interval == 0) return -1;
        const index_t end = start(c) + length(c, n);
        return end % interval == 0 ? end / interval - 1 : -1;
    }
};

template <class Policy, class = void>
struct has_fused_pass : std::false_type {};
template <class Policy>
struct has_fused_pass<Policy, std::void_t<decltype(&Policy::fused_pass)>> : std::true_type {};

// How a pipeline run deals its work to a team: the schedule and the size of each split. A
// pure function of the shapes, the team and the processor count, so that tests can plan for
// 1 to 128 threads on any machine (tests/test_linear_attention.cpp, "plans").
enum class chunk_schedule { bidirectional, head_groups, value_split, segments };

struct chunk_plan {
    chunk_schedule schedule = chunk_schedule::segments;
    index_t groups_per_seq = 1, group_size = 1;  // head groups: a thread walks group_size heads of one sequence
    index_t col_blocks = 1;                      // value split: column blocks of each state
    index_t segments = 1;                        // segments: items per unit, each after a state-only prefix
    index_t items = 0;                           // items the schedule's main phase deals
};

// units, heads: (sequence, head) units and heads per sequence; chunks: chunk count of each
// unit; vectors: SIMD vectors per state row (the value split's finest cut).
inline chunk_plan plan_chunk_schedule(index_t units, index_t heads, const std::vector<index_t>& chunks, index_t vectors,
                                      bool causal, bool column_split, int team, int processors) {
    chunk_plan p;
    const index_t per = std::max<index_t>(units, 1);
    if (!causal) {  // partial sums over runs of chunks_per_pass chunks
        p.schedule = chunk_schedule::bidirectional;
        for (index_t c : chunks) p.items += (c + chunks_per_pass - 1) / chunks_per_pass;
        return p;
    }
    heads = std::max<index_t>(heads, 1);
    const index_t seqs = std::max<index_t>(units / heads, 1);
    p.groups_per_seq = std::clamp<index_t>((team + seqs - 1) / seqs, 1, heads);
    p.group_size = (heads + p.groups_per_seq - 1) / p.groups_per_seq;
    p.groups_per_seq = (heads + p.group_size - 1) / p.group_size;  // no empty group (5 heads in 4 groups of 2: 3)
    if (units / heads * p.groups_per_seq >= team) {
        p.schedule = chunk_schedule::head_groups;
        p.items = units / heads * p.groups_per_seq;
        return p;
    }
    // Column blocks: equal runs of whole vectors (a divisor of the row's vectors: 3 blocks of
    // 4 vectors would be 1, 1 and 2, and the 2 would set the pace). The count takes the
    // least chain work on the busiest thread, ceil(units b / team) x vectors / b, ties to
    // fewer blocks (less of each prepared chunk read by other threads).
    p.col_blocks = 1;
    if (team > units && vectors >= 2) {
        auto busiest = [&](index_t b) { return (units * b + team - 1) / team * (vectors / b); };
        for (index_t b = 2; b <= vectors; ++b)
            if (vectors % b == 0 && (p.col_blocks == 1 || busiest(b) < busiest(p.col_blocks))) p.col_blocks = b;
    }
    if (column_split && p.col_blocks >= 2) {
        p.schedule = chunk_schedule::value_split;
        p.items = units * p.col_blocks;
        return p;
    }
    // Never more segments than processors: each repeats a prefix pass, so a segment beyond
    // the processors only adds work.
    p.col_blocks = 1;
    p.segments = std::max<index_t>(1, (std::min(team, processors) + per - 1) / per);
    p.items = units * p.segments;
    return p;
}

// Columns [c0, c1) of one prepared chunk through the state: outputs from S, emitted, then S
// advanced past the chunk (or the policy's own fused pass).
template <class Policy, class T>
void chunk_pass(const Policy& pol, const chunk_ref<T>& r, T* S, T* O, index_t c0, index_t c1) {
    if constexpr (has_fused_pass<Policy>::value) {
        pol.fused_pass(r, S, O, c0, c1);
    } else {
        pol.output(r, static_cast<const T*>(S), O, c0, c1);
        pol.emit(r, static_cast<const T*>(O), c0, c1);
        pol.advance(r, S, c0, c1);
    }
}

template <class Policy>
void chunk_pipeline(const Policy& pol, const chunk_units& cu, int num_threads) {
    using T = typename Policy::value_type;
    constexpr index_t W = index_t(simd::width<T>);
    const index_t C = pol.chunk, ldv = pol.ldv;
    const index_t state = pol.dk * ldv;
    const std::size_t prepared = pol.prepared_size();
    const chunk_cuts cuts(C, cu.snapshot_interval);
    auto chunks_of = [&](index_t u) { return cuts.count(cu.len[std::size_t(u)]); };
    auto ref = [&](index_t u, index_t c, T* buf) {
        return chunk_ref<T>{u, cuts.start(c), cuts.length(c, cu.len[std::size_t(u)]), buf};
    };
    // Columns [c0, c1) of the state after chunk c of unit u, stored when it is a snapshot.
    auto snapshot = [&](index_t u, index_t c, const T* S, index_t c0, index_t c1) {
        if (cu.snapshot_interval == 0) return;
        const index_t k = cuts.snapshot_after(c, cu.len[std::size_t(u)]);
        if (k >= 0) pol.store_snapshot(u, k, S, c0, c1);
    };

    // The plan for the team that would really run (one thread inside a user's parallel region).
    std::vector<index_t> chunk_counts(static_cast<std::size_t>(cu.units));
    for (index_t u = 0; u < cu.units; ++u) chunk_counts[std::size_t(u)] = chunks_of(u);
    const chunk_plan plan = plan_chunk_schedule(cu.units, cu.heads, chunk_counts, ldv / W, pol.causal, pol.column_split,
                                                available_threads(num_threads), processor_count());
    const index_t heads = std::max<index_t>(cu.heads, 1);

    // Full pass over chunks [c0, c1) of unit u from state S (outputs emitted), or the
    // state-only pass.
    auto run_chunks = [&](T* buf, T* O, index_t u, index_t c0, index_t c1, T* S, bool outputs) {
        for (index_t c = c0; c < c1; ++c) {
            const auto r = ref(u, c, buf);
            pol.prepare(r, outputs);
            if (outputs) {  // a state-only pass repeats chunks another pass owns: no snapshots
                chunk_pass(pol, r, S, O, 0, ldv);
                snapshot(u, c, S, 0, ldv);
            } else {
                pol.advance(r, S, 0, ldv);
            }
        }
    };

    // Bidirectional: partial sums, totals, outputs (policies with a fused pass are causal; no
    // snapshots, which the contracts refuse without causal).
    if constexpr (!has_fused_pass<Policy>::value) {
        if (plan.schedule == chunk_schedule::bidirectional) {
            std::vector<index_t> first(std::size_t(cu.units) + 1, 0);
            for (index_t u = 0; u < cu.units; ++u)
                first[std::size_t(u) + 1] =
                    first[std::size_t(u)] + (chunks_of(u) + chunks_per_pass - 1) / chunks_per_pass;
            const index_t parts = first.back();
            std::vector<index_t> unit_of(static_cast<std::size_t>(parts));
            for (index_t u = 0; u < cu.units; ++u)
                for (index_t k = first[std::size_t(u)]; k < first[std::size_t(u) + 1]; ++k) unit_of[std::size_t(k)] = u;
            const int threads = resolve_threads(num_threads, std::max(parts, cu.units));
            thread_scratch<T> scratch(threads, scratch_carver<T>::size_of(prepared, C * ldv));
            thread_scratch<T> shared(1, scratch_carver<T>::size_of(std::max<index_t>(parts, 1) * state,
                                                                   std::max<index_t>(cu.units, 1) * state));
            scratch_carver<T> shared_cv(shared.get(0));
            T* const sums = shared_cv.take(std::size_t(std::max<index_t>(parts, 1) * state));
            T* const totals = shared_cv.take(std::size_t(std::max<index_t>(cu.units, 1) * state));
            auto part_range = [&](index_t k, index_t u) {
                const index_t c0 = (k - first[std::size_t(u)]) * chunks_per_pass;
                return std::make_pair(c0, std::min(chunks_of(u), c0 + chunks_per_pass));
            };
            parallel_for(parts, threads, [&](index_t k, int t) {  // (1) partial sums
                scratch_carver<T> cv(scratch.get(t));
                T* buf = cv.take(prepared);
                T* S = sums + k * state;
                std::fill(S, S + state, T(0));
                const index_t u = unit_of[std::size_t(k)];
                const auto [c0, c1] = part_range(k, u);
                run_chunks(buf, nullptr, u, c0, c1, S, false);
            });
            parallel_for(cu.units, threads, [&](index_t u, int) {  // (2) totals, in part order
                T* S = totals + u * state;
                pol.load_state(u, S);
                for (index_t k = first[std::size_t(u)]; k < first[std::size_t(u) + 1]; ++k)
                    state_add(S, static_cast<const T*>(sums + k * state), pol.dk, ldv);
                pol.store_state(u, static_cast<const T*>(S));
            });
            parallel_for(parts, threads, [&](index_t k, int t) {  // (3) outputs from the total
                scratch_carver<T> cv(scratch.get(t));
                T* buf = cv.take(prepared);
                T* O = cv.take(std::size_t(C * ldv));
                const index_t u = unit_of[std::size_t(k)];
                const auto [c0, c1] = part_range(k, u);
                for (index_t c = c0; c < c1; ++c) {
                    const auto r = ref(u, c, buf);
                    pol.prepare(r, true);
                    pol.output(r, static_cast<const T*>(totals + u * state), O, 0, ldv);
                    pol.emit(r, static_cast<const T*>(O), 0, ldv);
                }
            });
            return;
        }
    }

    if (plan.schedule == chunk_schedule::head_groups) {
        const index_t groups = plan.items, groups_per_seq = plan.groups_per_seq, group_size = plan.group_size;
        const int threads = resolve_threads(num_threads, groups);
        thread_scratch<T> scratch(threads, scratch_carver<T>::size_of(prepared, C * ldv, group_size * state));
        // Longest sequences first (varlen batches): the round-robin deal then ends with the
        // short ones. Which thread runs a group never changes its bits.
        std::vector<index_t> order(static_cast<std::size_t>(groups));
        for (index_t gi = 0; gi < groups; ++gi) order[std::size_t(gi)] = gi;
        std::stable_sort(order.begin(), order.end(), [&](index_t x, index_t y) {
            return chunks_of(x / groups_per_seq * heads) > chunks_of(y / groups_per_seq * heads);
        });
        parallel_for(groups, threads, [&](index_t item, int t) {
            const index_t gi = order[std::size_t(item)];
            scratch_carver<T> cv(scratch.get(t));
            T* buf = cv.take(prepared);
            T* O = cv.take(std::size_t(C * ldv));
            T* states = cv.take(std::size_t(group_size * state));
            const index_t s0 = gi / groups_per_seq, h0 = (gi % groups_per_seq) * group_size;
            const index_t n = std::max<index_t>(0, std::min(heads, h0 + group_size) - h0);
            const index_t u0 = s0 * heads + h0;
            for (index_t i = 0; i < n; ++i) pol.load_state(u0 + i, states + i * state);
            const index_t chunks = n > 0 ? chunks_of(u0) : 0;  // one sequence: the same for every head
            for (index_t c = 0; c < chunks; c += chunks_per_pass)
                for (index_t i = 0; i < n; ++i)
                    run_chunks(buf, O, u0 + i, c, std::min(chunks, c + chunks_per_pass), states + i * state, true);
            for (index_t i = 0; i < n; ++i) pol.store_state(u0 + i, static_cast<const T*>(states + i * state));
        });
        return;
    }

    // Every remaining schedule reads all initial states before any final state is written:
    // final_state may be the same memory as initial_state (in place). Units < threads here.
    // Shared buffers come from the calling thread's scratch pool: kept between calls, so a
    // call does not fault in fresh pages.
    thread_scratch<T> shared_states(1, std::size_t(std::max<index_t>(cu.units, 1) * state));
    T* const states = shared_states.get(0);
    for (index_t u = 0; u < cu.units; ++u) pol.load_state(u, states + u * state);

    if (plan.schedule == chunk_schedule::value_split) {
        const index_t col_blocks = plan.col_blocks;
        // Stages of chunks_per_stage chunks, double buffered: in phase s every thread
        // prepares its share of stage s + 1 and runs its column blocks of stage s through
        // the chain, then the team meets at one barrier.
        const index_t chunks_per_stage = std::max<index_t>(4, tokens_per_stage / C);
        index_t max_chunks = 0;
        for (index_t u = 0; u < cu.units; ++u) max_chunks = std::max(max_chunks, chunks_of(u));
        const index_t stages = (max_chunks + chunks_per_stage - 1) / chunks_per_stage;
        const index_t stage_items = cu.units * chunks_per_stage, chain_items = cu.units * col_blocks;
        const int threads = resolve_threads(num_threads, std::max(stage_items, chain_items));
        thread_scratch<T> shared_stage(1, 2 * std::size_t(stage_items) * prepared);
        T* const stage_buf[2] = {shared_stage.get(0), shared_stage.get(0) + std::size_t(stage_items) * prepared};
        thread_scratch<T> scratch(threads, std::size_t(C * ldv));
        auto col = [&](index_t b) {  // column block b: whole vectors, balanced
            const index_t vecs = ldv / W;
            return vecs * b / col_blocks * W;
        };
        auto prepared_chunk = [&](index_t s, index_t u, index_t c) {  // chunk c of unit u, in stage s
            return stage_buf[s % 2] + std::size_t(u * chunks_per_stage + c - s * chunks_per_stage) * prepared;
        };
        parallel_team(threads, [&](int t, int nt, const team_sync& sync) {
            T* O = scratch.get(t);
            auto prepare_stage = [&](index_t s) {
                // A contiguous run of chunks per thread: the rows each chunk prefetches for
                // the next one are then its own thread's next rows.
                const index_t i0 = stage_items * t / nt, i1 = stage_items * (t + 1) / nt;
                for (index_t i = i0; i < i1; ++i) {
                    const index_t u = i / chunks_per_stage, c = s * chunks_per_stage + i % chunks_per_stage;
                    if (c < chunks_of(u)) pol.prepare(ref(u, c, prepared_chunk(s, u, c)), true);
                }
            };
            prepare_stage(0);
            sync.barrier();
            for (index_t s = 0; s < stages; ++s) {
                if (s + 1 < stages) prepare_stage(s + 1);
                for (index_t i = t; i < chain_items; i += nt) {
                    const index_t u = i / col_blocks, b = i % col_blocks;
                    T* S = states + u * state;
                    const index_t c_end = std::min((s + 1) * chunks_per_stage, chunks_of(u));
                    for (index_t c = s * chunks_per_stage; c < c_end; ++c) {
                        const auto r = ref(u, c, prepared_chunk(s, u, c));
                        chunk_pass(pol, r, S, O, col(b), col(b + 1));
                        snapshot(u, c, S, col(b), col(b + 1));
                    }
                }
                sync.barrier();
            }
        });
        for (index_t u = 0; u < cu.units; ++u) pol.store_state(u, static_cast<const T*>(states + u * state));
        return;
    }

    // Segments. Segment ends m_i balance r m_i + (m_{i+1} - m_i) across items (r: the
    // policy's prefix cost).
    const index_t segs = plan.segments;
    const double r = pol.prefix_cost;
    auto segment_end = [&](index_t n, index_t i) {
        double sum = 0, part = 0, wgt = 1;
        for (index_t j = 0; j < segs; ++j) {
            sum += wgt;
            if (j < i) part += wgt;
            wgt *= 1 - r;
        }
        return std::min(n, index_t(std::llround(double(n) * part / sum)));
    };
    const int threads = resolve_threads(num_threads, cu.units * segs);
    thread_scratch<T> scratch(threads, scratch_carver<T>::size_of(prepared, C * ldv, state));
    parallel_for(cu.units * segs, threads, [&](index_t item, int t) {
        const index_t u = item / segs, i = item % segs, n = chunks_of(u);
        const index_t m0 = segment_end(n, i), m1 = i + 1 == segs ? n : segment_end(n, i + 1);
        if (m0 == m1 && i + 1 != segs) return;
        scratch_carver<T> cv(scratch.get(t));
        T* buf = cv.take(prepared);
        T* O = cv.take(std::size_t(C * ldv));
        T* S = cv.take(std::size_t(state));
        std::copy(states + u * state, states + (u + 1) * state, S);
        run_chunks(buf, O, u, 0, m0, S, false);
        run_chunks(buf, O, u, m0, m1, S, true);
        if (i + 1 == segs) pol.store_state(u, static_cast<const T*>(S));
    });
}

// The packed rows of one chunk, the first pieces of its prepared buffer after the policy's
// header: q and k (read in place when the Rows allow it; never with a vector gate, which
// scales them per lane, padding included), v, and the cumulative gates (hi, lo): [len] per
// token, or [len][ldk] per key channel. `rows_size` is what they take of the buffer.
struct chunk_geometry {
    index_t dk, dv, ldk, ldv, chunk;
    gate_kind gate;
    index_t gate_size(index_t lda) const { return gate == gate_kind::vector ? chunk * ldk : lda; }
    template <class T>
    std::size_t rows_size(index_t lda) const {
        return scratch_carver<T>::size_of(chunk * ldk, chunk * ldk, chunk * ldv, gate_size(lda), gate_size(lda));
    }
};

template <class T, class Rows>
chunk_tile<T> pack_chunk_rows(scratch_carver<T>& cv, const Rows& rows, const chunk_ref<T>& r, const chunk_geometry& g,
                              index_t lda, bool outputs) {
    chunk_tile<T> c;
    c.len = r.len;
    c.dk = g.dk;
    c.dv = g.dv;
    c.ldk = g.ldk;
    c.ldv = g.ldv;
    c.gate = g.gate;
    T* q_buf = cv.take(std::size_t(g.chunk * g.ldk));
    T* k_buf = cv.take(std::size_t(g.chunk * g.ldk));
    const bool in_place = g.gate != gate_kind::vector && rows.in_place_qk(r.unit, r.t0, c.q, c.ldq, c.k, c.ldkr);
    if (!in_place) {
        c.q = q_buf;
        c.k = k_buf;
        c.ldq = c.ldkr = g.ldk;
    }
    c.v = cv.take(std::size_t(g.chunk * g.ldv));
    c.b = cv.take(std::size_t(g.gate_size(lda)));
    c.b_lo = cv.take(std::size_t(g.gate_size(lda)));
    rows.pack(r.unit, r.t0, c, in_place ? nullptr : q_buf, in_place ? nullptr : k_buf, outputs);
    return c;
}

// What every chunk policy of the recurrent family carries: its rows, the packed geometry
// (padded widths: ldk, ldv, and lda for score rows), and the emit and state I/O that go
// through the rows. A policy's prepare constructs its own Header at the front of each
// chunk's 64-byte aligned buffer (header_elements of it); output and advance read it back.
template <class T, class Rows>
struct chunk_policy_base {
    using value_type = T;
    const Rows& rows;
    index_t dk, dv, ldk, ldv, chunk, lda;
    gate_kind gate;
    bool causal = true;        // false: bidirectional (gated_chunk_policy only)
    bool column_split = true;  // false: the state's columns must stay together

    chunk_policy_base(const Rows& r, index_t dk_, index_t dv_, index_t chunk_, gate_kind g)
        : rows(r), dk(dk_), dv(dv_), chunk(chunk_), gate(g) {
        constexpr index_t W = index_t(simd::width<T>);
        ldk = (dk + W - 1) / W * W;
        ldv = (dv + W - 1) / W * W;
        lda = (chunk + W - 1) / W * W + W;
    }
    chunk_geometry geometry() const { return {dk, dv, ldk, ldv, chunk, gate}; }
    // Elements of a prepared chunk: the policy's own pieces plus the packed rows.
    std::size_t prepared_with(std::size_t own) const { return own + geometry().template rows_size<T>(lda); }
    // The start of every prepare: past the policy's header, the chunk's packed rows.
    chunk_tile<T> pack_rows(scratch_carver<T>& cv, const chunk_ref<T>& r, std::size_t header_size, bool outputs) const {
        cv.take(header_size);
        return pack_chunk_rows(cv, rows, r, geometry(), lda, outputs);
    }

    template <class Header>
    static constexpr std::size_t header_elements() {
        static_assert(alignof(Header) <= 64, "the prepared buffer is 64-byte aligned");
        return (sizeof(Header) + sizeof(T) - 1) / sizeof(T);
    }
    template <class Header>
    static const Header& header_of(const chunk_ref<T>& r) {
        return *std::launder(reinterpret_cast<const Header*>(r.prepared));
    }

    void emit(const chunk_ref<T>& r, const T* O, index_t c0, index_t c1) const {
        rows.emit(r.unit, r.t0, r.len, O, ldv, c0, std::min(c1, dv));
    }
    void load_state(index_t u, T* S) const { rows.load_state(u, S, ldv); }
    void store_state(index_t u, const T* S) const { rows.store_state(u, S, ldv); }
    void store_snapshot(index_t u, index_t k, const T* S, index_t c0, index_t c1) const {
        rows.store_snapshot(u, k, S, ldv, c0, c1);
    }
};

// The policy of the linear-attention family (linear attention, GLA with vector or scalar
// gates, any per-head decay): the chunk products of chunkwise.hpp on packed tiles. `Rows`
// is the operator's source of rows:
//   pack(unit, t0, tile, q_buf, k_buf, with_q)   packs q (into q_buf, if given and with_q),
//                                                k (into k_buf, if given), v and gates b + b_lo
//   in_place_qk(unit, t0, q, ldq, k, ldk)         true: q and k rows are read from the user's
//                                                tensors (row pointers and token strides set)
//   emit(unit, t0, len, const T* O, ldv, c0, c1)  columns [c0, c1) of the outputs O [len][ldv]
//   load_state(unit, T* S, ldv) / store_state(unit, const T* S, ldv)
template <class T, class Rows>
struct gated_chunk_policy : chunk_policy_base<T, Rows> {
    using base = chunk_policy_base<T, Rows>;
    using base::causal, base::chunk, base::column_split, base::dk, base::dv, base::gate, base::ldk, base::lda,
        base::ldv, base::rows;
    // The state-only pass packs k, v and gates and does the state product: about 30% of a
    // full pass (swept 0.15-0.6 at H=1, D=64, 2 threads).
    double prefix_cost = 0.3;

    gated_chunk_policy(const Rows& r, index_t dk_, index_t dv_, index_t chunk_, gate_kind g, bool causal_,
                       bool column_split_)
        : base(r, dk_, dv_, chunk_, g) {
        causal = causal_;
        column_split = column_split_;
    }

    // What prepare leaves at the head of a chunk's buffer for output and advance: the tile
    // (q and k read in place or packed), the scores and the gate factors, all pointing into
    // the same buffer or the user's rows.
    struct header {
        chunk_tile<T> tile;
        const T* A = nullptr;
        chunk_factors<T> factors;
    };
    static constexpr std::size_t header_size = base::template header_elements<header>();
    static const header& read_header(const chunk_ref<T>& r) { return base::template header_of<header>(r); }

    std::size_t prepared_size() const {
        return this->prepared_with(
            scratch_carver<T>::size_of(header_size, chunk * lda, chunk * ldk, chunk * ldk, lda, ldk));
    }

    void prepare(const chunk_ref<T>& r, bool outputs) const {
        scratch_carver<T> cv(r.prepared);
        header h;
        h.tile = this->pack_rows(cv, r, header_size, outputs);
        chunk_tile<T>& c = h.tile;
        T* A = cv.take(std::size_t(chunk * lda));
        T* qg = cv.take(std::size_t(chunk * ldk));
        T* kg = cv.take(std::size_t(chunk * ldk));
        T* row_scale = cv.take(std::size_t(lda));
        T* decay = cv.take(std::size_t(ldk));
        // Scores first: they use the qg / kg areas as their scratch.
        if (outputs && causal) chunk_scores(c, A, lda, qg, kg);
        h.A = A;
        h.factors = chunk_gate_factors(c, outputs, qg, kg, row_scale, decay);
        new (static_cast<void*>(r.prepared)) header(h);
    }
    void output(const chunk_ref<T>& r, const T* S, T* O, index_t c0, index_t c1) const {
        const header& h = read_header(r);
        chunk_output(h.tile, h.factors, h.A, lda, S, O, c0, c1, causal);
    }
    void advance(const chunk_ref<T>& r, T* S, index_t c0, index_t c1) const {
        const header& h = read_header(r);
        chunk_advance(h.tile, h.factors, S, c0, c1);
    }
};

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
