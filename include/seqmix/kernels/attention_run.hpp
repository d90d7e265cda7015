#pragma once
// The attention run: planning, work units, split-KV and the merge, once for every attention
// operator. An operator is a Variant (flashinfer's variant structs, CUTLASS's mask policies):
// it says what its problems, rows, keys and schedule are; the run deals the work to threads,
// runs the one main loop (kernels/attention_main_loop.hpp) on every unit with the engine the
// unit's shape calls for (kernels/attention_tiles.hpp), merges the split-KV partial states and
// writes the rows. Engines know no variant; the run knows no mask.
//
// A Variant (see docs/design.md, "Attention variants"), over element type T:
//   using value_type = T;
//   attention_heads heads() const;               KV heads, GQA group, head dims
//   index_t problems() const;                    independent sub-problems (sequences, the
//                                                residues of a dilated window, queries of a
//                                                gather list, ...)
//   Problem problem(index_t p) const;            problem p, with
//     problem_extent extent() const;               its queries per head and keys,
//     attention_row<T, Q, O> row(index_t h, index_t i) const;   query i of head h,
//     kv_rows<K, V> keys(index_t hk) const;               the keys of KV head hk,
//     Schedule schedule(const unit_span& span) const;     the keys a unit visits;
//   const Logits& logits() const;                logits transform (softcap, ALiBi, ...)
//   double scale() const;                        score scale (folded into the packed queries)
//   index_t q_elem() const, out_elem() const;    head-dim strides of queries and outputs
// and, from attention_variant_base unless it says otherwise: banded() (rows see bands of
// keys: picks smaller query blocks), gathers() (keys are a gather list: keys in lanes always),
// query_block(p, suggested) (queries per head in a unit), round_probabilities() (the
// attention_options flag of that name), bf16_dot_products() (bf16 inputs multiplied by
// vdpbf16ps rather than widened: kernels/host_tuning.hpp), kv_heads_interleaved() (a token's
// KV heads side by side: decode units may take several heads).
//
// Work units are (problem, KV heads, query block). The query rows of all heads sharing a KV
// head ride in one unit, so every K/V tile read serves the whole group. Units whose rows fill
// a vector keep them in the lanes (rows_in_lanes); fewer rows put the keys in the lanes.
//
// Determinism and batch invariance: everything that decides a row's arithmetic (the engine,
// the query block, the split-KV cut) is chosen per problem from that problem's own lengths,
// never from the other problems of the call or the thread count, so a sequence gives the same
// bits alone or in any batch, on any number of threads. Split-KV: a problem with fewer than
// occupancy_target units (counted per KV head) has each unit's keys cut into equal chunks;
// each chunk leaves its softmax state in a buffer and the states merge in chunk order. How
// many KV heads a decode unit takes never changes a row's arithmetic, so that alone follows
// the thread count: enough items for every thread.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/abi.hpp"
#include "../core/parallel.hpp"
#include "../core/scratch.hpp"
#include "../core/tensor_view.hpp"
#include "attention_main_loop.hpp"
#include "attention_policies.hpp"
#include "attention_tiles.hpp"
#include "host_tuning.hpp"
#include "kv_rows.hpp"
#include "softmax_state.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

// Problems with fewer units than this (counted per KV head) get their keys split. A
// constant, so the bits never depend on the machine; 64 units fill 64 cores at batch 1.
constexpr index_t occupancy_target = 64;
// Chunks shorter than this would spend more on their merge than they save.
constexpr index_t min_split_keys = 512;

struct attention_heads {
    index_t hkv, group, dk, dv;
};

struct problem_extent {
    index_t q_len;  // queries per head
    index_t k_len;  // keys (kv_rows indices)
};

// Query i of head h of a problem, as a variant describes it. Queries and outputs may be
// stored as Q and O (bf16, ...); the arithmetic is in T.
template <class T, class Q = T, class O = T>
struct attention_row {
    using compute_type = T;
    using query_type = Q;
    using output_type = O;
    const Q* q = nullptr;  // the query (q_elem apart)
    O* out = nullptr;      // its output row (out_elem apart)
    T* lse = nullptr;      // its log-sum-exp, or nullptr
    key_range keys{};      // the keys it may see; a schedule may narrow them tile by tile
    index_t diag = 0;      // its position on the key axis (ALiBi's |diag - j|)
    T slope;               // ALiBi slope (0: none)
    T sink;                // sink logit joining its softmax denominator (-inf: none)
    T k_scale = T(1);      // what the stored keys of its KV head are multiplied by (fp8 caches)
    T v_scale = T(1);      // ... and the stored values
};

