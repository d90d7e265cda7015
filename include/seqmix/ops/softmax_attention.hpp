#pragma once
// softmax_attention: FlashAttention-2 on CPU cores. This header is wiring: it plans the
// work units and runs the one attention main loop (kernels/attention_main_loop.hpp) on each.
//
// A work unit is (sequence, KV head, query block). The query rows of all Hq/Hkv heads that
// share the KV head ride in the same unit, so every K/V tile read serves the whole group.
// Units with a full vector of rows keep the rows in the lanes (kernels::rows_in_lanes);
// decode-like units with fewer rows put the keys in the lanes (kernels::keys_in_lanes).
//
// Split-KV by occupancy: when the units are too few to occupy a machine (below
// occupancy_target, whatever the GQA group, vector width or thread count), each unit's key
// span is cut into equal chunks; every chunk leaves its softmax state in a buffer and the
// states merge in chunk order. The cut depends only on the shapes, never on the thread
// count, so results are bitwise identical for any number of threads.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../contract/attention.hpp"
#include "../core/abi.hpp"
#include "../core/parallel.hpp"
#include "../core/scratch.hpp"
#include "../kernels/attention_main_loop.hpp"
#include "../kernels/attention_policies.hpp"
#include "../kernels/attention_tiles.hpp"
#include "../kernels/kv_rows.hpp"
#include "../kernels/softmax_state.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace detail {

// Units below this count get their keys split. A constant (not the thread count) so the
// bits never depend on the machine; 32 units keep 2-16 cores busy with room to balance.
constexpr index_t occupancy_target = 32;
// Chunks shorter than this would spend more on their merge than they save.
constexpr index_t min_split_keys = 512;

struct attention_plan {
    bool keys_in_lanes;          // engine: keys along the lanes (few rows) or rows along them
    index_t q_per_head;          // queries of one head in a unit
    kernels::attention_dims dims;  // rows = heads * group * q_per_head
    index_t head_blocks;           // units per query block: hkv / dims.heads
    std::vector<index_t> seq_first;  // first unit of each sequence (and the total at the end)
    index_t units;
    index_t splits;      // key chunks per unit (1: no split)
    index_t split_keys;  // keys per chunk
};

template <class T>
attention_plan plan_attention(const attention_args<T>& a, const attention_options& opt) {
    const attention_problem& p = a.problem;
    constexpr index_t W = index_t(simd::width<T>);
    index_t max_q = 0, max_k = 0;
    for (index_t s = 0; s < p.num_seqs; ++s) {
        max_q = std::max(max_q, p.sequence(s).q_len);
        max_k = std::max(max_k, p.sequence(s).k_len);
    }
    attention_plan plan{};
    plan.keys_in_lanes = p.group * max_q < W;
    if (plan.keys_in_lanes) {
        plan.q_per_head = std::max<index_t>(max_q, 1);
    } else {
        // Measured on Zen 4 (D 64/128, 1 thread): 8 vectors of query rows beat 2 or 4 (K tiles
        // re-read from L2 more often) and 16. Exception: with a causal or window mask and a
        // sequence of at most 4 such blocks, the masked halves of the diagonal tiles dominate
        // and 4 vectors were 12-15% faster at N = 512 (slower from N = 1024 on at D = 128).
        const bool masked = opt.causal || opt.window_left >= 0 || opt.window_right >= 0;
        const index_t vectors = masked && max_q <= 4 * 8 * W ? 4 : 8;
        plan.q_per_head = std::clamp<index_t>(std::max<index_t>(vectors * W, 32) / p.group, 1, max_q);
    }
    // Decode on a token-major cache ([B,N,H,D]: the heads of a token side by side) takes all
    // KV heads in one unit, so a key tile reads every head's rows in address order; one head
    // per unit would stride a page per key. Head-major caches stream each head on its own.
    const bool heads_side_by_side = std::abs(a.k.stride(2)) < std::abs(a.k.stride(1));
    const index_t heads = plan.keys_in_lanes && heads_side_by_side ? p.hkv : 1;
    plan.dims = {heads * p.group * plan.q_per_head, p.dk, p.dv, heads};
    plan.head_blocks = p.hkv / heads;
    plan.seq_first.assign(std::size_t(p.num_seqs) + 1, 0);
    for (index_t s = 0; s < p.num_seqs; ++s) {
        const index_t blocks = (p.sequence(s).q_len + plan.q_per_head - 1) / plan.q_per_head;
        plan.seq_first[std::size_t(s) + 1] = plan.seq_first[std::size_t(s)] + blocks * plan.head_blocks;
    }
    plan.units = plan.seq_first.back();
    plan.splits = 1;
    plan.split_keys = std::max<index_t>(max_k, 1);
    // Occupancy is counted per KV head, so that a cache's layout (which decides the heads
    // per unit) never changes the chunks, nor the bits.
    const index_t head_units = plan.units * heads;
    if (head_units > 0 && head_units < occupancy_target) {
        const index_t tile = plan.keys_in_lanes ? W : kernels::rows_in_lanes<T>::key_tile;
        const index_t wanted = std::min((occupancy_target + head_units - 1) / head_units,
                                        std::max<index_t>(1, max_k / min_split_keys));
        const index_t chunk = ((max_k + wanted - 1) / wanted + tile - 1) / tile * tile;
        plan.splits = std::max<index_t>(1, (max_k + chunk - 1) / chunk);
        plan.split_keys = chunk;
    }
    return plan;
}

