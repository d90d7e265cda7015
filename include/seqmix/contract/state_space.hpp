#pragma once
// The contract of the state-space scans (selective_scan, ssd_scan, causal_conv1d) and their
// decode steps: options structs, the problem description, and the argument validation
// shared by the fast operators and seqmix::reference.
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "recurrent.hpp"

namespace seqmix {

// The activation of causal_conv1d.
enum class activation { none, silu };

// Mamba-1 (S6). T: the element type of the operator's views (z is one of them).
template <class T = float>
struct selective_scan_options : state_pool_options {
    const float* D = nullptr;           // [Din] skip: y += D_c u
    tensor_view<const T, 3> z;          // [Bt,N,Din]: y *= silu(z)
    const float* delta_bias = nullptr;  // [Din], added to delta before softplus
    bool delta_softplus = false;
    const std::int32_t* cu_seqlens = nullptr;  // [num_seqs + 1], packed varlen
    int num_seqs = 0;                          // seqmix extension: entries in cu_seqlens minus one
    int num_threads = 0;
    seqmix::executor* executor = nullptr;  // nullptr = OpenMP; else its threads (core/executor.hpp)
};

// Mamba-2 (SSD).
template <class T = float>
struct ssd_options : state_pool_options {
    const float* D = nullptr;        // [H] skip: y += D_h x
    tensor_view<const T, 4> z;       // [Bt,N,H,P]: y *= silu(z)
    const float* dt_bias = nullptr;  // [H], added to dt before softplus
    bool dt_softplus = false;
    int chunk_size = 0;  // 0 = the measured default
    const std::int32_t* cu_seqlens = nullptr;
    int num_seqs = 0;
    int num_threads = 0;
    seqmix::executor* executor = nullptr;  // nullptr = OpenMP; else its threads (core/executor.hpp)
};

struct conv1d_options : state_pool_options {
    const float* bias = nullptr;  // [C]
    seqmix::activation activation = seqmix::activation::none;
    const std::int32_t* cu_seqlens = nullptr;
    int num_seqs = 0;
    int num_threads = 0;
    seqmix::executor* executor = nullptr;  // nullptr = OpenMP; else its threads (core/executor.hpp)
};

template <class T = float>
struct selective_scan_step_options {
    const float* D = nullptr;
    tensor_view<const T, 2> z;  // [B,Din]
    const float* delta_bias = nullptr;
    bool delta_softplus = false;
    const std::int32_t* state_indices = nullptr;  // [B]: row b uses slot state_indices[b] (pad_slot: skip)
    int num_threads = 0;
    seqmix::executor* executor = nullptr;  // nullptr = OpenMP; else its threads (core/executor.hpp)
};

template <class T = float>
struct ssd_step_options {
    const float* D = nullptr;
    tensor_view<const T, 3> z;  // [B,H,P]
    const float* dt_bias = nullptr;
    bool dt_softplus = false;
    const std::int32_t* state_indices = nullptr;
    int num_threads = 0;
    seqmix::executor* executor = nullptr;  // nullptr = OpenMP; else its threads (core/executor.hpp)
};

struct conv1d_step_options {
    const float* bias = nullptr;
    seqmix::activation activation = seqmix::activation::none;
    const std::int32_t* state_indices = nullptr;
    int num_threads = 0;
    seqmix::executor* executor = nullptr;  // nullptr = OpenMP; else its threads (core/executor.hpp)
};

SEQMIX_ABI_BEGIN
namespace detail {

// A required input view of rank R (const or not; its own element type): given, extents and
// reach checked.
template <std::size_t R, class V>
tensor_view<const typename V::value_type, R> ssm_input(const V& v, const char* op, const char* arg) {
    static_assert(view_traits<V>::is_view && V::rank == R,
                  "seqmix: a state-space argument has the wrong rank (see docs/api.md)");
    const tensor_view<const typename V::value_type, R> r(v);
    check_given(r, op, arg);
    return checked_view(r, op, arg);
}

// The output view: given, checked, no element written twice.
template <std::size_t R, class V>
tensor_view<typename V::value_type, R> ssm_output(const V& v, const char* op) {
    static_assert(
        view_traits<V>::is_view && V::rank == R && std::is_same_v<typename V::element_type, typename V::value_type>,
        "seqmix: out has the wrong rank or is not mutable (see docs/api.md)");
    check_given(v, op, "out");
    return checked_output(tensor_view<typename V::value_type, R>(v), op, "out");
}

// The largest finite value of the compute type of E, for "finite" checks of E-typed views.
template <class E>
constexpr compute_type_of<E> finite_max = std::numeric_limits<compute_type_of<E>>::max();

// G groups share B and C among `count` channels or heads.
inline void check_groups(index_t G, index_t count, const char* op, const char* what) {
    if (!(G >= 1 && count % G == 0))
        fail(op, "B", detail::concat("a group count that divides the ", count, " ", what), G);
}

// A per-channel or per-head options array (D, biases) of n values: finite, or not given.
inline void check_param(const float* p, index_t n, const char* op, const char* arg) {
    check_array_in(p, n, -std::numeric_limits<float>::max(), std::numeric_limits<float>::max(), op, arg,
                   "finite values");
}

// The memory of such an array for the alias rules (n must outlive the check).
inline arg_memory param_memory(const char* arg, const float* p, const index_t& n) {
    static constexpr index_t unit_stride = 1;
    arg_memory m;
    m.name = arg;
    if (!p || n <= 0) return m;
    m.lo = reinterpret_cast<const char*>(p);
    m.hi = reinterpret_cast<const char*>(p + n);
    m.data = p;
    m.rank = 1;
    m.element_size = sizeof(float);
    m.element = &element_tag<float>;
    m.shape = &n;
    m.strides = &unit_stride;
    return m;
}

// ---- selective_scan ----

// T computes; each view keeps its element type (float, or bf16 / fp16 with T float).
template <class T, class U = T, class Dl = T, class Aw = T, class Bv = T, class Cv = T, class Z = T, class O = T,
          class SI = T, class SO = T>
struct selective_scan_args : packed_sequences {
    using compute_type = T;
    tensor_view<const U, 3> u;       // [Bt,N,Din]
    tensor_view<const Dl, 3> delta;  // [Bt,N,Din]
    tensor_view<const Z, 3> z;       // [Bt,N,Din]
    tensor_view<const Aw, 2> A;      // [Din,S]
    tensor_view<const Bv, 4> B;      // [Bt,N,G,S]
    tensor_view<const Cv, 4> C;      // [Bt,N,G,S]
    tensor_view<O, 3> out;
    tensor_view<const SI, 3> initial_state;  // [seqs,Din,S]
    tensor_view<SO, 3> final_state;
    const float* D = nullptr;
    const float* delta_bias = nullptr;
    bool softplus = false;
    index_t din = 0, dstate = 0, groups = 1;
    index_t group_of(index_t c) const { return c / (din / groups); }
};

template <class UV, class DV, class AV, class BV, class CV, class OV, class Z, class SIV, class SOV>
auto prepare_selective_scan(const UV& u, const DV& delta, const AV& A, const BV& B, const CV& C, const OV& out,
                            const selective_scan_options<Z>& opt, const SIV& initial_state, const SOV& final_state,
                            const char* op) {
    using T = compute_type_of<typename OV::value_type>;
    check_state_views<3, SIV, SOV>();
    using SI = typename SIV::value_type;
    using SO = typename SOV::value_type;
    check_recurrent_types<T, typename UV::value_type, typename DV::value_type, typename AV::value_type,
                          typename BV::value_type, typename CV::value_type, Z, typename OV::value_type, SI, SO>();
    selective_scan_args<T, typename UV::value_type, typename DV::value_type, typename AV::value_type,
                        typename BV::value_type, typename CV::value_type, Z, typename OV::value_type, SI, SO>
        a;
    a.u = ssm_input<3>(u, op, "u");
    a.delta = ssm_input<3>(delta, op, "delta");
    a.A = ssm_input<2>(A, op, "A");
    a.B = ssm_input<4>(B, op, "B");
    a.C = ssm_input<4>(C, op, "C");
    a.out = ssm_output<3>(out, op);
    a.z = checked_view(opt.z, op, "z");
    const index_t Bt = a.u.extent(0), N = a.u.extent(1), Din = a.u.extent(2);
    check(Din >= 1, op, "u", "a channel count >= 1", Din);
    check_shape(a.delta, {Bt, N, Din}, op, "delta");
    check_extent(a.A, 0, Din, op, "A", "channels like u");
    const index_t S = a.A.extent(1), G = a.B.extent(2);
    check(S >= 1, op, "A", "a state size >= 1", S);
    check_groups(G, Din, op, "channels");
    check_shape(a.B, {Bt, N, G, S}, op, "B");
    check_shape(a.C, {Bt, N, G, S}, op, "C");
    check_shape(a.out, {Bt, N, Din}, op, "out");
    if (!a.z.empty()) check_shape(a.z, {Bt, N, Din}, op, "z");
    check_threads(opt.num_threads, op);
    static_cast<packed_sequences&>(a) = sequences_of(a.u, opt.cu_seqlens, opt.num_seqs, op, "u");
    a.initial_state = initial_state;
    a.final_state = final_state;
    check_states<3>(a, opt, a.initial_state, a.final_state, {Din, S}, op);
    check_param(opt.D, Din, op, "D");
    check_param(opt.delta_bias, Din, op, "delta_bias");
    check_values_in(a.A, -finite_max<typename AV::value_type>, finite_max<typename AV::value_type>, op, "A",
                    "finite values");
    check_disjoint(op, {memory_of("out", a.out), memory_of("final_state", a.final_state)},
                   {memory_of("u", a.u), memory_of("delta", a.delta), memory_of("A", a.A), memory_of("B", a.B),
                    memory_of("C", a.C), memory_of("z", a.z), memory_of("initial_state", a.initial_state),
                    param_memory("D", opt.D, Din), param_memory("delta_bias", opt.delta_bias, Din)},
                   "final_state", "initial_state");
    a.D = opt.D;
    a.delta_bias = opt.delta_bias;
    a.softplus = opt.delta_softplus;
    a.din = Din;
    a.dstate = S;
    a.groups = G;
    return a;
}

// ---- ssd_scan: the recurrent family's arguments with q = C, k = B, v = x ----

// Steps dt: finite; without softplus dt + dt_bias >= 0 (the log decays d A must not grow).
template <class T, std::size_t R>
void check_ssd_steps(const tensor_view<const T, R>& dt, const float* bias, bool softplus, const char* op) {
    check_values_in(dt, -finite_max<T>, finite_max<T>, op, "dt", "finite values");
    if (softplus) return;
    const index_t H = dt.extent(R - 1), hs = dt.stride(R - 1);
    for_each_row(dt, [&](const T* row, const std::array<index_t, R>& idx) {
        for (index_t h = 0; h < H; ++h) {
            const double step = double(row[h * hs]) + (bias ? double(bias[h]) : 0.0);
            if (!(step >= 0))
                raise(detail::concat(op, ": argument 'dt': expected dt + dt_bias >= 0 without dt_softplus, given ",
                                     step, " at ", element_index(idx, h)));
        }
    });
}

// The recurrent family's arguments (Base: recurrent_args with q = C, k = B, v = x) plus the
// steps dt (stored as Dt), A (Aw) and the gate z (Z).
template <class Base, class Dt, class Aw, class Z>
struct ssd_args : Base {
    tensor_view<const Dt, 3> dt;  // [Bt,N,H]
    tensor_view<const Aw, 1> A;   // [H]
    tensor_view<const Z, 4> z;    // [Bt,N,H,P]
    const float* D = nullptr;
    const float* dt_bias = nullptr;
    bool softplus = false;
};

template <class XV, class TV, class AV, class BV, class CV, class OV, class Z, class SIV, class SOV>
auto prepare_ssd(const XV& x, const TV& dt, const AV& A, const BV& B, const CV& C, const OV& out,
                 const ssd_options<Z>& opt, const SIV& initial_state, const SOV& final_state, const char* op) {
    using T = compute_type_of<typename OV::value_type>;
    check_state_views<4, SIV, SOV>();
    using SI = typename SIV::value_type;
    using SO = typename SOV::value_type;
    check_recurrent_types<T, typename XV::value_type, typename TV::value_type, typename AV::value_type,
                          typename BV::value_type, typename CV::value_type, Z, typename OV::value_type, SI, SO>();
    using Base = recurrent_args<T, typename CV::value_type, typename BV::value_type, typename XV::value_type,
                                typename OV::value_type, SI, SO>;
    ssd_args<Base, typename TV::value_type, typename AV::value_type, Z> a;
    a.v = ssm_input<4>(x, op, "x");
    a.dt = ssm_input<3>(dt, op, "dt");
    a.A = ssm_input<1>(A, op, "A");
    a.k = ssm_input<4>(B, op, "B");
    a.q = ssm_input<4>(C, op, "C");
    a.out = ssm_output<4>(out, op);
    a.z = checked_view(opt.z, op, "z");
    const index_t Bt = a.v.extent(0), N = a.v.extent(1), H = a.v.extent(2), P = a.v.extent(3);
    const index_t G = a.k.extent(2), S = a.k.extent(3);
    check(P >= 1, op, "x", "a head dim >= 1", P);
    check(S >= 1, op, "B", "a state size >= 1", S);
    check_shape(a.dt, {Bt, N, H}, op, "dt");
    check_shape(a.A, {H}, op, "A");
    check_groups(G, H, op, "heads");
    check_shape(a.k, {Bt, N, G, S}, op, "B");
    check_shape(a.q, {Bt, N, G, S}, op, "C");
    check_shape(a.out, {Bt, N, H, P}, op, "out");
    if (!a.z.empty()) check_shape(a.z, {Bt, N, H, P}, op, "z");
    check_threads(opt.num_threads, op);
    check_chunk_size(opt.chunk_size, op);
    auto& p = a.problem;
    static_cast<packed_sequences&>(p) = sequences_of(a.v, opt.cu_seqlens, opt.num_seqs, op, "x");
    p.hk = G;
    p.hv = H;
    p.group = H / G;
    p.dk = p.dk_in = S;
    p.dv = P;
    p.scale = 1;
    a.initial_state = initial_state;
    a.final_state = final_state;
    check_states<4>(p, opt, a.initial_state, a.final_state, {H, P, S}, op);
    check_param(opt.D, H, op, "D");
    check_param(opt.dt_bias, H, op, "dt_bias");
    check_values_in(a.A, -finite_max<typename AV::value_type>, compute_type_of<typename AV::value_type>(0), op, "A",
                    "finite values <= 0 (A = -exp(A_log))");
    check_ssd_steps(a.dt, opt.dt_bias, opt.dt_softplus, op);
    check_disjoint(op, {memory_of("out", a.out), memory_of("final_state", a.final_state)},
                   {memory_of("x", a.v), memory_of("dt", a.dt), memory_of("A", a.A), memory_of("B", a.k),
                    memory_of("C", a.q), memory_of("z", a.z), memory_of("initial_state", a.initial_state),
                    param_memory("D", opt.D, H), param_memory("dt_bias", opt.dt_bias, H)},
                   "final_state", "initial_state");
    a.D = opt.D;
    a.dt_bias = opt.dt_bias;
    a.softplus = opt.dt_softplus;
    return a;
}

// ---- causal_conv1d ----

// T computes; each view keeps its element type (float, or bf16 / fp16 with T float).
template <class T, class X = T, class Wt = T, class O = T, class SI = T, class SO = T>
struct conv1d_args : packed_sequences {
    using compute_type = T;
    // x and out in T: the paths that read and write the user's rows in place.
    static constexpr bool in_place = std::is_same_v<X, T> && std::is_same_v<O, T>;
    tensor_view<const X, 3> x;        // [Bt,N,C]
    tensor_view<const Wt, 2> weight;  // [C,W]
    tensor_view<O, 3> out;
    tensor_view<const SI, 3> initial_state;  // [seqs,C,W-1]
    tensor_view<SO, 3> final_state;
    const float* bias = nullptr;
    activation act = activation::none;
    index_t channels = 0, width = 1;
};

inline void check_activation(activation act, const char* op) {
    check(act == activation::none || act == activation::silu, op, "activation", "activation::none or ::silu", int(act));
}

template <class XV, class WV, class OV, class SIV, class SOV>
auto prepare_conv1d(const XV& x, const WV& weight, const OV& out, const conv1d_options& opt, const SIV& initial_state,
                    const SOV& final_state, const char* op) {
    using T = compute_type_of<typename OV::value_type>;
    check_state_views<3, SIV, SOV>();
    check_recurrent_types<T, typename XV::value_type, typename WV::value_type, typename OV::value_type,
                          typename SIV::value_type, typename SOV::value_type>();
    conv1d_args<T, typename XV::value_type, typename WV::value_type, typename OV::value_type, typename SIV::value_type,
                typename SOV::value_type>
        a;
    a.x = ssm_input<3>(x, op, "x");
    a.weight = ssm_input<2>(weight, op, "weight");
    a.out = ssm_output<3>(out, op);
    const index_t Bt = a.x.extent(0), N = a.x.extent(1), Ch = a.x.extent(2);
    check(Ch >= 1, op, "x", "a channel count >= 1", Ch);
    check_extent(a.weight, 0, Ch, op, "weight", "channels like x");
    const index_t W = a.weight.extent(1);
    check(W >= 1, op, "weight", "a width >= 1", W);
    check_shape(a.out, {Bt, N, Ch}, op, "out");
    check_threads(opt.num_threads, op);
    check_activation(opt.activation, op);
    static_cast<packed_sequences&>(a) = sequences_of(a.x, opt.cu_seqlens, opt.num_seqs, op, "x");
    a.initial_state = initial_state;
    a.final_state = final_state;
    check_states<3>(a, opt, a.initial_state, a.final_state, {Ch, W - 1}, op);
    check_param(opt.bias, Ch, op, "bias");
    check_disjoint(op, {memory_of("out", a.out), memory_of("final_state", a.final_state)},
                   {memory_of("x", a.x), memory_of("weight", a.weight), memory_of("initial_state", a.initial_state),
                    param_memory("bias", opt.bias, Ch)},
                   "final_state", "initial_state");
    a.bias = opt.bias;
    a.act = opt.activation;
    a.channels = Ch;
    a.width = W;
    return a;
}

// ---- decode steps: one token per batch row, the seq axis dropped ----

// The slots of a pool state [slots, ...]: shape past the slot axis, indices, threads.
template <class T, std::size_t R>
tensor_view<T, R> checked_pool(const tensor_view<T, R>& state, const std::array<index_t, R - 1>& per_slot,
                               const std::int32_t* indices, index_t batch, const char* op) {
    check_given(state, op, "state");
    const auto s = checked_output(state, op, "state");
    bool same = true;
    for (std::size_t i = 1; i < R; ++i) same &= s.extent(i) == per_slot[i - 1];
    if (!same) fail(op, "state", detail::concat("shape [slots,", shape_string(per_slot).substr(1)), shape_string(s));
    check_state_indices(indices, batch, s.extent(0), op);
    return s;
}

template <class T, class U = T, class Dl = T, class Aw = T, class Bv = T, class Cv = T, class Z = T, class O = T,
          class S = T>
struct selective_scan_step_args {
    using compute_type = T;
    tensor_view<const U, 2> u;       // [B,Din]
    tensor_view<const Dl, 2> delta;  // [B,Din]
    tensor_view<const Z, 2> z;       // [B,Din]
    tensor_view<const Aw, 2> A;      // [Din,S]
    tensor_view<const Bv, 3> B;      // [B,G,S]
    tensor_view<const Cv, 3> C;      // [B,G,S]
    tensor_view<O, 2> out;
    tensor_view<S, 3> state;  // [slots,Din,S]
    const float* D = nullptr;
    const float* delta_bias = nullptr;
    bool softplus = false;
    index_t batch = 0, din = 0, dstate = 0, groups = 1;
    index_t group_of(index_t c) const { return c / (din / groups); }
};

template <class UV, class DV, class AV, class BV, class CV, class OV, class St, class Z>
auto prepare_selective_scan_step(const UV& u, const DV& delta, const AV& A, const BV& B, const CV& C, const OV& out,
                                 const tensor_view<St, 3>& state, const selective_scan_step_options<Z>& opt,
                                 const char* op) {
    using T = compute_type_of<typename OV::value_type>;
    check_pool_type<St>();
    check_recurrent_types<T, typename UV::value_type, typename DV::value_type, typename AV::value_type,
                          typename BV::value_type, typename CV::value_type, Z, typename OV::value_type, St>();
    selective_scan_step_args<T, typename UV::value_type, typename DV::value_type, typename AV::value_type,
                             typename BV::value_type, typename CV::value_type, Z, typename OV::value_type, St>
        a;
    a.u = ssm_input<2>(u, op, "u");
    a.delta = ssm_input<2>(delta, op, "delta");
    a.A = ssm_input<2>(A, op, "A");
    a.B = ssm_input<3>(B, op, "B");
    a.C = ssm_input<3>(C, op, "C");
    a.out = ssm_output<2>(out, op);
    a.z = checked_view(opt.z, op, "z");
    const index_t Bt = a.u.extent(0), Din = a.u.extent(1);
    check(Din >= 1, op, "u", "a channel count >= 1", Din);
    check_shape(a.delta, {Bt, Din}, op, "delta");
    check_extent(a.A, 0, Din, op, "A", "channels like u");
    const index_t S = a.A.extent(1), G = a.B.extent(1);
    check(S >= 1, op, "A", "a state size >= 1", S);
    check_groups(G, Din, op, "channels");
    check_shape(a.B, {Bt, G, S}, op, "B");
    check_shape(a.C, {Bt, G, S}, op, "C");
    check_shape(a.out, {Bt, Din}, op, "out");
    if (!a.z.empty()) check_shape(a.z, {Bt, Din}, op, "z");
    a.state = checked_pool(state, {Din, S}, opt.state_indices, Bt, op);
    check_threads(opt.num_threads, op);
    check_param(opt.D, Din, op, "D");
    check_param(opt.delta_bias, Din, op, "delta_bias");
    check_values_in(a.A, -finite_max<typename AV::value_type>, finite_max<typename AV::value_type>, op, "A",
                    "finite values");
    check_disjoint(op, {memory_of("out", a.out), memory_of("state", a.state)},
                   {memory_of("u", a.u), memory_of("delta", a.delta), memory_of("A", a.A), memory_of("B", a.B),
                    memory_of("C", a.C), memory_of("z", a.z), param_memory("D", opt.D, Din),
                    param_memory("delta_bias", opt.delta_bias, Din)});
    a.D = opt.D;
    a.delta_bias = opt.delta_bias;
    a.softplus = opt.delta_softplus;
    a.batch = Bt;
    a.din = Din;
    a.dstate = S;
    a.groups = G;
    return a;
}

template <class T, class X = T, class Dt = T, class Aw = T, class Bv = T, class Cv = T, class Z = T, class O = T,
          class S = T>
struct ssd_step_args {
    using compute_type = T;
    tensor_view<const X, 3> x;    // [B,H,P]
    tensor_view<const Z, 3> z;    // [B,H,P]
    tensor_view<const Dt, 2> dt;  // [B,H]
    tensor_view<const Aw, 1> A;   // [H]
    tensor_view<const Bv, 3> B;   // [B,G,S]
    tensor_view<const Cv, 3> C;   // [B,G,S]
    tensor_view<O, 3> out;
    tensor_view<S, 4> state;  // [slots,H,P,S]
    const float* D = nullptr;
    const float* dt_bias = nullptr;
    bool softplus = false;
    index_t batch = 0, heads = 0, dhead = 0, dstate = 0, groups = 1;
};

template <class XV, class TV, class AV, class BV, class CV, class OV, class St, class Z>
auto prepare_ssd_step(const XV& x, const TV& dt, const AV& A, const BV& B, const CV& C, const OV& out,
                      const tensor_view<St, 4>& state, const ssd_step_options<Z>& opt, const char* op) {
    using T = compute_type_of<typename OV::value_type>;
    check_pool_type<St>();
    check_recurrent_types<T, typename XV::value_type, typename TV::value_type, typename AV::value_type,
                          typename BV::value_type, typename CV::value_type, Z, typename OV::value_type, St>();
    ssd_step_args<T, typename XV::value_type, typename TV::value_type, typename AV::value_type, typename BV::value_type,
                  typename CV::value_type, Z, typename OV::value_type, St>
        a;
    a.x = ssm_input<3>(x, op, "x");
    a.dt = ssm_input<2>(dt, op, "dt");
    a.A = ssm_input<1>(A, op, "A");
    a.B = ssm_input<3>(B, op, "B");
    a.C = ssm_input<3>(C, op, "C");
    a.out = ssm_output<3>(out, op);
    a.z = checked_view(opt.z, op, "z");
    const index_t Bt = a.x.extent(0), H = a.x.extent(1), P = a.x.extent(2);
    const index_t G = a.B.extent(1), S = a.B.extent(2);
    check(P >= 1, op, "x", "a head dim >= 1", P);
    check(S >= 1, op, "B", "a state size >= 1", S);
    check_shape(a.dt, {Bt, H}, op, "dt");
    check_shape(a.A, {H}, op, "A");
    check_groups(G, H, op, "heads");
    check_shape(a.B, {Bt, G, S}, op, "B");
    check_shape(a.C, {Bt, G, S}, op, "C");
    check_shape(a.out, {Bt, H, P}, op, "out");
    if (!a.z.empty()) check_shape(a.z, {Bt, H, P}, op, "z");
    a.state = checked_pool(state, {H, P, S}, opt.state_indices, Bt, op);
    check_threads(opt.num_threads, op);
    check_param(opt.D, H, op, "D");
    check_param(opt.dt_bias, H, op, "dt_bias");
    check_values_in(a.A, -finite_max<typename AV::value_type>, compute_type_of<typename AV::value_type>(0), op, "A",
                    "finite values <= 0 (A = -exp(A_log))");
    check_ssd_steps(a.dt, opt.dt_bias, opt.dt_softplus, op);
    check_disjoint(
        op, {memory_of("out", a.out), memory_of("state", a.state)},
        {memory_of("x", a.x), memory_of("dt", a.dt), memory_of("A", a.A), memory_of("B", a.B), memory_of("C", a.C),
         memory_of("z", a.z), param_memory("D", opt.D, H), param_memory("dt_bias", opt.dt_bias, H)});
    a.D = opt.D;
    a.dt_bias = opt.dt_bias;
    a.softplus = opt.dt_softplus;
    a.batch = Bt;
    a.heads = H;
    a.dhead = P;
    a.dstate = S;
    a.groups = G;
    return a;
}

template <class T, class X = T, class Wt = T, class O = T, class S = T>
struct conv1d_step_args {
    using compute_type = T;
    static constexpr bool in_place = std::is_same_v<X, T> && std::is_same_v<Wt, T> && std::is_same_v<S, T>;
    tensor_view<const X, 2> x;        // [B,C]
    tensor_view<const Wt, 2> weight;  // [C,W]
    tensor_view<O, 2> out;
    tensor_view<S, 3> state;  // [slots,C,W-1]
    const float* bias = nullptr;
    activation act = activation::none;
    index_t batch = 0, channels = 0, width = 1;
};

template <class XV, class WV, class OV, class S>
auto prepare_conv1d_step(const XV& x, const WV& weight, const OV& out, const tensor_view<S, 3>& state,
                         const conv1d_step_options& opt, const char* op) {
    using T = compute_type_of<typename OV::value_type>;
    check_pool_type<S>();
    check_recurrent_types<T, typename XV::value_type, typename WV::value_type, typename OV::value_type, S>();
    conv1d_step_args<T, typename XV::value_type, typename WV::value_type, typename OV::value_type, S> a;
    a.x = ssm_input<2>(x, op, "x");
    a.weight = ssm_input<2>(weight, op, "weight");
    a.out = ssm_output<2>(out, op);
    const index_t Bt = a.x.extent(0), Ch = a.x.extent(1);
    check(Ch >= 1, op, "x", "a channel count >= 1", Ch);
    check_extent(a.weight, 0, Ch, op, "weight", "channels like x");
    const index_t W = a.weight.extent(1);
    check(W >= 1, op, "weight", "a width >= 1", W);
    check_shape(a.out, {Bt, Ch}, op, "out");
    // A width-1 filter keeps no state: the pool may then be empty.
    if (W > 1 || !state.empty()) a.state = checked_pool(state, {Ch, W - 1}, opt.state_indices, Bt, op);
    check_threads(opt.num_threads, op);
    check_activation(opt.activation, op);
    check_param(opt.bias, Ch, op, "bias");
    check_disjoint(op, {memory_of("out", a.out), memory_of("state", a.state)},
                   {memory_of("x", a.x), memory_of("weight", a.weight), param_memory("bias", opt.bias, Ch)});
    a.bias = opt.bias;
    a.act = opt.activation;
    a.batch = Bt;
    a.channels = Ch;
    a.width = W;
    return a;
}

}  // namespace detail
SEQMIX_ABI_END
}  // namespace seqmix