// What a schedule learns of the unit it serves: its rows' keys (per row, and their union
// and intersection) and its query block.
struct unit_span {
    index_t kmin, kmax;      // union of the rows' keys (kmax < kmin: no row sees a key)
    index_t max_lo, min_hi;  // keys every row sees
    const index_t* lo;       // per row of the engine (rows without a query: empty)
    const index_t* hi;
    index_t i0;       // the unit's first query (per head)
    index_t q_count;  // its queries per head
    index_t hk0;      // its first KV head (schedules that differ per head: block lists)
};

// Defaults of the optional Variant members.
struct attention_variant_base {
    bool banded() const { return false; }
    bool gathers() const { return false; }
    index_t query_block(index_t, index_t suggested) const { return suggested; }
    bool kv_heads_interleaved() const { return false; }
    index_t visited_keys(index_t, index_t k_len) const { return k_len; }  // keys a unit visits at most
    bool round_probabilities() const { return false; }  // bf16 dot products: P rounded to bf16 (opt-in)
    bool bf16_dot_products() const { return bf16_dot_products_pay(); }
};

// The key storage of a variant's problems (kv_rows<K, V>: keys and values stored as K, V), and
// their rows (attention_row<T, Q, O>: queries and outputs stored as Q, O).
template <class Variant>
using keys_of = decltype(std::declval<const Variant&>().problem(0).keys(0));
template <class Variant>
using row_type_of = decltype(std::declval<const Variant&>().problem(0).row(0, 0));

// The engines of a variant. Units whose rows fill the lanes run rows_in_lanes over kv_rows, or
// the variant's own (`using engine = ...`: an engine over another key storage, e.g.
// neighbourhood windows), which then runs every unit; the others run keys_in_lanes.
// Queries, keys and values all stored as bf16 on an AVX512-BF16 target: bf16 dot products
// where the variant asks for them (bf16_dot_products()), float FMAs on widened rows otherwise.
template <class Variant>
constexpr bool bf16_dot_of = SEQMIX_HAS_BF16_DOT&& std::is_same_v<typename Variant::value_type, float>&& std::is_same_v<
    typename row_type_of<Variant>::query_type, bf16>&& std::is_same_v<keys_of<Variant>, kv_rows<bf16, bf16>>;

template <class Variant, class = void>
struct engines_of {
    template <bool Bf16Dot>
    using rows_engine = rows_in_lanes<typename Variant::value_type, lane_panel_products<typename Variant::value_type>,
                                      keys_of<Variant>, Bf16Dot>;
    using wide = rows_engine<bf16_dot_of<Variant>>;
    using widened = rows_engine<false>;
    using narrow = keys_in_lanes<typename Variant::value_type, keys_of<Variant>>;
    static constexpr bool own = false;
};
template <class Variant>
struct engines_of<Variant, std::void_t<typename Variant::engine>> {
    using wide = typename Variant::engine;
    using widened = wide;
    using narrow = keys_in_lanes<typename Variant::value_type>;  // sizes only: never runs
    static constexpr bool own = true;
};

// Calls f with a null pointer to the rows-in-lanes engine a run takes: the bf16 dot-product one
// when the plan says so, the one on widened rows otherwise.
template <class Variant, class F>
decltype(auto) with_wide_engine(bool bf16_dot, F&& f) {
    using engines = engines_of<Variant>;
    if constexpr (bf16_dot_of<Variant>)
        if (!bf16_dot) return f(static_cast<typename engines::widened*>(nullptr));
    return f(static_cast<typename engines::wide*>(nullptr));
}

