#pragma once
// The contract of linear_attention: options, feature maps and argument validation.
#include "recurrent.hpp"

namespace seqmix {

struct linear_attention_options : state_pool_options {
    seqmix::feature_map feature_map = seqmix::feature_map::identity;  // applied to q and k
    bool normalize = false;                    // o = S^T phi(q) / (z . phi(q) + eps); states get a normalizer column
    double eps = 1e-6;                         // > 0 with normalize
    bool causal = true;                        // false: bidirectional (encoder), every query sees every key
    const float* log_decay = nullptr;          // [Hv], <= 0: S_t = exp(log_decay) S_{t-1} + ...
    double scale = 0;                          // 0 = 1/sqrt(Dk) (ignored when normalize: it cancels)
    int chunk_size = 0;                        // 0 = the measured default
    const std::int32_t* cu_seqlens = nullptr;  // [num_seqs + 1], packed varlen
    int num_seqs = 0;                          // seqmix extension: entries in cu_seqlens minus one
    int num_threads = 0;
    seqmix::executor* executor = nullptr;  // nullptr = OpenMP; else its threads (core/executor.hpp)
};

struct linear_attention_step_options : recurrent_step_options {
    seqmix::feature_map feature_map = seqmix::feature_map::identity;
    bool normalize = false;
    double eps = 1e-6;
    const float* log_decay = nullptr;
};

SEQMIX_ABI_BEGIN
namespace detail {

// eps keeps the normalizer z . phi(q) + eps away from 0: with a non-negative feature map
// (elu_plus_one, relu, taylor2) it is then at least eps, so finite inputs give finite outputs
// (eps = 0 would give 0 / 0 for a query with phi(q) = 0). Unused without normalize.
template <class T>
void check_normalizer_eps(bool normalize, double eps, const char* op) {
    check_finite_as<T>(eps, op, "eps");
    if (normalize)
        check(eps > 0, op, "eps", "a value > 0 with normalize (the normalizer z . phi(q) + eps must not vanish)", eps);
    else check(eps >= 0, op, "eps", "a value >= 0", eps);
}

template <class QV, class KV, class VV, class OV, class SIV, class SOV>
auto prepare_linear_attention(const QV& q, const KV& k, const VV& v, const OV& out, const linear_attention_options& opt,
                              const SIV& initial_state, const SOV& final_state, const char* op) {
    using T = compute_type_of<typename OV::value_type>;
    auto a = prepare_recurrent(q, k, v, out, initial_state, final_state, op);
    const index_t dphi = feature_dim(opt.feature_map, a.q.empty() ? 0 : a.q.extent(3));
    validate_recurrent(a, op, opt.cu_seqlens, opt.num_seqs, opt, opt.num_threads, dphi, opt.normalize ? 1 : 0);
    check_finite_as<T>(opt.scale, op, "scale");
    check_normalizer_eps<T>(opt.normalize, opt.eps, op);
    check_chunk_size(opt.chunk_size, op);
    check_log_decay(opt.log_decay, a.problem.hv, op);
    check(opt.causal || !opt.log_decay, op, "log_decay", "nullptr when causal = false (no decay bidirectionally)",
          "a decay array");
    check(opt.causal || opt.snapshot_interval == 0, op, "snapshot_interval",
          "0 when causal = false (no state between the tokens of a bidirectional pass)", opt.snapshot_interval);
    a.problem.scale = opt.scale != 0 ? opt.scale : 1.0 / std::sqrt(double(a.problem.dk_in));
    check_recurrent_memory(a, op);
    return a;
}

template <class QV, class KV, class VV, class OV, class S>
auto prepare_linear_attention_step(const QV& q, const KV& k, const VV& v, const OV& out, const tensor_view<S, 4>& state,
                                   const linear_attention_step_options& opt, const char* op) {
    using T = compute_type_of<typename OV::value_type>;
    auto s = prepare_step(q, k, v, out, state, opt, opt.feature_map, opt.normalize ? 1 : 0, op);
    check_normalizer_eps<T>(opt.normalize, opt.eps, op);
    check_log_decay(opt.log_decay, s.hv, op);
    return s;
}

}  // namespace detail
SEQMIX_ABI_END
}  // namespace seqmix
