#pragma once
// The contract of delta_rule and gated_delta_rule: options and argument validation.
#include "recurrent.hpp"

namespace seqmix {

// How the fast kernel runs a sequence (a seqmix extension; the reference ignores it):
//   chunkwise  the WY / UT chunk products (GEMM tiles; about 6 N Dk Dv FLOPs),
//   recurrent  token by token with the state's columns in cache (3 FMAs per state element
//              and token),
//   automatic  the measured choice per host: recurrent on AMD Zen 4 / Zen 5 and wherever the
//              state fits the L1 data cache; chunkwise for larger states on Intel cores
//              (Dk = Dv = 128 on a Xeon: 1.16-1.58x faster than the recurrence), unless
//              snapshots come more often than once a chunk (draft verification).
enum class delta_form { automatic, chunkwise, recurrent };

// gate_projection_options: a per-head g given as the raw projection (gated_delta_rule).
// beta_sigmoid: beta given as the raw projection b, the learning rate is sigmoid(b).
struct delta_options : state_pool_options, gate_projection_options {
    double scale = 0;        // 0 = 1/sqrt(Dk)
    bool qk_l2norm = false;  // q and k normalized per head inside the kernel: x / sqrt(sum x^2 + 1e-6)
    bool beta_sigmoid = false;
    int chunk_size = 0;                        // 0 = the measured default
    const std::int32_t* cu_seqlens = nullptr;  // [num_seqs + 1], packed varlen
    int num_seqs = 0;                          // seqmix extension: entries in cu_seqlens minus one
    int num_threads = 0;
    seqmix::executor* executor = nullptr;  // nullptr = OpenMP; else its threads (core/executor.hpp)
    delta_form form = delta_form::automatic;
};

struct delta_step_options : recurrent_step_options, gate_projection_options {
    bool qk_l2norm = false;
    bool beta_sigmoid = false;
};

// The epsilon of qk_l2norm, inside the square root (as flash-linear-attention's l2norm).
constexpr double l2norm_eps = 1e-6;

SEQMIX_ABI_BEGIN
namespace detail {

// Learning rates: 0 <= beta <= 2 keeps I - beta k k^T from expanding for unit keys
// (eigenvalues 1 - beta and 1; DeltaNet's beta in (0, 1), or up to 2 with negative
// eigenvalues allowed).
// With beta_sigmoid beta is a raw projection (any value but NaN).
template <class E, std::size_t R>
void check_beta(const tensor_view<const E, R>& beta, bool sigmoid, const char* op) {
    using T = compute_type_of<E>;
    if (sigmoid) check_projections(beta, op, "beta");
    else check_values_in(beta, T(0), T(2), op, "beta", "values in [0, 2]");
}

// What the delta rule's kernels read of beta and a per-head gate: the learning rate (beta, or
// sigmoid(beta)) and the log gate (g, or its projection).
struct delta_gates {
    gate_projection project;
    bool beta_sigmoid = false;
    template <class T>
    T rate(T beta) const {
        return beta_sigmoid ? T(1) / (T(1) + std::exp(-beta)) : beta;
    }
};

// The delta rule's arguments: the family's core (Base: recurrent_args) plus beta (stored as
// Bt) and the optional gate (stored as G).
template <class Base, class Bt, class G>
struct delta_args : Base, delta_gates {
    tensor_view<const Bt, 3> beta;  // [B,N,Hv]
    tensor_view<const G, 4> g4;     // per key channel [B,N,Hv,Dk] (KDA)
    tensor_view<const G, 3> g3;     // per head [B,N,Hv] (Gated DeltaNet)
    bool gated = false, vector_gate = false, l2norm = false;
};

// The element type of an optional gate view (nullptr_t: no gate, T).
template <class GV, class T>
struct gate_element_of {
    using type = typename GV::value_type;
};
template <class T>
struct gate_element_of<std::nullptr_t, T> {
    using type = T;
};
template <class GV, class T>
using gate_element = typename gate_element_of<GV, T>::type;

// g: nullptr_t (DeltaNet, no gate), [B,N,Hv] or [B,N,Hv,Dk] log decays.
template <class QV, class KV, class VV, class GV, class BV, class OV, class SIV, class SOV>
auto prepare_delta(const QV& q, const KV& k, const VV& v, const GV& g, const BV& beta, const OV& out,
                   const delta_options& opt, const SIV& initial_state, const SOV& final_state, const char* op) {
    static_assert(view_traits<BV>::is_view && BV::rank == 3, "seqmix: beta must be a rank-3 tensor_view [B,N,H]");
    using Base = decltype(prepare_matrix_recurrent(q, k, v, out, opt, initial_state, final_state, op));
    using T = typename Base::compute_type;
    using Bt = typename BV::value_type;
    using G = gate_element<GV, T>;
    check_recurrent_types<T, Bt, G>();
    delta_args<Base, Bt, G> a;
    static_cast<Base&>(a) = prepare_matrix_recurrent(q, k, v, out, opt, initial_state, final_state, op);
    const index_t B = a.q.extent(0), N = a.q.extent(1), Hv = a.v.extent(2), Dk = a.q.extent(3);
    check_given(beta, op, "beta");
    a.beta = checked_view(tensor_view<const Bt, 3>(beta), op, "beta");
    check_shape(a.beta, {B, N, Hv}, op, "beta");
    if constexpr (!std::is_same_v<GV, std::nullptr_t>) {
        a.project = check_gate_projection(opt, Hv, GV::rank == 4, op);
        a.vector_gate = take_gate(g, B, N, Hv, Dk, a.g4, a.g3, op, a.project.active());
        a.gated = true;
    } else {
        check(opt.A_log == nullptr, op, "A_log", "nullptr without a gate (delta_rule)", "an array");
    }
    check_recurrent_memory(a, op, {memory_of("beta", a.beta), memory_of("g", a.g4), memory_of("g", a.g3)});
    a.beta_sigmoid = opt.beta_sigmoid;
    check_beta(a.beta, opt.beta_sigmoid, op);
    a.l2norm = opt.qk_l2norm;
    return a;
}

// A delta-rule decode step's arguments: the step core (Base: step_args) plus beta [B,Hv]
// and the optional gate, [B,Hv] or [B,Hv,Dk] (RG = 0: none).
template <class Base, class Bt, class G, std::size_t RG>
struct delta_step_args : Base, delta_gates {
    static constexpr bool gated = RG != 0;
    tensor_view<const Bt, 2> beta;
    tensor_view<const G, (RG == 0 ? 2 : RG)> g;
};

template <class QV, class KV, class VV, class GV, class BV, class OV, class S>
auto prepare_delta_step(const QV& q, const KV& k, const VV& v, const GV& g, const BV& beta, const OV& out,
                        const tensor_view<S, 4>& state, const delta_step_options& opt, const char* op) {
    constexpr std::size_t RG = [] {
        if constexpr (std::is_same_v<GV, std::nullptr_t>) return std::size_t(0);
        else return GV::rank;
    }();
    static_assert(RG == 0 || RG == 2 || RG == 3, "seqmix: g of a step is [B,H] (Gated DeltaNet) or [B,H,Dk] (KDA)");
    static_assert(view_traits<BV>::is_view && BV::rank == 2, "seqmix: beta of a step is a rank-2 tensor_view [B,H]");
    using Base = decltype(prepare_step(q, k, v, out, state, opt, feature_map::identity, 0, op));
    using T = typename Base::compute_type;
    using Bt = typename BV::value_type;
    using G = gate_element<GV, T>;
    check_recurrent_types<T, Bt, G>();
    delta_step_args<Base, Bt, G, RG> s;
    s.beta = checked_view(tensor_view<const Bt, 2>(beta), op, "beta");
    if constexpr (RG != 0) s.g = checked_view(tensor_view<const G, RG>(g), op, "g");
    static_cast<Base&>(s) = prepare_step(q, k, v, out, state, opt, feature_map::identity, 0, op,
                                         {memory_of("beta", s.beta), memory_of("g", s.g)});
    check_given(s.beta, op, "beta");
    check_shape(s.beta, {s.batch, s.hv}, op, "beta");
    if constexpr (RG == 3) check_shape(s.g, {s.batch, s.hv, s.dk}, op, "g");
    if constexpr (RG == 2) check_shape(s.g, {s.batch, s.hv}, op, "g");
    if constexpr (RG != 0) {
        check_given(s.g, op, "g");
        s.project = check_gate_projection(opt, s.hv, RG == 3, op);
        if (s.project.active()) check_projections(s.g, op, "g");
        else check_log_gates(s.g, op);
    } else {
        check(opt.A_log == nullptr, op, "A_log", "nullptr without a gate (delta_rule_step)", "an array");
    }
    s.beta_sigmoid = opt.beta_sigmoid;
    check_beta(s.beta, opt.beta_sigmoid, op);
    return s;
}

}  // namespace detail
SEQMIX_ABI_END
}  // namespace seqmix