// How one problem runs.
struct problem_plan {
    bool keys_in_lanes = false;         // engine: keys along the lanes (few rows) or rows along them
    index_t q_len = 0, q_per_head = 0;  // queries per head: all, and per unit
    index_t query_blocks = 0;
    index_t heads = 0;           // KV heads per unit
    index_t splits = 1;          // key chunks per unit (1: no split)
    index_t split_keys = 0;      // keys per chunk
    attention_dims dims;         // rows = heads * group * q_per_head
    index_t first_item = 0;      // items before this problem's
    index_t first_merge = 0;     // split units before this problem's (the merge's items)
    std::size_t partials = 0;    // offset of its partial states
    std::size_t state_size = 0;  // elements per partial state

    index_t head_blocks(index_t hkv) const { return hkv / heads; }
    index_t units(index_t hkv) const { return query_blocks * head_blocks(hkv); }
};

struct attention_plan {
    std::vector<problem_plan> problems;
    index_t items = 0;                    // units x splits, all problems
    index_t merges = 0;                   // units with splits > 1
    std::vector<index_t> split_problems;  // problems with splits > 1, in order
    std::size_t partials = 0;             // elements of all partial states
    std::size_t scratch = 0;              // per thread, elements of T
    std::size_t bounds = 0;               // per thread, indices
    std::size_t rows = 0;                 // per thread, rows of a unit (engine lanes)
    int threads = 1;
    bool bf16_dot = false;  // the rows-in-lanes engine runs bf16 dot products

    // The problem of item n: the last one whose first item is <= n.
    index_t problem_of_item(index_t n) const {
        auto it = std::upper_bound(problems.begin(), problems.end(), n,
                                   [](index_t x, const problem_plan& pp) { return x < pp.first_item; });
        return index_t(it - problems.begin()) - 1;
    }
    // The problem of merge item n (a split unit).
    index_t problem_of_merge(index_t n) const {
        auto it = std::upper_bound(split_problems.begin(), split_problems.end(), n,
                                   [&](index_t x, index_t p) { return x < problems[std::size_t(p)].first_merge; });
        return *(it - 1);
    }
};

namespace detail {
// Unit `u` of a problem: its KV heads from hk0 and its query block from i0.
struct unit_place {
    index_t hk0, i0;
};
inline unit_place place_of(const problem_plan& pp, index_t hkv, index_t u) {
    const index_t hb = pp.head_blocks(hkv);
    return {u % hb * pp.heads, u / hb * pp.q_per_head};
}
// Row r of a unit: query head h and query i, false past the unit's queries. Each KV head has
// group * q_per_head consecutive rows, head by head, query by query.
inline bool row_of(const problem_plan& pp, index_t group, const unit_place& un, index_t r, index_t& h, index_t& i) {
    const index_t head_rows = group * pp.q_per_head;
    h = (un.hk0 + r / head_rows) * group + r % head_rows / pp.q_per_head;
    i = un.i0 + r % pp.q_per_head;
    return r < pp.dims.rows && i < pp.q_len;
}
}  // namespace detail

