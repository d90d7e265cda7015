#pragma once
// seqmix::reference::delta_rule / gated_delta_rule, token by token in double:
//   S' = diag(exp(g_t)) S_{t-1}                 (no gate: S' = S_{t-1})
//   S_t = S' + beta_t k_t (v_t - S'^T k_t)^T     = (I - beta_t k_t k_t^T) S' + beta_t k_t v_t^T
//   o_t = scale S_t^T q_t
// with q and k first divided by sqrt(sum x^2 + 1e-6) when qk_l2norm.
#include <cmath>
#include <cstddef>
#include <vector>

#include "../contract/delta_rule.hpp"
#include "../core/abi.hpp"
#include "gates.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace reference {

namespace detail {
template <class Args>
void delta_rule_run(const Args& a, const delta_options& opt) {
    const auto& p = a.problem;
    std::vector<double> S(std::size_t(p.dk * p.dv)), q(std::size_t(p.dk)), k(std::size_t(p.dk)), u(std::size_t(p.dv));
    for (index_t s = 0; s < p.num_seqs; ++s) {
        const auto sq = p.sequence(s);
        // A state pool: the sequence's slot (pad_slot: skipped), its start (zeros or the slot).
        const index_t slot = p.state_slot(s);
        if (slot < 0) continue;
        const auto init = seqmix::detail::initial_of(a, p, s);
        const auto fin = seqmix::detail::final_of(a, p, s);
        for (index_t h = 0; h < p.hv; ++h) {
            const index_t hk = h / p.group;
            auto store = [&](index_t to) {  // S into pool slot `to` (the final state or a snapshot)
                for (index_t i = 0; i < p.dk; ++i)
                    for (index_t j = 0; j < p.dv; ++j)
                        a.final_state(to, h, i, j) =
                            seqmix::detail::rounded_to(a.final_state, S[std::size_t(i * p.dv + j)]);
            };
            for (index_t i = 0; i < p.dk; ++i)
                for (index_t j = 0; j < p.dv; ++j)
                    S[std::size_t(i * p.dv + j)] = init.empty() ? 0.0 : double(init(slot, h, i, j));
            for (index_t t = 0; t < sq.len; ++t) {
                const index_t n = sq.begin + t;
                double qq = 0, kk = 0;
                for (index_t i = 0; i < p.dk; ++i) {
                    q[std::size_t(i)] = double(a.q(sq.batch, n, hk, i));
                    k[std::size_t(i)] = double(a.k(sq.batch, n, hk, i));
                    qq += q[std::size_t(i)] * q[std::size_t(i)];
                    kk += k[std::size_t(i)] * k[std::size_t(i)];
                }
                if (a.l2norm)
                    for (index_t i = 0; i < p.dk; ++i) {
                        q[std::size_t(i)] /= std::sqrt(qq + l2norm_eps);
                        k[std::size_t(i)] /= std::sqrt(kk + l2norm_eps);
                    }
                if (a.gated)
                    for (index_t i = 0; i < p.dk; ++i) {
                        const double decay = std::exp(
                            a.vector_gate ? double(a.g4(sq.batch, n, h, i))
                                          : projected_gate(double(a.g3(sq.batch, n, h)), opt.A_log, opt.dt_bias, h));
                        for (index_t j = 0; j < p.dv; ++j) S[std::size_t(i * p.dv + j)] *= decay;
                    }
                const double beta = learning_rate(double(a.beta(sq.batch, n, h)), opt.beta_sigmoid);
                for (index_t j = 0; j < p.dv; ++j) {
                    double pred = 0;
                    for (index_t i = 0; i < p.dk; ++i) pred += S[std::size_t(i * p.dv + j)] * k[std::size_t(i)];
                    u[std::size_t(j)] = beta * (double(a.v(sq.batch, n, h, j)) - pred);
                }
                for (index_t i = 0; i < p.dk; ++i)
                    for (index_t j = 0; j < p.dv; ++j)
                        S[std::size_t(i * p.dv + j)] += k[std::size_t(i)] * u[std::size_t(j)];
                for (index_t j = 0; j < p.dv; ++j) {
                    double o = 0;
                    for (index_t i = 0; i < p.dk; ++i) o += S[std::size_t(i * p.dv + j)] * q[std::size_t(i)];
                    a.out(sq.batch, n, h, j) = seqmix::detail::rounded_to(a.out, p.scale * o);
                }
                if (p.snapshot_after(s, t) >= 0) store(p.snapshot_after(s, t));
            }
            if (!fin.empty()) store(slot);
        }
    }
}
}  // namespace detail

// DeltaNet: q, k [B,N,Hk,Dk], v and out [B,N,Hv,Dv], beta [B,N,Hv]; states [B,Hv,Dk,Dv].
template <class QV, class KV, class VV, class BV, class OV,
          class SIV = tensor_view<const compute_type_of<typename OV::value_type>, 4>,
          class SOV = tensor_view<compute_type_of<typename OV::value_type>, 4>>
void delta_rule(const QV& q, const KV& k, const VV& v, const BV& beta, const OV& out, const delta_options& opt = {},
                const SIV& initial_state = {}, const SOV& final_state = {}) {
    detail::delta_rule_run(seqmix::detail::prepare_delta(q, k, v, nullptr, beta, out, opt, initial_state, final_state,
                                                         "reference::delta_rule"),
                           opt);
}

// Gated DeltaNet (g [B,N,Hv]) and the per-key-channel gate of KDA (g [B,N,Hv,Dk]).
template <class QV, class KV, class VV, class GV, class BV, class OV,
          class SIV = tensor_view<const compute_type_of<typename OV::value_type>, 4>,
          class SOV = tensor_view<compute_type_of<typename OV::value_type>, 4>>
void gated_delta_rule(const QV& q, const KV& k, const VV& v, const GV& g, const BV& beta, const OV& out,
                      const delta_options& opt = {}, const SIV& initial_state = {}, const SOV& final_state = {}) {
    detail::delta_rule_run(seqmix::detail::prepare_delta(q, k, v, g, beta, out, opt, initial_state, final_state,
                                                         "reference::gated_delta_rule"),
                           opt);
}

}  // namespace reference
SEQMIX_ABI_END
}  // namespace seqmix
