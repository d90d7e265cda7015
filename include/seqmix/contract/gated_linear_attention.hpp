#pragma once
// The contract of gated_linear_attention: options and argument validation.
#include "recurrent.hpp"

namespace seqmix {

// gate_projection_options: a per-head g given as the raw projection.
struct gla_options : state_pool_options, gate_projection_options {
    double scale = 0;  // 0 = 1/sqrt(Dk)
    int chunk_size = 0;
    const std::int32_t* cu_seqlens = nullptr;
    int num_seqs = 0;
    int num_threads = 0;
    seqmix::executor* executor = nullptr;  // nullptr = OpenMP; else its threads (core/executor.hpp)
};

struct gla_step_options : recurrent_step_options, gate_projection_options {};

SEQMIX_ABI_BEGIN
namespace detail {

// GLA's arguments: the family's core (Base: recurrent_args) plus the gate, stored as G.
template <class Base, class G>
struct gla_args : Base {
    tensor_view<const G, 4> g4;  // vector gate [B,N,H,Dk]
    tensor_view<const G, 3> g3;  // scalar gate [B,N,H]
    bool vector_gate = false;
    gate_projection project;  // of the per-head gate
};

// g is [B,N,H,Dk] (GLA, per key channel) or [B,N,H] (scalar gate per head).
template <class QV, class KV, class VV, class GV, class OV, class SIV, class SOV>
auto prepare_gla(const QV& q, const KV& k, const VV& v, const GV& g, const OV& out, const gla_options& opt,
                 const SIV& initial_state, const SOV& final_state, const char* op) {
    using Base = decltype(prepare_matrix_recurrent(q, k, v, out, opt, initial_state, final_state, op));
    using G = typename GV::value_type;
    check_recurrent_types<typename Base::compute_type, G>();
    gla_args<Base, G> a;
    static_cast<Base&>(a) = prepare_matrix_recurrent(q, k, v, out, opt, initial_state, final_state, op);
    const index_t B = a.q.extent(0), N = a.q.extent(1), Hv = a.v.extent(2), Dk = a.q.extent(3);
    a.project = check_gate_projection(opt, Hv, GV::rank == 4, op);
    a.vector_gate = take_gate(g, B, N, Hv, Dk, a.g4, a.g3, op, a.project.active());
    check_recurrent_memory(a, op, {memory_of("g", a.g4), memory_of("g", a.g3)});
    return a;
}

// A GLA decode step's arguments: the step core (Base: step_args) plus the gate, [B,H,Dk]
// (GLA) or [B,H], stored as G.
template <class Base, class G, std::size_t RG>
struct gla_step_args : Base {
    tensor_view<const G, RG> g;
    gate_projection project;  // of the per-head gate
};

template <class QV, class KV, class VV, class GV, class OV, class S>
auto prepare_gla_step(const QV& q, const KV& k, const VV& v, const GV& g, const OV& out, const tensor_view<S, 4>& state,
                      const gla_step_options& opt, const char* op) {
    constexpr std::size_t RG = GV::rank;
    static_assert(RG == 2 || RG == 3, "seqmix: g of a step is [B,H,Dk] (GLA) or [B,H] (scalar gate)");
    using Base = decltype(prepare_step(q, k, v, out, state, opt, feature_map::identity, 0, op));
    using G = typename GV::value_type;
    check_recurrent_types<typename Base::compute_type, G>();
    gla_step_args<Base, G, RG> s;
    s.g = checked_view(tensor_view<const G, RG>(g), op, "g");
    static_cast<Base&>(s) = prepare_step(q, k, v, out, state, opt, feature_map::identity, 0, op, {memory_of("g", s.g)});
    check_given(s.g, op, "g");
    if constexpr (RG == 3) check_shape(s.g, {s.batch, s.hv, s.dk}, op, "g");
    else check_shape(s.g, {s.batch, s.hv}, op, "g");
    s.project = check_gate_projection(opt, s.hv, RG == 3, op);
    if (s.project.active()) check_projections(s.g, op, "g");
    else check_log_gates(s.g, op);
    return s;
}

}  // namespace detail
SEQMIX_ABI_END
}  // namespace seqmix