namespace detail {
template <class Wide, class Variant>
attention_plan plan_attention_with(const Variant& var, int threads) {
    using T = typename Variant::value_type;
    using Narrow = typename engines_of<Variant>::narrow;
    constexpr index_t W = index_t(simd::width<T>);
    const attention_heads hd = var.heads();
    const index_t n = var.problems();
    attention_plan plan;
    plan.problems.resize(std::size_t(n));
    bool any_decode = false;
    for (index_t p = 0; p < n; ++p) {
        problem_plan& pp = plan.problems[std::size_t(p)];
        const problem_extent ex = var.problem(p).extent();
        pp.q_len = ex.q_len;
        pp.keys_in_lanes = !engines_of<Variant>::own && (var.gathers() || hd.group * ex.q_len < W);
        if (pp.keys_in_lanes) {
            pp.q_per_head = std::max<index_t>(ex.q_len, 1);
        } else {
            // Measured on Zen 4 (D 64/128, 1 thread): 8 vectors of query rows beat 2 or 4 (K
            // tiles re-read from L2 more often) and 16. With a mask and at most 4 such blocks,
            // the masked halves of the diagonal tiles dominate and 4 vectors were 12-15% faster
            // at N = 512 (slower from N = 1024 on at D = 128).
            const index_t vectors = var.banded() && ex.q_len <= index_t(4 * 8) * W ? 4 : 8;
            pp.q_per_head = std::clamp<index_t>(std::max<index_t>(vectors * W, 32) / hd.group, 1, ex.q_len);
        }
        pp.q_per_head = std::max<index_t>(1, var.query_block(p, pp.q_per_head));
        pp.query_blocks = (ex.q_len + pp.q_per_head - 1) / pp.q_per_head;
        pp.heads = 1;
        any_decode = any_decode || pp.keys_in_lanes;
        // Split-KV from this problem alone, counted per KV head (so that the heads per unit,
        // which follow the cache layout and the threads, never change the chunks).
        pp.splits = 1;
        const index_t visited = var.visited_keys(p, ex.k_len);
        pp.split_keys = std::max<index_t>(visited, 1);
        const index_t head_units = pp.query_blocks * hd.hkv;
        const index_t wanted =
            head_units > 0 ? std::min((occupancy_target + head_units - 1) / head_units, visited / min_split_keys) : 1;
        if (wanted > 1) {
            const index_t tile = pp.keys_in_lanes ? W : Wide::key_tile;
            const index_t chunk = ((visited + wanted - 1) / wanted + tile - 1) / tile * tile;
            pp.splits = std::max<index_t>(1, (visited + chunk - 1) / chunk);
            pp.split_keys = chunk;
        }
    }
    // Decode on a cache whose heads sit side by side (token-major [B,N,H,D], paged) takes
    // several KV heads per unit, so a key tile reads every head's rows in address order (one
    // head per unit strides a whole token per key): as many as leave an item per thread.
    auto count_items = [&](index_t heads) {
        index_t items = 0;
        for (const problem_plan& pp : plan.problems)
            items += pp.query_blocks * (pp.keys_in_lanes ? hd.hkv / heads : hd.hkv) * pp.splits;
        return items;
    };
    index_t heads = 1;
    if (any_decode && var.kv_heads_interleaved())
        for (index_t h = hd.hkv; h >= 1; --h)
            if (hd.hkv % h == 0 && (count_items(h) >= threads || h == 1)) {
                heads = h;
                break;
            }
    for (problem_plan& pp : plan.problems) {
        if (pp.keys_in_lanes) pp.heads = heads;
        pp.dims = {pp.heads * hd.group * pp.q_per_head, hd.dk, hd.dv, pp.heads, var.round_probabilities()};
        pp.first_item = plan.items;
        plan.items += pp.units(hd.hkv) * pp.splits;
        pp.first_merge = plan.merges;
        pp.state_size = pp.keys_in_lanes ? Narrow::state_size(pp.dims) : Wide::state_size(pp.dims);
        pp.partials = plan.partials;
        if (pp.splits > 1 && pp.query_blocks > 0) {
            plan.split_problems.push_back(index_t(&pp - plan.problems.data()));
            plan.merges += pp.units(hd.hkv);
            plan.partials += std::size_t(pp.units(hd.hkv) * pp.splits) * pp.state_size;
        }
        if (pp.query_blocks == 0) continue;
        const std::size_t lanes = std::size_t(pp.keys_in_lanes ? pp.dims.rows : Wide::lanes_for(pp.dims.rows));
        plan.rows = std::max(plan.rows, lanes);
        plan.scratch =
            std::max(plan.scratch, pp.keys_in_lanes ? Narrow::scratch_size(pp.dims) : Wide::scratch_size(pp.dims));
        plan.bounds = std::max(
            plan.bounds, 2 * lanes + (pp.keys_in_lanes ? Narrow::bounds_size(pp.dims) : Wide::bounds_size(pp.dims)));
    }
    plan.threads = resolve_threads(threads, plan.items);
    return plan;
}
}  // namespace detail

// The plan of a run on `threads` threads (as available_threads gives them). Only the heads
// per decode unit depend on the thread count.
template <class Variant>
attention_plan plan_attention(const Variant& var, int threads) {
    const bool bf16_dot = bf16_dot_of<Variant> && var.bf16_dot_products();
    attention_plan plan = with_wide_engine<Variant>(bf16_dot, [&](auto* wide) {
        return detail::plan_attention_with<std::remove_pointer_t<decltype(wide)>>(var, threads);
    });
    plan.bf16_dot = bf16_dot;
    return plan;
}

