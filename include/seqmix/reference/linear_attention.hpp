#pragma once
// seqmix::reference::linear_attention: the recurrence token by token, in double.
#include <cmath>
#include <vector>

#include "../core/abi.hpp"
#include "../contract/linear_attention.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace reference {

namespace detail {
// phi(x) in double, straight from the definitions.
inline std::vector<double> feature(seqmix::feature_map f, const std::vector<double>& x) {
    std::vector<double> y;
    switch (f) {
        case seqmix::feature_map::identity: return x;
        case seqmix::feature_map::relu:
            for (double e : x) y.push_back(e > 0 ? e : 0.0);
            return y;
        case seqmix::feature_map::elu_plus_one:
            for (double e : x) y.push_back(e > 0 ? e + 1.0 : std::exp(e));
            return y;
        case seqmix::feature_map::taylor2:
            y.push_back(1.0);
            for (double e : x) y.push_back(e);
            for (double a : x)
                for (double b : x) y.push_back(a * b / std::sqrt(2.0));
            return y;
    }
    return y;
}
}  // namespace detail

template <class QV, class KV, class VV, class OV,
          class SIV = tensor_view<const compute_type_of<typename OV::value_type>, 4>,
          class SOV = tensor_view<compute_type_of<typename OV::value_type>, 4>>
void linear_attention(const QV& q_in, const KV& k_in, const VV& v_in, const OV& out_in,
                      const linear_attention_options& opt = {}, const SIV& initial_state = {},
                      const SOV& final_state = {}) {
    auto a = seqmix::detail::prepare_linear_attention(q_in, k_in, v_in, out_in, opt, initial_state, final_state,
                                                      "reference::linear_attention");
    const auto& p = a.problem;
    const index_t dv_state = p.dv + (opt.normalize ? 1 : 0);
    auto row = [&](const auto& x, index_t b, index_t n, index_t h, index_t d) {
        std::vector<double> r(static_cast<std::size_t>(d));
        for (index_t i = 0; i < d; ++i) r[std::size_t(i)] = double(x(b, n, h, i));
        return r;
    };
    for (index_t s = 0; s < p.num_seqs; ++s) {
        const auto sq = p.sequence(s);
        // A state pool: the sequence's slot (pad_slot: skipped), its start (zeros or the slot).
        const index_t slot = p.state_slot(s);
        if (slot < 0) continue;
        const auto init = seqmix::detail::initial_of(a, p, s);
        const auto fin = seqmix::detail::final_of(a, p, s);
        for (index_t h = 0; h < p.hv; ++h) {
            const index_t hk = h / p.group;
            const double decay = opt.log_decay ? std::exp(double(opt.log_decay[h])) : 1.0;
            // S[i][j], j == Dv is the normalizer z when normalizing.
            std::vector<double> S(std::size_t(p.dk * dv_state), 0.0);
            auto store = [&](index_t to) {  // S into pool slot `to` (the final state or a snapshot)
                for (index_t i = 0; i < p.dk; ++i)
                    for (index_t j = 0; j < dv_state; ++j)
                        a.final_state(to, h, i, j) =
                            seqmix::detail::rounded_to(a.final_state, S[std::size_t(i * dv_state + j)]);
            };
            if (!init.empty())
                for (index_t i = 0; i < p.dk; ++i)
                    for (index_t j = 0; j < dv_state; ++j)
                        S[std::size_t(i * dv_state + j)] = double(init(slot, h, i, j));
            auto add_token = [&](index_t t) {
                const auto kf = detail::feature(opt.feature_map, row(a.k, sq.batch, sq.begin + t, hk, p.dk_in));
                const auto vv = row(a.v, sq.batch, sq.begin + t, h, p.dv);
                for (index_t i = 0; i < p.dk; ++i) {
                    for (index_t j = 0; j < dv_state; ++j) {
                        const double vj = j < p.dv ? vv[std::size_t(j)] : 1.0;
                        double& e = S[std::size_t(i * dv_state + j)];
                        e = decay * e + kf[std::size_t(i)] * vj;
                    }
                }
            };
            auto read = [&](index_t t) {
                const auto qf = detail::feature(opt.feature_map, row(a.q, sq.batch, sq.begin + t, hk, p.dk_in));
                double den = 0;
                if (opt.normalize)
                    for (index_t i = 0; i < p.dk; ++i) den += S[std::size_t(i * dv_state + p.dv)] * qf[std::size_t(i)];
                for (index_t j = 0; j < p.dv; ++j) {
                    double num = 0;
                    for (index_t i = 0; i < p.dk; ++i) num += S[std::size_t(i * dv_state + j)] * qf[std::size_t(i)];
                    a.out(sq.batch, sq.begin + t, h, j) =
                        seqmix::detail::rounded_to(a.out, opt.normalize ? num / (den + opt.eps) : p.scale * num);
                }
            };
            if (opt.causal) {
                for (index_t t = 0; t < sq.len; ++t) {
                    add_token(t);
                    read(t);
                    if (p.snapshot_after(s, t) >= 0) store(p.snapshot_after(s, t));
                }
            } else {
                for (index_t t = 0; t < sq.len; ++t) add_token(t);
                for (index_t t = 0; t < sq.len; ++t) read(t);
            }
            if (!fin.empty()) store(slot);
        }
    }
}

}  // namespace reference
SEQMIX_ABI_END
}  // namespace seqmix
