#pragma once
// seqmix::reference::gated_linear_attention: S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T,
// o_t = scale S_t^T q_t, token by token in double.
#include <cmath>
#include <vector>

#include "../core/abi.hpp"
#include "../contract/gated_linear_attention.hpp"
#include "gates.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace reference {

template <class QV, class KV, class VV, class GV, class OV,
          class SIV = tensor_view<const compute_type_of<typename OV::value_type>, 4>,
          class SOV = tensor_view<compute_type_of<typename OV::value_type>, 4>>
void gated_linear_attention(const QV& q_in, const KV& k_in, const VV& v_in, const GV& g_in, const OV& out_in,
                            const gla_options& opt = {}, const SIV& initial_state = {}, const SOV& final_state = {}) {
    auto a = seqmix::detail::prepare_gla(q_in, k_in, v_in, g_in, out_in, opt, initial_state, final_state,
                                         "reference::gated_linear_attention");
    const auto& p = a.problem;
    for (index_t s = 0; s < p.num_seqs; ++s) {
        const auto sq = p.sequence(s);
        // A state pool: the sequence's slot (pad_slot: skipped), its start (zeros or the slot).
        const index_t slot = p.state_slot(s);
        if (slot < 0) continue;
        const auto init = seqmix::detail::initial_of(a, p, s);
        const auto fin = seqmix::detail::final_of(a, p, s);
        for (index_t h = 0; h < p.hv; ++h) {
            const index_t hk = h / p.group;
            std::vector<double> S(std::size_t(p.dk * p.dv), 0.0);
            auto store = [&](index_t to) {  // S into pool slot `to` (the final state or a snapshot)
                for (index_t i = 0; i < p.dk; ++i)
                    for (index_t j = 0; j < p.dv; ++j)
                        a.final_state(to, h, i, j) =
                            seqmix::detail::rounded_to(a.final_state, S[std::size_t(i * p.dv + j)]);
            };
            if (!init.empty())
                for (index_t i = 0; i < p.dk; ++i)
                    for (index_t j = 0; j < p.dv; ++j) S[std::size_t(i * p.dv + j)] = double(init(slot, h, i, j));
            for (index_t t = 0; t < sq.len; ++t) {
                const index_t n = sq.begin + t;
                for (index_t i = 0; i < p.dk; ++i) {
                    const double gate = std::exp(a.vector_gate ? double(a.g4(sq.batch, n, h, i))
                                                               : detail::projected_gate(double(a.g3(sq.batch, n, h)),
                                                                                        opt.A_log, opt.dt_bias, h));
                    const double ki = double(a.k(sq.batch, n, hk, i));
                    for (index_t j = 0; j < p.dv; ++j) {
                        double& e = S[std::size_t(i * p.dv + j)];
                        e = gate * e + ki * double(a.v(sq.batch, n, h, j));
                    }
                }
                for (index_t j = 0; j < p.dv; ++j) {
                    double o = 0;
                    for (index_t i = 0; i < p.dk; ++i)
                        o += S[std::size_t(i * p.dv + j)] * double(a.q(sq.batch, n, hk, i));
                    a.out(sq.batch, n, h, j) = seqmix::detail::rounded_to(a.out, p.scale * o);
                }
                if (p.snapshot_after(s, t) >= 0) store(p.snapshot_after(s, t));
            }
            if (!fin.empty()) store(slot);
        }
    }
}

}  // namespace reference
SEQMIX_ABI_END
}  // namespace seqmix
