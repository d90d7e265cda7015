#pragma once
// Every operator of seqmix, described for the hostile-input tests (hostile.hpp). Shapes are
// small and awkward (odd head dims, grouped heads, a sequence a bit longer than two chunks).
#include <seqmix/ops/causal_conv1d.hpp>
#include <seqmix/ops/delta_rule.hpp>
#include <seqmix/ops/gated_linear_attention.hpp>
#include <seqmix/ops/linear_attention.hpp>
#include <seqmix/ops/selective_scan.hpp>
#include <seqmix/ops/sliding_window_attention.hpp>
#include <seqmix/ops/softmax_attention.hpp>
#include <seqmix/ops/sparse_attention.hpp>
#include <seqmix/ops/ssd_scan.hpp>
#include <seqmix/reference/delta_rule.hpp>
#include <seqmix/reference/gated_linear_attention.hpp>
#include <seqmix/reference/linear_attention.hpp>
#include <seqmix/reference/local_attention.hpp>
#include <seqmix/reference/softmax_attention.hpp>
#include <seqmix/reference/sparse_attention.hpp>
#include <seqmix/reference/state_space.hpp>

#include <iterator>
#include <utility>
#include <vector>

#include "hostile.hpp"

namespace hostile {

// Fills one op_spec's three call slots from a generic call `f(args, reference?)`.
template <class F>
op_spec make_op(std::string name, std::vector<arg_desc> args, F f) {
    op_spec op;
    op.name = std::move(name);
    op.args = std::move(args);
    op.run = [f](const arg_set<float>& a) { f(a, std::false_type{}); };
    op.run_double = [f](const arg_set<double>& a) { f(a, std::false_type{}); };
    op.reference = [f](const arg_set<double>& a) { f(a, std::true_type{}); };
    return op;
}

// The states of a full recurrent operator, with its serving options set in o: initial_state
// and final_state, or with pool_indices the final_state argument as the pool (both views).
template <std::size_t R, class T, class Options>
std::pair<seqmix::tensor_view<const T, R>, seqmix::tensor_view<T, R>> served_states(const arg_set<T>& a, Options& o) {
    auto ptr = [](const std::vector<std::int32_t>& v) { return v.empty() ? nullptr : v.data(); };
    o.state_indices = ptr(a.pool_indices);
    o.snapshot_indices = ptr(a.snapshot_indices);
    o.snapshot_interval = a.snapshot_interval;
    o.max_snapshots = a.max_snapshots;
    const auto fin = a.template view<R>("final_state");
    if (a.pool_indices.empty()) return {a.template in<R>("initial_state"), fin};
    return {fin, fin};
}

// Row b of a step's [B, ...] view as a one-token [1, 1, ...] view of the full operator.
template <class T, std::size_t R>
seqmix::tensor_view<T, R + 1> one_token(const seqmix::tensor_view<T, R>& x, index_t b) {
    std::array<index_t, R + 1> shape{}, strides{};
    shape[0] = shape[1] = 1;
    for (std::size_t i = 1; i < R; ++i) {
        shape[i + 1] = x.extent(i);
        strides[i + 1] = x.stride(i);
    }
    return {x.ptr(b), shape, strides};
}

// The reference of a state-space step: for each row with a slot, one token of the full
// reference from the slot's state, written back. fn(b, init, fin) runs that token.
template <class T, class F>
void reference_pool_step(const arg_set<T>& a, F&& fn) {
    const auto& st = a.get("state");
    const index_t per_slot = count(st.shape) / st.shape[0];
    std::vector<T> fin_buf(static_cast<std::size_t>(per_slot));
    for (index_t b = 0; b < a.args[0].shape[0]; ++b) {
        const index_t slot = a.indices() ? a.indices()[b] : b;
        if (slot == seqmix::pad_slot) continue;
        fn(b, st.data + slot * per_slot, fin_buf.data());
        std::copy(fin_buf.begin(), fin_buf.end(), st.data + slot * per_slot);
    }
}

// A matrix-state step's reference (reference_pool_step): fn gets the row's q, k, v, g (empty
// if none), out, the slot's state in and out, and beta (empty if none).
template <class T, class F>
void reference_step(const arg_set<T>& a, F&& fn) {
    using seqmix::tensor_view;
    const auto& st = a.get("state");
    const index_t H = st.shape[1], Dk = st.shape[2], Dv = st.shape[3];
    reference_pool_step(a, [&](index_t b, const T* init_p, T* fin_p) {
        const tensor_view<const T, 4> init(init_p, {1, H, Dk, Dv});
        const tensor_view<T, 4> fin(fin_p, {1, H, Dk, Dv});
        const auto q = one_token(a.template in<3>("q"), b), k = one_token(a.template in<3>("k"), b);
        const auto v = one_token(a.template in<3>("v"), b);
        const auto out = one_token(a.template view<3>("out"), b);
        const auto beta = a.has("beta") ? one_token(a.template in<2>("beta"), b) : tensor_view<const T, 3>();
        if (a.has("g") && a.get("g").shape.size() == 3)
            fn(q, k, v, one_token(a.template in<3>("g"), b), out, init, fin, beta);
        else if (a.has("g")) fn(q, k, v, one_token(a.template in<2>("g"), b), out, init, fin, beta);
        else fn(q, k, v, tensor_view<const T, 4>(), out, init, fin, beta);
    });
}

// An options array (log_decay, D, a bias) as the const float* the options take; empty if not an argument.
template <class T>
std::vector<float> params_of(const arg_set<T>& a, const std::string& name) {
    if (!a.has(name)) return {};
    const auto& d = a.get(name);
    return std::vector<float>(d.storage->begin(), d.storage->end());
}

// The sizes of the catalog's operators: the tests take the defaults with their own N and B,
// the fuzzers (tests/fuzz) vary them all.
struct catalog_sizes {
    index_t N = 70, B = 2;
    index_t Dk = 5, Dv = 7;                              // head dims
    index_t Din = 6, S = 5, G = 2, H = 3, P = 4, W = 4;  // scans: channels, states, groups, heads, head dim, conv width
};

// The catalog, built in two translation units (hostile_attention.cpp, hostile_recurrent.cpp):
// each instantiates its operators' kernels and references, so the two compile in parallel.
std::vector<op_spec> attention_ops(const catalog_sizes& sizes);
std::vector<op_spec> recurrent_ops(const catalog_sizes& sizes);

inline std::vector<op_spec> catalog(const catalog_sizes& sizes) {
    std::vector<op_spec> ops = attention_ops(sizes), more = recurrent_ops(sizes);
    ops.insert(ops.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
    return ops;
}

// Every operator, on sequences of N tokens and B batch rows.
inline std::vector<op_spec> catalog(index_t N = 70, index_t B = 2) {
    catalog_sizes sizes;
    sizes.N = N;
    sizes.B = B;
    return catalog(sizes);
}

}  // namespace hostile