namespace detail {

// Where a row's output goes.
template <class Row>
using destination_type = row_destination<typename Row::output_type, typename Row::compute_type>;
template <class Row>
destination_type<Row> destination_of_row(const Row& row) {
    return {row.out, row.lse, row.sink, row.v_scale};
}

// Where row r of a unit goes (nowhere past the queries).
template <class Problem>
auto destination_of(const Problem& prob, index_t group, const problem_plan& pp, const unit_place& un) {
    using Row = decltype(prob.row(0, 0));
    return [&prob, group, &pp, un](index_t r) -> destination_type<Row> {
        index_t h = 0, i = 0;
        if (!row_of(pp, group, un, r, h, i)) return {};
        return destination_of_row(prob.row(h, i));
    };
}

// One item: a unit's chunk of keys through the main loop, into its own state (split) or
// normalized into the outputs.
template <class Engine, class Variant, class T = typename Variant::value_type, class Row = row_type_of<Variant>>
void run_item(const Variant& var, const problem_plan& pp, index_t p, index_t local, T* scratch, index_t* bounds,
              Row* rows, T* partials) {
    const index_t u = local / pp.splits, chunk = local % pp.splits;
    const attention_heads hd = var.heads();
    const unit_place un = place_of(pp, hd.hkv, u);
    const auto prob = var.problem(p);
    Engine engine(pp.dims, scratch, bounds);
    if (pp.splits > 1) engine.place_state(partials + pp.partials + std::size_t(local) * pp.state_size);
    index_t* lo = bounds + Engine::bounds_size(pp.dims);
    index_t* hi = lo + engine.rows();
    // The rows' keys: their union is the unit's span, their intersection runs unmasked.
    unit_span span{
        std::numeric_limits<index_t>::max(),       -1,    0, std::numeric_limits<index_t>::max(), lo, hi, un.i0,
        std::min(pp.q_per_head, pp.q_len - un.i0), un.hk0};
    for (index_t r = 0; r < engine.rows(); ++r) {
        index_t h = 0, i = 0;
        if (!row_of(pp, hd.group, un, r, h, i)) {
            engine.clear_row(r);
            lo[r] = 1;
            hi[r] = 0;
            rows[r].out = nullptr;
            continue;
        }
        const Row& row = rows[r] = prob.row(h, i);
        lo[r] = row.keys.lo;
        hi[r] = row.keys.hi;
        span.max_lo = std::max(span.max_lo, row.keys.lo);
        span.min_hi = std::min(span.min_hi, row.keys.hi);
        if (!row.keys.empty()) {
            span.kmin = std::min(span.kmin, row.keys.lo);
            span.kmax = std::max(span.kmax, row.keys.hi);
        }
        engine.set_row(r, row.q, var.q_elem(), T(var.scale()) * row.k_scale, row.diag, row.slope);
    }
    if (span.kmax < span.kmin) span.kmin = 0, span.kmax = -1;
    engine.start();  // queries packed, state empty
    const auto keys = prob.schedule(span).slice(chunk * pp.split_keys, pp.split_keys);
    attention_main_loop(engine, keys, prob.keys(un.hk0), var.logits());
    if (pp.splits > 1) return;  // merged later
    normalize_rows<typename Row::output_type>(engine.state(), engine.rows(), var.out_elem(), [&](index_t r) {
        return destination_of_row(rows[r]);  // out == nullptr: no query
    });
}

// The query rows of an item, requested ahead of their use: a unit's rows are a head's queries
// a token apart (2 KB at H = 8, D = 64), a walk the hardware prefetchers do not follow, and
// packing them cold took 12% of a sliding-window run (window 128) on a Xeon.
template <class Variant>
void prefetch_queries(const Variant& var, const attention_plan& plan, index_t item) {
    if (item >= plan.items) return;
    const index_t p = plan.problem_of_item(item);
    const problem_plan& pp = plan.problems[std::size_t(p)];
    const attention_heads hd = var.heads();
    const unit_place un = place_of(pp, hd.hkv, (item - pp.first_item) / pp.splits);
    const auto prob = var.problem(p);
    for (index_t r = 0; r < pp.dims.rows; ++r) {
        index_t h = 0, i = 0;
        if (row_of(pp, hd.group, un, r, h, i)) simd::prefetch(prob.row(h, i).q, std::size_t(hd.dk * var.q_elem()));
    }
}

// A split unit: its chunks' states merged in chunk order, then normalized.
template <class Engine, class Variant, class T = typename Variant::value_type>
void merge_unit(const Variant& var, const problem_plan& pp, index_t p, index_t u, T* partials) {
    const attention_heads hd = var.heads();
    const unit_place un = place_of(pp, hd.hkv, u);
    auto state_of = [&](index_t chunk) {
        return Engine::state_in(partials + pp.partials + std::size_t(u * pp.splits + chunk) * pp.state_size, pp.dims);
    };
    const softmax_state<T> total = state_of(0);
    for (index_t r = 0; r < pp.dims.rows; ++r) {
        index_t h = 0, i = 0;
        if (!row_of(pp, hd.group, un, r, h, i)) continue;
        for (index_t chunk = 1; chunk < pp.splits; ++chunk) merge_row(total, state_of(chunk), r);
    }
    const auto prob = var.problem(p);
    normalize_rows<typename row_type_of<Variant>::output_type>(total, pp.dims.rows, var.out_elem(),
                                                               destination_of(prob, hd.group, pp, un));
}

// The run under a plan, with its rows-in-lanes engine.
template <class Wide, class Variant>
void attention_run_with(const Variant& var, const attention_plan& plan) {
    using T = typename Variant::value_type;
    // Split-KV partial states live in the calling thread's reusable scratch: a decode step
    // per token would otherwise map and fault in fresh pages on every call.
    thread_scratch<T> partial_states(1, plan.partials);
    T* const partials = partial_states.get(0);
    thread_scratch<T> scratch(plan.threads, plan.scratch);
    thread_scratch<index_t> bounds(plan.threads, plan.bounds);
    thread_scratch<row_type_of<Variant>> rows(plan.threads, plan.rows);  // each unit's rows, as set
    parallel_for(plan.items, plan.threads, [&](index_t item, int t) {
        const index_t p = plan.problem_of_item(item);
        const problem_plan& pp = plan.problems[std::size_t(p)];
        const index_t local = item - pp.first_item;
        detail::prefetch_queries(var, plan, item + plan.threads);  // this thread's next item
        if constexpr (!engines_of<Variant>::own)
            if (pp.keys_in_lanes)
                return detail::run_item<typename engines_of<Variant>::narrow>(var, pp, p, local, scratch.get(t),
                                                                              bounds.get(t), rows.get(t), partials);
        detail::run_item<Wide>(var, pp, p, local, scratch.get(t), bounds.get(t), rows.get(t), partials);
    });
    if (plan.merges == 0) return;
    parallel_for(plan.merges, resolve_threads(plan.threads, plan.merges), [&](index_t m, int) {
        const index_t p = plan.problem_of_merge(m);
        const problem_plan& pp = plan.problems[std::size_t(p)];
        const index_t u = m - pp.first_merge;
        if constexpr (!engines_of<Variant>::own)
            if (pp.keys_in_lanes)
                return detail::merge_unit<typename engines_of<Variant>::narrow>(var, pp, p, u, partials);
        detail::merge_unit<Wide>(var, pp, p, u, partials);
    });
}
}  // namespace detail

// Runs a variant on `num_threads` threads (0: the OpenMP default) under `plan`.
template <class Variant>
void attention_run(const Variant& var, const attention_plan& plan) {
    if (plan.items == 0) return;
    with_wide_engine<Variant>(plan.bf16_dot, [&](auto* wide) {
        detail::attention_run_with<std::remove_pointer_t<decltype(wide)>>(var, plan);
    });
}

// Plans and runs a variant.
template <class Variant>
void attention_run(const Variant& var, int num_threads) {
    attention_run(var, plan_attention(var, available_threads(num_threads)));
}

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
