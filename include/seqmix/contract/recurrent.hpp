#pragma once
// The contract of the recurrent family (linear attention, GLA; later the delta rule):
// options structs, the problem description, and the argument validation shared by the
// fast operators, their decode steps and seqmix::reference.
#include <algorithm>
#include <array>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/executor.hpp"
#include "../core/abi.hpp"
#include "../core/tensor_view.hpp"
#include "../core/storage_types.hpp"
#include "../core/validate.hpp"

namespace seqmix {

// Feature maps of linear attention (phi, applied to q and k); identity elsewhere.
enum class feature_map { identity, elu_plus_one, relu, taylor2 };

// A state_indices entry that skips its batch row: no state is touched and the row's output
// is left as it was (vLLM's and mamba's padding slot).
constexpr std::int32_t pad_slot = -1;

// Serving options of the full recurrent operators (every *_options of linear_attention,
// gated_linear_attention, the delta rule and the state-space scans derives from it): the
// states as one pool, as vLLM's cache_indices / has_initial_state and mamba's conv_states.
struct state_pool_options {
    // [num_seqs]: sequence s starts from and writes its state to pool slot state_indices[s];
    // pad_slot skips the sequence (outputs untouched). initial_state and final_state are then
    // the same [slots, ...] view. nullptr: dense states, sequence s in row s.
    const std::int32_t* state_indices = nullptr;
    // [num_seqs], nullptr = all 1: sequence s starts from zeros where it is 0.
    const std::uint8_t* has_initial_state = nullptr;
    // Snapshots (speculative decoding with rollback, prefix caching; pools only): with
    // snapshot_interval > 0 the state after token j of sequence s (counted within the call,
    // j a multiple of the interval) is also written to pool slot
    // snapshot_indices[s * max_snapshots + j / snapshot_interval - 1]; -1 skips it.
    int snapshot_interval = 0;
    const std::int32_t* snapshot_indices = nullptr;  // [num_seqs, max_snapshots] row-major
    int max_snapshots = 0;
};

// Per-head gates from raw projections, computed in the kernel as the tokens are read (no
// pass of their own; flash-linear-attention's use_gate_in_kernel, sglang's fused_gdn_gating):
// with A_log, the per-head g the operator takes is the projection a, and the log gate is
//   g = -exp(A_log[h]) * softplus(a + dt_bias[h]).
// Options of the gated delta rule and of GLA with a per-head gate, and of their steps.
struct gate_projection_options {
    const float* A_log = nullptr;    // [Hv]; nullptr: g is the log gate itself
    const float* dt_bias = nullptr;  // [Hv], with A_log; nullptr: 0
};

// Options of the decode steps: one token per batch row, states updated in place.
struct recurrent_step_options {
    double scale = 0;
    const std::int32_t* state_indices = nullptr;  // [B]: row b uses state slot state_indices[b] (pad_slot: skip)
    int num_threads = 0;
    seqmix::executor* executor = nullptr;  // nullptr = OpenMP; else its threads (core/executor.hpp)
};

SEQMIX_ABI_BEGIN

// Feature dimension of phi for head dim d.
inline index_t feature_dim(feature_map f, index_t d) { return f == feature_map::taylor2 ? 1 + d + d * d : d; }

namespace detail {

// One sequence of a recurrent problem.
struct recurrent_sequence {
    index_t batch, begin, len;
};

// The sequences of a call: batch rows of n_padded tokens each, or packed along the seq axis
// by cu_seqlens (batch 1); and where their states are (state_pool_options).
struct packed_sequences {
    index_t num_seqs = 0, n_padded = 0;
    const std::int32_t* cu_seqlens = nullptr;
    const std::int32_t* slots = nullptr;           // state_indices: a pool; nullptr: row s
    const std::uint8_t* has_initial = nullptr;     // nullptr: every sequence reads its state
    index_t snapshot_interval = 0;                 // tokens between snapshots; 0: none
    const std::int32_t* snapshot_slots = nullptr;  // [num_seqs][max_snapshots]
    index_t max_snapshots = 0;
    // A pad_slot sequence has no tokens: nothing is computed or written for it.
    recurrent_sequence sequence(index_t s) const {
        if (slots && slots[s] == pad_slot) return {cu_seqlens ? 0 : s, cu_seqlens ? cu_seqlens[s] : 0, 0};
        if (cu_seqlens) return {0, cu_seqlens[s], cu_seqlens[s + 1] - cu_seqlens[s]};
        return {s, 0, n_padded};
    }
    // The state row of sequence s (its pool slot, or s); pad_slot (< 0): none.
    index_t state_slot(index_t s) const { return slots ? index_t(slots[s]) : s; }
    // Whether sequence s starts from its stored state (else from zeros).
    bool reads_state(index_t s) const { return state_slot(s) >= 0 && (!has_initial || has_initial[s] != 0); }
    // Whether sequence s writes its final state.
    bool writes_state(index_t s) const { return state_slot(s) >= 0; }
    // Snapshots of sequence s: one after every snapshot_interval of its tokens (none for pad_slot).
    index_t snapshot_count(index_t s) const { return snapshot_interval > 0 ? sequence(s).len / snapshot_interval : 0; }
    // The pool slot of snapshot k of sequence s, the state after token (k + 1) * interval; < 0: skipped.
    index_t snapshot_slot(index_t s, index_t k) const { return snapshot_slots[s * max_snapshots + k]; }
    // The slot the state after token t (within the call) of sequence s is a snapshot in; < 0: none.
    index_t snapshot_after(index_t s, index_t t) const {
        if (snapshot_interval == 0 || (t + 1) % snapshot_interval != 0) return -1;
        return snapshot_slot(s, (t + 1) / snapshot_interval - 1);
    }
};

// The sequences of x ([B, N, ...]), cu_seqlens checked when given.
template <class V>
packed_sequences sequences_of(const V& x, const std::int32_t* cu_seqlens, int num_seqs, const char* op,
                              const char* arg) {
    packed_sequences q{x.extent(0), x.extent(1), cu_seqlens};
    if (cu_seqlens) {
        check(x.extent(0) == 1, op, arg, "batch 1 with cu_seqlens (packed sequences)", x.extent(0));
        check_cu_seqlens(cu_seqlens, num_seqs, x.extent(1), op, "cu_seqlens");
        q.num_seqs = num_seqs;
    }
    return q;
}

struct recurrent_problem : packed_sequences {
    index_t hk = 0, hv = 0, group = 0, dk = 0, dv = 0;  // dk: feature dim (after phi); group = hv / hk
    index_t dk_in = 0;                                  // head dim of q and k before phi
    double scale = 0;
};

// The state view sequence s of `p` starts from (empty: zeros) and the one it writes its final
// state to (empty: none), from any arguments with initial_state and final_state; the row of
// s in them is p.state_slot(s).
template <class Args>
auto initial_of(const Args& a, const packed_sequences& p, index_t s) {
    return p.reads_state(s) ? a.initial_state : decltype(a.initial_state){};
}
template <class Args>
auto final_of(const Args& a, const packed_sequences& p, index_t s) {
    return p.writes_state(s) ? a.final_state : decltype(a.final_state){};
}

// The element types the recurrent family takes: every view in the compute type T (float or
// double), or, with float arithmetic, any of them in bf16 or fp16 (read as floats, outputs
// and states rounded once on store).
template <class T, class... E>
constexpr bool recurrent_types = ((std::is_same_v<E, T> || (std::is_same_v<T, float> &&
                                                            (std::is_same_v<E, bf16> || std::is_same_v<E, fp16>))) &&
                                  ...);

template <class T, class... E>
constexpr void check_recurrent_types() {
    static_assert(recurrent_types<T, E...>,
                  "seqmix: recurrent operators take every tensor in one type (float or double), or float arithmetic "
                  "with any tensor in float, bf16 or fp16");
}

// The arguments every recurrent operator has; operators with more inputs extend it
// (gla_args adds the gate, the delta rule beta and its gate). T computes; each view keeps
// its own element type (Q, K, V, O, the states SI and SO).
template <class T, class Q = T, class K = T, class V = T, class O = T, class SI = T, class SO = T>
struct recurrent_args {
    using compute_type = T;
    tensor_view<const Q, 4> q;
    tensor_view<const K, 4> k;
    tensor_view<const V, 4> v;
    tensor_view<O, 4> out;
    tensor_view<const SI, 4> initial_state;
    tensor_view<SO, 4> final_state;
    recurrent_problem problem;

