#pragma once
// The contract of the recurrent family (linear attention, GLA; later the delta rule):
// options structs, the problem description, and the argument validation shared by the
// fast operators, their decode steps and seqmix::reference.
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include "../core/tensor_view.hpp"
#include "../core/validate.hpp"

namespace seqmix {

// Options of the decode steps: one token per batch row, states updated in place.
// Feature maps of linear attention (phi, applied to q and k); identity elsewhere.
enum class feature_map { identity, elu_plus_one, relu, taylor2 };

// Feature dimension of phi for head dim d.
inline index_t feature_dim(feature_map f, index_t d) { return f == feature_map::taylor2 ? 1 + d + d * d : d; }

struct recurrent_step_options {
    double scale = 0;
    const std::int32_t* state_indices = nullptr;  // [B]: row b uses state slot state_indices[b]
    int num_threads = 0;
};

namespace detail {

// One sequence of a recurrent problem.
struct recurrent_sequence {
    index_t batch, begin, len;
};

struct recurrent_problem {
    index_t num_seqs, hk, hv, group, dk, dv;  // dk: feature dim (after phi); group = hv / hk
    index_t dk_in;                             // head dim of q and k before phi
    index_t n_padded;
    const std::int32_t* cu_seqlens;
    bool vector_gate;  // gla: g is [B,N,H,Dk]
    double scale;
    recurrent_sequence sequence(index_t s) const {
        if (cu_seqlens) return {0, cu_seqlens[s], cu_seqlens[s + 1] - cu_seqlens[s]};
        return {s, 0, n_padded};
    }
};

template <class T>
struct recurrent_args {
    tensor_view<const T, 4> q, k, v, g4;  // g4: vector gate [B,N,H,Dk]
    tensor_view<const T, 3> g3;           // scalar gate [B,N,H]
    tensor_view<T, 4> out;
    tensor_view<const T, 4> initial_state;
    tensor_view<T, 4> final_state;
    recurrent_problem problem;
};

// Common checks of q, k, v, out, states; dk_state is the state's row count (phi dim),
// dv_state its column count (Dv, or Dv + 1 with a normalizer column).
template <class T>
void validate_recurrent(recurrent_args<T>& a, const char* op, const std::int32_t* cu_seqlens, int num_seqs,
                        int num_threads, index_t dk_state, index_t dv_extra) {
    check_given(a.q, op, "q");
    check_given(a.k, op, "k");
    check_given(a.v, op, "v");
    check_given(a.out, op, "out");
    const index_t B = a.q.extent(0), N = a.q.extent(1), Hk = a.q.extent(2), Dk = a.q.extent(3);
    const index_t Hv = a.v.extent(2), Dv = a.v.extent(3);
    check_shape(a.k, {B, N, Hk, Dk}, op, "k");
    check_extent(a.v, 0, B, op, "v", "batch like q");
    check_extent(a.v, 1, N, op, "v", "sequence length like q");
    check(Dk >= 1 && Dv >= 1, op, "q", "head dims >= 1", detail::concat("Dk = ", Dk, ", Dv = ", Dv));
    check(Hk >= 1 && Hv % Hk == 0, op, "v",
          detail::concat("a head count that is a multiple of q's ", Hk, " (grouped heads)"), Hv);
    check_shape(a.out, {B, N, Hv, Dv}, op, "out");
    check_no_alias(a.out, "out", a.q, "q", op);
    check_no_alias(a.out, "out", a.k, "k", op);
    check_no_alias(a.out, "out", a.v, "v", op);
    check_threads(num_threads, op);
    index_t seqs = B;
    if (cu_seqlens) {
        check(B == 1, op, "q", "batch 1 with cu_seqlens (packed sequences)", B);
        seqs = num_seqs;
        check_cu_seqlens(cu_seqlens, seqs, N, op, "cu_seqlens");
    }
    const std::array<index_t, 4> state_shape{seqs, Hv, dk_state, Dv + dv_extra};
    if (!a.initial_state.empty()) check_shape(a.initial_state, state_shape, op, "initial_state");
    if (!a.final_state.empty()) {
        check_shape(a.final_state, state_shape, op, "final_state");
        check_no_alias(a.final_state, "final_state", a.q, "q", op);
        check_no_alias(a.final_state, "final_state", a.k, "k", op);
        check_no_alias(a.final_state, "final_state", a.v, "v", op);
        check_no_alias(a.final_state, "final_state", a.out, "out", op);
    }
    auto& p = a.problem;
    p.num_seqs = seqs;
    p.hk = Hk;
    p.hv = Hv;
    p.group = Hv / Hk;
    p.dk_in = Dk;
    p.dk = dk_state;
    p.dv = Dv;
    p.n_padded = N;
    p.cu_seqlens = cu_seqlens;
}

// Log gates must be <= 0 (forget gates in (0, 1]); NaN is rejected too. One pass over g,
// outer axes by an odometer, the last axis as a plain strided loop.
template <class T, std::size_t R>
void check_log_gates(const tensor_view<const T, R>& g, const char* op) {
    if (g.size() == 0) return;
    std::array<index_t, R> idx{};
    const index_t inner = g.extent(R - 1), stride = g.stride(R - 1);
    while (true) {
        const T* row = g.data();
        for (std::size_t d = 0; d + 1 < R; ++d) row += idx[d] * g.stride(d);
        bool ok = true;
        for (index_t i = 0; i < inner; ++i) ok &= row[i * stride] <= T(0);  // false for NaN too
        if (!ok) {
            for (index_t i = 0; i < inner; ++i) {
                const T x = row[i * stride];
                if (x <= T(0)) continue;
                std::string at;
                for (std::size_t d = 0; d + 1 < R; ++d) at += std::to_string(idx[d]) + ",";
                raise(detail::concat(op, ": argument 'g': expected log forget gates <= 0, given ", x, " at [", at, i,
                                     "]"));
            }
        }
        std::size_t d = R - 1;
        while (d-- > 0) {
            if (++idx[d] < g.extent(d)) break;
            idx[d] = 0;
        }
        if (d == std::size_t(-1)) return;
    }
}

template <class QV, class KV, class VV, class OV, class SI, class SO>
auto prepare_recurrent(const QV& q, const KV& k, const VV& v, const OV& out, const SI& initial_state,
                       const SO& final_state, const char* op) {
    using T = typename OV::value_type;
    const auto views = as_batched_qkvo<4>(q, k, v, out, op, "[B,N,H,D]");
    recurrent_args<T> a;
    a.q = views.q;
    a.k = views.k;
    a.v = views.v;
    a.out = views.out;
    a.initial_state = initial_state;
    a.final_state = final_state;
    return a;
}

// Decode-step arguments: one token per batch row, the seq axis dropped.
template <class T>
struct step_args {
    tensor_view<const T, 3> q, k, v;
    tensor_view<T, 3> out;
    index_t batch, hk, hv, dk_in, dk, dv;
};

template <class QV, class KV, class VV, class OV, class T, class Options, class FeatureMap>
step_args<T> prepare_step(const QV& q, const KV& k, const VV& v, const OV& out, const tensor_view<T, 4>& state,
                          const Options& opt, FeatureMap fmap, index_t dv_extra, const char* op) {
    const auto views = as_batched_qkvo<3>(q, k, v, out, op, "[B,H,D]");
    step_args<T> s;
    s.q = views.q;
    s.k = views.k;
    s.v = views.v;
    s.out = views.out;
    check_given(s.q, op, "q");
    check_given(s.k, op, "k");
    check_given(s.v, op, "v");
    check_given(s.out, op, "out");
    check_given(state, op, "state");
    s.batch = s.q.extent(0);
    s.hk = s.q.extent(1);
    s.dk_in = s.q.extent(2);
    s.hv = s.v.extent(1);
    s.dv = s.v.extent(2);
    s.dk = feature_dim(fmap, s.dk_in);
    check_shape(s.k, {s.batch, s.hk, s.dk_in}, op, "k");
    check_extent(s.v, 0, s.batch, op, "v", "batch like q");
    check(s.hk >= 1 && s.hv % s.hk == 0, op, "v",
          detail::concat("a head count that is a multiple of q's ", s.hk, " (grouped heads)"), s.hv);
    check_shape(s.out, {s.batch, s.hv, s.dv}, op, "out");
    const index_t slots = state.extent(0);
    check(state.extent(1) == s.hv && state.extent(2) == s.dk && state.extent(3) == s.dv + dv_extra, op, "state",
          detail::concat("shape [slots,", s.hv, ",", s.dk, ",", s.dv + dv_extra, "]"), shape_string(state));
    if (opt.state_indices) {
        for (index_t b = 0; b < s.batch; ++b)
            if (opt.state_indices[b] < 0 || opt.state_indices[b] >= slots)
                raise(detail::concat(op, ": argument 'state_indices': expected 0 <= state_indices[", b, "] < ", slots,
                                     ", given ", opt.state_indices[b]));
    } else {
        check(slots == s.batch, op, "state", detail::concat(s.batch, " slots (one per batch row) without state_indices"),
              slots);
    }
    check_no_alias(s.out, "out", state, "state", op);
    check_no_alias(state, "state", s.q, "q", op);
    check_no_alias(state, "state", s.k, "k", op);
    check_no_alias(state, "state", s.v, "v", op);
    check_no_alias(s.out, "out", s.q, "q", op);
    check_no_alias(s.out, "out", s.v, "v", op);
    check_finite(opt.scale, op, "scale");
    check_threads(opt.num_threads, op);
    return s;
}

inline void check_log_decay(const float* log_decay, index_t hv, const char* op) {
    if (!log_decay) return;
    for (index_t h = 0; h < hv; ++h)
        if (!(log_decay[h] <= 0.0f))
            raise(detail::concat(op, ": argument 'log_decay': expected values <= 0, given log_decay[", h, "] = ",
                                 log_decay[h]));
}

inline void check_chunk_size(int c, const char* op) {
    check(c == 0 || (c >= 1 && c <= 1024), op, "chunk_size", "0 (default) or 1..1024", c);
}

}  // namespace detail
}  // namespace seqmix