// The keys and values of KV head hk of sequence sq.
template <class T>
kernels::kv_rows<T> kv_of(const attention_args<T>& a, const attention_sequence& sq, index_t hk) {
    kernels::kv_rows<T> kv{};
    kv.k_row = a.k.stride(1);
    kv.v_row = a.v.stride(1);
    kv.k_elem = a.k.stride(3);
    kv.v_elem = a.v.stride(3);
    kv.k_head = a.k.stride(2);
    kv.v_head = a.v.stride(2);
    kv.count = sq.k_len;
    if (sq.pages) {
        kv.k = a.k.ptr(0, 0, hk);
        kv.v = a.v.ptr(0, 0, hk);
        kv.pages = sq.pages;
        kv.page_size = a.problem.page_size;
        kv.k_page = a.k.stride(0);
        kv.v_page = a.v.stride(0);
    } else {
        kv.k = a.k.ptr(sq.batch, sq.k_begin, hk);
        kv.v = a.v.ptr(sq.batch, sq.k_begin, hk);
    }
    return kv;
}

template <class T, class Engine>
void attention_run(const attention_args<T>& a, const attention_options& opt, const attention_plan& plan) {
    const auto& p = a.problem;
    const kernels::band_mask mask{opt.causal, opt.window_left, opt.window_right};
    kernels::logits_transform<T> logits;
    logits.softcap = T(opt.softcap);
    logits.alibi = opt.alibi_slopes != nullptr;
    const T scale = T(p.scale);
    const index_t items = plan.units * plan.splits;
    const std::size_t state_size = Engine::state_size(plan.dims);
    // Split-KV partial states live in the calling thread's reusable scratch: a decode step
    // per token would otherwise map and fault in fresh pages on every call.
    thread_scratch<T> partial_states(1, plan.splits > 1 ? std::size_t(items) * state_size : 0);
    T* const partials = partial_states.get(0);
    const int threads = resolve_threads(opt.num_threads, items);
    thread_scratch<T> scratch(threads, Engine::scratch_size(plan.dims));
    thread_scratch<index_t> bounds(threads, Engine::bounds_size(plan.dims));

    // Unit u: sequence s, KV heads from hk (dims.heads of them), the query block from i0.
    struct unit_rows {
        index_t hk, i0;
        attention_sequence sq;
    };
    auto unit_of = [&](index_t u) {
        const auto& first = plan.seq_first;
        const index_t s = index_t(std::upper_bound(first.begin(), first.end(), u) - first.begin()) - 1;
        const index_t local = u - first[std::size_t(s)];
        return unit_rows{local % plan.head_blocks * plan.dims.heads, local / plan.head_blocks * plan.q_per_head,
                         p.sequence(s)};
    };
    // Row r of a unit: query head h and query i, or false past the unit's queries. Each KV
    // head has group * q_per_head consecutive rows, head by head, query by query.
    const index_t head_rows = p.group * plan.q_per_head;
    auto row_of = [&](const unit_rows& un, index_t r, index_t& h, index_t& i) {
        h = (un.hk + r / head_rows) * p.group + r % head_rows / plan.q_per_head;
        i = un.i0 + r % plan.q_per_head;
        return r < plan.dims.rows && i < un.sq.q_len;
    };

    // Where row r of a unit goes: its output row and lse entry (false past the queries).
    auto destination_of = [&](const unit_rows& un) {
        return [&, un](index_t r, T*& out, T*& lse) {
            index_t h, i;
            if (!row_of(un, r, h, i)) return false;
            out = a.out.ptr(un.sq.batch, un.sq.q_begin + i, h);
            lse = a.lse.empty() ? nullptr : a.lse.ptr(un.sq.batch, h, un.sq.q_begin + i);
            return true;
        };
    };

    parallel_for(items, threads, [&](index_t item, int t) {
        const index_t u = item / plan.splits, chunk = item % plan.splits;
        const unit_rows un = unit_of(u);
        const attention_sequence& sq = un.sq;
        Engine engine(plan.dims, scratch.get(t), bounds.get(t));
        if (plan.splits > 1) engine.place_state(partials + std::size_t(item) * state_size);
        // The rows' visible keys; their union is the unit's span, their intersection runs unmasked.
        index_t kmin = std::numeric_limits<index_t>::max(), kmax = -1;
        index_t max_lo = 0, min_hi = std::numeric_limits<index_t>::max();
        for (index_t r = 0; r < engine.rows(); ++r) {
            index_t h, i;
            if (!row_of(un, r, h, i)) {
                engine.clear_row(r);
                continue;
            }
            const index_t diag = i + sq.k_len - sq.q_len;
            const kernels::key_range keys = mask.keys_of(diag, sq.k_len);
            max_lo = std::max(max_lo, keys.lo);
            min_hi = std::min(min_hi, keys.hi);
            if (!keys.empty()) {
                kmin = std::min(kmin, keys.lo);
                kmax = std::max(kmax, keys.hi);
            }
            const T slope = opt.alibi_slopes ? T(opt.alibi_slopes[h]) : T(0);
            engine.set_row(r, a.q.ptr(sq.batch, sq.q_begin + i, h), a.q.stride(3), scale, keys, diag, slope);
        }
        engine.start();  // queries packed, state empty
        const kernels::softmax_state<T> state = engine.state();
        const index_t begin = kmax < 0 ? 0 : kmin + chunk * plan.split_keys;  // kmax < 0: no row sees a key
        const kernels::interval_schedule keys{begin, std::min(kmax + 1, begin + plan.split_keys), max_lo, min_hi};
        kernels::attention_main_loop(engine, keys, kv_of(a, sq, un.hk), logits);
        if (plan.splits > 1) return;  // merged below
        kernels::normalize_rows(state, engine.rows(), a.out.stride(3), destination_of(un));
    });
    if (plan.splits == 1) return;

    // Merge each unit's chunks in chunk order, then normalize.
    parallel_for(plan.units, resolve_threads(opt.num_threads, plan.units), [&](index_t u, int) {
        const unit_rows un = unit_of(u);
        auto state_of = [&](index_t chunk) {
            return Engine::state_in(partials + std::size_t(u * plan.splits + chunk) * state_size, plan.dims);
        };
        const kernels::softmax_state<T> total = state_of(0);
        for (index_t r = 0; r < plan.dims.rows; ++r) {
            index_t h, i;
            if (!row_of(un, r, h, i)) continue;
            for (index_t chunk = 1; chunk < plan.splits; ++chunk) kernels::merge_row(total, state_of(chunk), r);
        }
        kernels::normalize_rows(total, plan.dims.rows, a.out.stride(3), destination_of(un));
    });
}

}  // namespace detail

// out[b,i,h,:] = softmax_j(score(i, j)) V[b,j,h/(Hq/Hkv),:] with the contract's score,
// masks and options; lse (optional, [B,Hq,Nq]) receives each row's log-sum-exp.
template <class QV, class KV, class VV, class OV>
void softmax_attention(const QV& q, const KV& k, const VV& v, const OV& out,
                       const attention_options& opt = {},
                       tensor_view<typename OV::value_type, 3> lse = {}) {
    using T = typename OV::value_type;
    const auto a = detail::prepare_attention(q, k, v, out, lse, opt, "softmax_attention");
    const detail::attention_plan plan = detail::plan_attention<T>(a, opt);
    if (plan.keys_in_lanes)
        detail::attention_run<T, kernels::keys_in_lanes<T>>(a, opt, plan);
    else
        detail::attention_run<T, kernels::rows_in_lanes<T>>(a, opt, plan);
}

SEQMIX_ABI_END
}  // namespace seqmix