    // The q and k rows of unit u (sequence-major (sequence, value head)) from token t0, read
    // in place: when both are stored in T and unit-stride and the head dim is a multiple of
    // `lanes` (so no padding lanes are ever read). Sets the row pointers and token strides;
    // false otherwise.
    bool qk_rows(index_t u, index_t t0, index_t lanes, const T*& q_row, index_t& ldq, const T*& k_row,
                 index_t& ldk) const {
        if constexpr (!std::is_same_v<Q, T> || !std::is_same_v<K, T>) {
            return false;
        } else {
            if (q.stride(3) != 1 || k.stride(3) != 1 || problem.dk_in % lanes != 0) return false;
            const auto sq = problem.sequence(u / problem.hv);
            const index_t hk = (u % problem.hv) / problem.group;
            q_row = q.ptr(sq.batch, sq.begin + t0, hk);
            k_row = k.ptr(sq.batch, sq.begin + t0, hk);
            ldq = q.stride(1);
            ldk = k.stride(1);
            return true;
        }
    }
};

// x (computed in double by a reference) as an element of view `to`: through the compute type,
// so a bf16 element is the float result rounded once more.
template <class View>
typename View::value_type rounded_to(const View&, double x) {
    using E = typename View::value_type;
    return storage_cast<E>(compute_type_of<E>(x));
}

// The alias rules of the family: out and final_state are disjoint from each other and from
// every input (q, k, v, initial_state and the operator's own inputs); final_state may be
// exactly the view of initial_state (updated in place).
template <class Args>
void check_recurrent_memory(const Args& a, const char* op, std::initializer_list<arg_memory> more = {}) {
    check_disjoint(op, {memory_of("out", a.out), memory_of("final_state", a.final_state)},
                   arg_list({memory_of("q", a.q), memory_of("k", a.k), memory_of("v", a.v),
                             memory_of("initial_state", a.initial_state)},
                            more),
                   "final_state", "initial_state");
}

// State slots of the decode steps: row b uses slot state_indices[b] (b without indices);
// pad_slot skips the row. Every index is pad_slot or in [0, slots), and no slot appears
// twice (two rows would race on it).
inline void check_state_indices(const std::int32_t* idx, index_t batch, index_t slots, const char* op) {
    if (!idx) {
        if (slots != batch)
            fail(op, "state", detail::concat(batch, " slots (one per batch row) without state_indices"), slots);
        return;
    }
    for (index_t b = 0; b < batch; ++b)
        // The caller's array holds batch entries (the contract); the analyzer may see a
        // shorter one in an example.
        // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult)
        if (idx[b] != pad_slot && (idx[b] < 0 || idx[b] >= slots))
            raise(detail::concat(op, ": argument 'state_indices': expected pad_slot (-1) or 0 <= state_indices[", b,
                                 "] < ", slots, ", given ", idx[b]));
    // Duplicates by sorting a copy: on the stack for the batches decode serves (this runs
    // once per decoded token), on the heap beyond.
    std::array<std::int32_t, 256> small{};
    std::vector<std::int32_t> large;
    std::int32_t* sorted = small.data();
    if (batch > index_t(small.size())) {
        large.resize(std::size_t(batch));
        sorted = large.data();
    }
    std::copy(idx, idx + batch, sorted);
    std::sort(sorted, sorted + batch);
    for (index_t i = 1; i < batch; ++i)
        if (sorted[i] == sorted[i - 1] && sorted[i] != pad_slot) {
            index_t first = 0, second = 0;
            for (index_t b = 0, seen = 0; b < batch; ++b)
                if (idx[b] == sorted[i]) (seen++ == 0 ? first : second) = b;
            raise(detail::concat(op, ": argument 'state_indices': expected distinct slots, given slot ", sorted[i],
                                 " at rows ", first, " and ", second));
        }
}

// The snapshot options of a pool of `slots` states, recorded in p: every table entry -1 or a
// slot; room for every sequence's snapshots; and no slot written twice or read by another
// sequence (the state slots and the snapshot slots the call writes, all distinct).
inline void check_snapshots(packed_sequences& p, const state_pool_options& pool, index_t slots, const char* op) {
    const index_t interval = pool.snapshot_interval, per = pool.max_snapshots;
    check(interval >= 0, op, "snapshot_interval", ">= 0 (0: no snapshots)", interval);
    if (interval == 0) return;
    if (!pool.state_indices)
        fail(op, "snapshot_interval", "0 without state_indices (snapshots go to pool slots)", interval);
    check(pool.snapshot_indices != nullptr, op, "snapshot_indices", "a [num_seqs, max_snapshots] table of pool slots",
          "nullptr");
    check(per >= 1, op, "max_snapshots", ">= 1 with snapshot_interval > 0", per);
    p.snapshot_interval = interval;
    p.snapshot_slots = pool.snapshot_indices;
    p.max_snapshots = per;
    for (index_t s = 0; s < p.num_seqs; ++s) {
        const index_t count = p.snapshot_count(s);
        if (count > per)
            raise(detail::concat(op, ": argument 'max_snapshots': expected at least ", count, " (sequence ", s, " has ",
                                 p.sequence(s).len, " tokens, a snapshot every ", interval, "), given ", per));
        for (index_t k = 0; k < per; ++k) {
            const std::int32_t slot = pool.snapshot_indices[s * per + k];
            if (slot != -1 && (slot < 0 || slot >= slots))
                raise(detail::concat(op, ": argument 'snapshot_indices': expected -1 or 0 <= snapshot_indices[",
                                     s * per + k, "] < ", slots, ", given ", slot));
        }
    }
    // (slot, where): where < num_seqs is state_indices[where], else snapshot_indices[where - num_seqs].
    std::vector<std::pair<std::int32_t, index_t>> used;
    for (index_t s = 0; s < p.num_seqs; ++s) {
        if (p.state_slot(s) >= 0) used.emplace_back(std::int32_t(p.state_slot(s)), s);
        for (index_t k = 0; k < p.snapshot_count(s); ++k)
            if (p.snapshot_slot(s, k) >= 0)
                used.emplace_back(std::int32_t(p.snapshot_slot(s, k)), p.num_seqs + s * per + k);
    }
    std::sort(used.begin(), used.end());
    auto name = [&](index_t where) {
        return where < p.num_seqs ? detail::concat("state_indices[", where, "]")
                                  : detail::concat("snapshot_indices[", where - p.num_seqs, "]");
    };
    for (std::size_t i = 1; i < used.size(); ++i)
        if (used[i].first == used[i - 1].first)
            raise(detail::concat(op, ": argument 'snapshot_indices': expected slots used once, given slot ",
                                 used[i].first, " as ", name(used[i - 1].second), " and ", name(used[i].second)));
}

// The states of a call, checked and recorded in p: dense [num_seqs, rest...] states, or, with
// pool.state_indices, one pool [slots, rest...] given as both initial_state and final_state
// (the same view, updated in place).
template <std::size_t R, class SI, class SO>
void check_states(packed_sequences& p, const state_pool_options& pool, tensor_view<const SI, R>& init,
                  tensor_view<SO, R>& fin, const std::array<index_t, R - 1>& rest, const char* op) {
    init = checked_view(init, op, "initial_state");
    fin = checked_output(fin, op, "final_state");
    auto shape_with = [&](index_t lead) {
        std::array<index_t, R> shape{lead};
        for (std::size_t i = 1; i < R; ++i) shape[i] = rest[i - 1];
        return shape;
    };
    if (pool.state_indices) {
        if (fin.empty()) fail(op, "final_state", "the state pool (state_indices given)", "an empty view");
        if (!memory_of("initial_state", init).same_view(memory_of("final_state", fin)))
            fail(op, "initial_state", "the view of final_state (one state pool with state_indices)", "another view");
        check_shape(fin, shape_with(fin.extent(0)), op, "final_state");
        check_state_indices(pool.state_indices, p.num_seqs, fin.extent(0), op);
        p.slots = pool.state_indices;
        check_snapshots(p, pool, fin.extent(0), op);
    } else {
        check_snapshots(p, pool, 0, op);
        if (!init.empty()) check_shape(init, shape_with(p.num_seqs), op, "initial_state");
        if (!fin.empty()) check_shape(fin, shape_with(p.num_seqs), op, "final_state");
    }
    p.has_initial = pool.has_initial_state;
}

// Common checks of q, k, v, out, states; dk_state is the state's row count (phi dim),
// dv_state its column count (Dv, or Dv + 1 with a normalizer column).
template <class Args>
void validate_recurrent(Args& a, const char* op, const std::int32_t* cu_seqlens, int num_seqs,
                        const state_pool_options& pool, int num_threads, index_t dk_state, index_t dv_extra) {
    check_given(a.q, op, "q");
    check_given(a.k, op, "k");
    check_given(a.v, op, "v");
    check_given(a.out, op, "out");
    const index_t B = a.q.extent(0), N = a.q.extent(1), Hk = a.q.extent(2), Dk = a.q.extent(3);
    const index_t Hv = a.v.extent(2), Dv = a.v.extent(3);
    check_shape(a.k, {B, N, Hk, Dk}, op, "k");
    check_extent(a.v, 0, B, op, "v", "batch like q");
    check_extent(a.v, 1, N, op, "v", "sequence length like q");
    check(Dk >= 1, op, "q", "a head dim >= 1", Dk);
    check(Dv >= 1, op, "v", "a head dim >= 1", Dv);
    if (!(Hk >= 1 && Hv % Hk == 0))
        fail(op, "v", detail::concat("a head count that is a multiple of q's ", Hk, " (grouped heads)"), Hv);
    check_shape(a.out, {B, N, Hv, Dv}, op, "out");
    check_threads(num_threads, op);
    auto& p = a.problem;
    static_cast<packed_sequences&>(p) = sequences_of(a.q, cu_seqlens, num_seqs, op, "q");
    check_states<4>(p, pool, a.initial_state, a.final_state, {Hv, dk_state, Dv + dv_extra}, op);
    p.hk = Hk;
    p.hv = Hv;
    p.group = Hv / Hk;
    p.dk_in = Dk;
    p.dk = dk_state;
    p.dv = Dv;
}

// Every value of v in [lo, hi] (NaN rejected), else an error naming the first one outside
// and its index. Vectorized along unit-stride rows; the outer axes by an odometer.
// fn(row, idx) for every innermost row of v, in order: row points at its first element,
// idx holds the indices of the outer axes (an odometer over them).
template <class T, std::size_t R, class Fn>
void for_each_row(const tensor_view<const T, R>& v, Fn&& fn) {
    if (v.size() == 0) return;
    std::array<index_t, R> idx{};
    while (true) {
        const T* row = v.data();
        for (std::size_t d = 0; d + 1 < R; ++d) row += idx[d] * v.stride(d);
        fn(row, static_cast<const std::array<index_t, R>&>(idx));
        std::size_t d = R - 1;
        while (d-- > 0) {
            if (++idx[d] < v.extent(d)) break;
            idx[d] = 0;
        }
        if (d == std::size_t(-1)) return;
    }
}

// "[i,j,...,last]": where for_each_row's row idx found a value, for error messages.
template <std::size_t R>
std::string element_index(const std::array<index_t, R>& idx, index_t last) {
    std::string at = "[";
    for (std::size_t d = 0; d + 1 < R; ++d) at += std::to_string(idx[d]) + ",";
    return at + std::to_string(last) + "]";
}

// Index of the first x[i] outside [lo, hi] (NaN included), or n if there is none. Plain C++
// (the references share these checks and never include simd/): blocks of 64 without an early
// exit inside, which compilers vectorize.
template <class S, class T>
std::size_t first_outside(const S* x, std::size_t n, T lo, T hi) {
    static_assert(std::is_same_v<T, compute_type_of<S>>, "seqmix: bounds in the compute type of the array");
    constexpr std::size_t block = 64;
    std::size_t i = 0;
    for (; i + block <= n; i += block) {
        bool inside = true;
        for (std::size_t j = 0; j < block; ++j) {
            const T t = T(x[i + j]);
            inside &= (lo <= t) & (t <= hi);
        }
        if (!inside) break;
    }
    for (; i < n; ++i)
        if (!(lo <= T(x[i]) && T(x[i]) <= hi)) return i;
    return n;
}

template <class E, std::size_t R>
void check_values_in(const tensor_view<const E, R>& v, compute_type_of<E> lo, compute_type_of<E> hi, const char* op,
                     const char* arg, const char* expected) {
    using T = compute_type_of<E>;
    const index_t inner = v.extent(R - 1), stride = v.stride(R - 1);
    for_each_row(v, [&](const E* row, const std::array<index_t, R>& idx) {
        index_t bad = inner;
        if (stride == 1) {
            bad = index_t(first_outside(row, std::size_t(inner), lo, hi));
        } else {
            for (index_t i = 0; i < inner && bad == inner; ++i)
                if (!(lo <= T(row[i * stride]) && T(row[i * stride]) <= hi)) bad = i;
        }
        if (bad < inner)
            raise(detail::concat(op, ": argument '", arg, "': expected ", expected, ", given ", T(row[bad * stride]),
                                 " at ", element_index(idx, bad)));
    });
}

// An options array of n floats (log_decay, D, biases) in [lo, hi] (NaN rejected), or not
// given; the error names the first value outside as arg[i].
inline void check_array_in(const float* p, index_t n, float lo, float hi, const char* op, const char* arg,
                           const char* expected) {
    if (!p) return;
    const index_t i = index_t(first_outside(p, std::size_t(n), lo, hi));
    if (i < n)
        raise(detail::concat(op, ": argument '", arg, "': expected ", expected, ", given ", arg, "[", i, "] = ", p[i]));
}

// Log gates must be <= 0 (forget gates in [0, 1]; -inf forgets everything); NaN is rejected.
template <class E, std::size_t R>
void check_log_gates(const tensor_view<const E, R>& g, const char* op) {
    using T = compute_type_of<E>;
    check_values_in(g, T(-INFINITY), T(0), op, "g", "log forget gates <= 0");
}

// Raw projections (a gate before A_log's projection, beta before its sigmoid): any value but NaN.
template <class E, std::size_t R>
void check_projections(const tensor_view<const E, R>& x, const char* op, const char* arg) {
    using T = compute_type_of<E>;
    check_values_in(x, T(-INFINITY), T(INFINITY), op, arg, "no NaN (a raw projection)");
}

// initial_state and final_state: views of rank R, final_state mutable.
template <std::size_t R, class SIV, class SOV>
constexpr void check_state_views() {
    static_assert(view_traits<SIV>::is_view && view_traits<SOV>::is_view && SIV::rank == R && SOV::rank == R,
                  "seqmix: initial_state and final_state must be tensor_views of the operator's state rank");
    static_assert(std::is_same_v<typename SOV::element_type, typename SOV::value_type>,
                  "seqmix: final_state must be a mutable view");
}

// The state pool of a decode step is updated in place.
template <class S>
constexpr void check_pool_type() {
    static_assert(!std::is_const_v<S>, "seqmix: the state of a step is updated in place: a mutable view");
}

template <class QV, class KV, class VV, class OV, class SIV, class SOV>
auto prepare_recurrent(const QV& q, const KV& k, const VV& v, const OV& out, const SIV& initial_state,
                       const SOV& final_state, const char* op) {
    using O = typename OV::value_type;
    using T = compute_type_of<O>;
    using SI = typename SIV::value_type;
    using SO = typename SOV::value_type;
    check_state_views<4, SIV, SOV>();
    const auto views = as_batched_qkvo<4>(q, k, v, out, op, "[B,N,H,D]");
    using Q = typename QV::value_type;
    using K = typename KV::value_type;
    using V = typename VV::value_type;
    check_recurrent_types<T, Q, K, V, O, SI, SO>();
    recurrent_args<T, Q, K, V, O, SI, SO> a;
    a.q = views.q;
    a.k = views.k;
    a.v = views.v;
    a.out = views.out;
    a.initial_state = tensor_view<const SI, 4>(initial_state);
    a.final_state = final_state;
    return a;
}

// Decode-step arguments: one token per batch row, the seq axis dropped. T computes; each
// view keeps its element type.
template <class T, class Q = T, class K = T, class V = T, class O = T>
struct step_args {
    using compute_type = T;
    tensor_view<const Q, 3> q;
    tensor_view<const K, 3> k;
    tensor_view<const V, 3> v;
    tensor_view<O, 3> out;
    index_t batch = 0, hk = 0, hv = 0, dk_in = 0, dk = 0, dv = 0;
    double scale = 0;  // opt.scale, or 1/sqrt(head dim) when 0
};

// Shapes, the state pool, options and the alias rules of a decode step; `gates` are the
// step's further inputs (checked for shape by the caller), named in alias errors. The state
// is stored in the compute type or (float arithmetic) bf16 / fp16.
template <class QV, class KV, class VV, class OV, class S, class Options, class FeatureMap>
auto prepare_step(const QV& q, const KV& k, const VV& v, const OV& out, const tensor_view<S, 4>& state_in,
                  const Options& opt, FeatureMap fmap, index_t dv_extra, const char* op,
                  std::initializer_list<arg_memory> gates = {}) {
    using Q = typename QV::value_type;
    using K = typename KV::value_type;
    using V = typename VV::value_type;
    using O = typename OV::value_type;
    using T = compute_type_of<O>;
    check_pool_type<S>();
    check_recurrent_types<T, Q, K, V, O, S>();
    const auto views = as_batched_qkvo<3>(q, k, v, out, op, "[B,H,D]");
    step_args<T, Q, K, V, O> s;
    s.q = views.q;
    s.k = views.k;
    s.v = views.v;
    s.out = views.out;
    check_given(s.q, op, "q");
    check_given(s.k, op, "k");
    check_given(s.v, op, "v");
    check_given(s.out, op, "out");
    check_given(state_in, op, "state");
    const auto state = checked_output(state_in, op, "state");
    s.batch = s.q.extent(0);
    s.hk = s.q.extent(1);
    s.dk_in = s.q.extent(2);
    s.hv = s.v.extent(1);
    s.dv = s.v.extent(2);
    check(s.dk_in >= 1, op, "q", "a head dim >= 1", s.dk_in);
    check(s.dv >= 1, op, "v", "a head dim >= 1", s.dv);
    s.dk = feature_dim(fmap, s.dk_in);
    check_shape(s.k, {s.batch, s.hk, s.dk_in}, op, "k");
    check_extent(s.v, 0, s.batch, op, "v", "batch like q");
    if (!(s.hk >= 1 && s.hv % s.hk == 0))
        fail(op, "v", detail::concat("a head count that is a multiple of q's ", s.hk, " (grouped heads)"), s.hv);
    check_shape(s.out, {s.batch, s.hv, s.dv}, op, "out");
    if (!(state.extent(1) == s.hv && state.extent(2) == s.dk && state.extent(3) == s.dv + dv_extra))
        fail(op, "state", detail::concat("shape [slots,", s.hv, ",", s.dk, ",", s.dv + dv_extra, "]"),
             shape_string(state));
    check_state_indices(opt.state_indices, s.batch, state.extent(0), op);
    check_disjoint(op, {memory_of("out", s.out), memory_of("state", state)},
                   arg_list({memory_of("q", s.q), memory_of("k", s.k), memory_of("v", s.v)}, gates));
    check_finite_as<T>(opt.scale, op, "scale");
    check_threads(opt.num_threads, op);
    s.scale = opt.scale != 0 ? opt.scale : 1.0 / std::sqrt(double(s.dk_in));
    return s;
}

// Per-head log decays (linear attention): <= 0, -inf allowed (forget everything), no NaN.
inline void check_log_decay(const float* log_decay, index_t hv, const char* op) {
    check_array_in(log_decay, hv, -INFINITY, 0.0f, op, "log_decay", "values <= 0");
}

inline void check_chunk_size(int c, const char* op) {
    check(c == 0 || (c >= 1 && c <= 1024), op, "chunk_size", "0 (default) or 1..1024", c);
}

// The core of the recurrences whose state is [Dk, Dv] with no feature map (GLA, the delta
// rule): shapes, states, cu_seqlens, threads, and the options' scale and chunk size.
template <class QV, class KV, class VV, class OV, class Options, class SIV, class SOV>
auto prepare_matrix_recurrent(const QV& q, const KV& k, const VV& v, const OV& out, const Options& opt,
                              const SIV& initial_state, const SOV& final_state, const char* op) {
    // One rule with the gates: their unbatched rank would be ambiguous (GLA's [N,H,Dk] vector
    // gate against a batched [B,N,H] scalar one), so the gated operators take no unbatched form.
    static_assert(QV::rank == 4 && KV::rank == 4 && VV::rank == 4 && OV::rank == 4,
                  "seqmix: gated_linear_attention and the delta rule take batched q, k, v, out [B,N,H,D] "
                  "only (no unbatched form): view one sequence with a batch axis of 1");
    using T = compute_type_of<typename OV::value_type>;
    auto a = prepare_recurrent(q, k, v, out, initial_state, final_state, op);
    validate_recurrent(a, op, opt.cu_seqlens, opt.num_seqs, opt, opt.num_threads, a.q.empty() ? 0 : a.q.extent(3), 0);
    check_finite_as<T>(opt.scale, op, "scale");
    check_chunk_size(opt.chunk_size, op);
    a.problem.scale = opt.scale != 0 ? opt.scale : 1.0 / std::sqrt(double(a.problem.dk_in));
    return a;
}

// A per-head log gate from the operator's g value: g itself, or with A_log the projected
// gate -exp(A_log[h]) * softplus(g + dt_bias[h]) (softplus(x) = x above 20, as torch's).
struct gate_projection {
    const float* A_log = nullptr;
    const float* dt_bias = nullptr;
    bool active() const { return A_log != nullptr; }
    template <class T>
    T operator()(T g, index_t h) const {
        if (!A_log) return g;
        const T x = g + (dt_bias ? T(dt_bias[h]) : T(0));
        return -std::exp(T(A_log[h])) * (x > T(20) ? x : std::log1p(std::exp(x)));
    }
};

// The projection options of an operator with hv heads, checked: a per-head gate only;
// A_log in [-80, 80] (exp(A_log) a normal float: a gate of an infinite projection is -inf,
// never 0 * inf), finite biases.
inline gate_projection check_gate_projection(const gate_projection_options& o, index_t hv, bool vector_gate,
                                             const char* op) {
    if (!o.A_log) {
        check(o.dt_bias == nullptr, op, "dt_bias", "nullptr without A_log (the bias of the gate projection)",
              "an array");
        return {};
    }
    if (vector_gate) fail(op, "A_log", "nullptr with a per-key-channel gate (the projection is per head)", "an array");
    check_array_in(o.A_log, hv, -80.0f, 80.0f, op, "A_log", "finite values in [-80, 80]");
    check_array_in(o.dt_bias, hv, -FLT_MAX, FLT_MAX, op, "dt_bias", "finite values");
    return {o.A_log, o.dt_bias};
}

// The gate of a gated recurrence (GLA, the gated delta rule): g [B,N,Hv,Dk] per key channel
// into g4, or [B,N,Hv] per head into g3, checked for shape and values. Returns true for the
// per-channel gate.
template <class GV, class G>
bool take_gate(const GV& g, index_t B, index_t N, index_t Hv, index_t Dk, tensor_view<const G, 4>& g4,
               tensor_view<const G, 3>& g3, const char* op, bool projected = false) {
    static_assert(view_traits<GV>::is_view && std::is_same_v<typename GV::value_type, G>,
                  "seqmix: g must be a tensor_view");
    constexpr std::size_t R = GV::rank;
    check_given(g, op, "g");
    if constexpr (R == 4) {
        g4 = checked_view(tensor_view<const G, 4>(g), op, "g");
        check_shape(g4, {B, N, Hv, Dk}, op, "g");
        check_log_gates(g4, op);
    } else if constexpr (R == 3) {
        g3 = checked_view(tensor_view<const G, 3>(g), op, "g");
        check_shape(g3, {B, N, Hv}, op, "g");
        if (projected) check_projections(g3, op, "g");
        else check_log_gates(g3, op);
    } else {
        raise(detail::concat(op, ": argument 'g': expected rank 4 [B,N,H,Dk] (per key channel) or rank 3 [B,N,H] ",
                             "(per head), given rank ", R));
    }
    return R == 4;
}

}  // namespace detail
SEQMIX_ABI_END
}  // namespace seqmix
