#pragma once
// seqmix::reference::softmax_attention: the obviously-correct loop version, in double.
// It evaluates the mask predicate of the contract for every (query, key) pair directly
// and shares nothing with the fast kernel but the argument validation and the contract's
// key addressing (paged caches).
#include <cmath>
#include <limits>
#include <vector>

#include "../core/abi.hpp"
#include "../contract/attention.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace reference {

template <class QV, class KV, class VV, class OV>
void softmax_attention(const QV& q_in, const KV& k_in, const VV& v_in, const OV& out_in,
                       const attention_options& opt = {},
                       tensor_view<typename OV::value_type, 3> lse_in = {}) {
    using T = typename OV::value_type;
    auto a = seqmix::detail::prepare_attention(q_in, k_in, v_in, out_in, lse_in, opt,
                                       "reference::softmax_attention");
    const auto& p = a.problem;
    const double neg_inf = -std::numeric_limits<double>::infinity();
    std::vector<double> s;
    std::vector<bool> visible_key;
    for (index_t seq = 0; seq < p.num_seqs; ++seq) {
        const auto sq = p.sequence(seq);
        for (index_t h = 0; h < p.hq; ++h) {
            const index_t hk = h / p.group;
            for (index_t i = 0; i < sq.q_len; ++i) {
                const index_t diag = i + sq.k_len - sq.q_len;
                s.assign(std::size_t(sq.k_len), neg_inf);
                visible_key.assign(std::size_t(sq.k_len), false);
                double m = neg_inf;
                for (index_t j = 0; j < sq.k_len; ++j) {
                    bool visible = true;
                    if (opt.causal && j > diag) visible = false;
                    if (opt.window_left >= 0 && j < diag - opt.window_left) visible = false;
                    if (opt.window_right >= 0 && j > diag + opt.window_right) visible = false;
                    if (!visible) continue;
                    visible_key[std::size_t(j)] = true;
                    const auto key = p.key_at(sq, j);
                    double dot = 0;
                    for (index_t d = 0; d < p.dk; ++d)
                        dot += double(a.q(sq.batch, sq.q_begin + i, h, d)) * double(a.k(key.block, key.row, hk, d));
                    double score = p.scale * dot;
                    if (opt.softcap > 0) score = opt.softcap * std::tanh(score / opt.softcap);
                    if (opt.alibi_slopes)
                        score -= double(opt.alibi_slopes[h]) * double(std::abs(diag - j));
                    s[std::size_t(j)] = score;
                    m = std::max(m, score);
                }
                // A sink is one more score, with a zero value.
                const double sink = opt.sinks ? double(opt.sinks[h]) : neg_inf;
                m = std::max(m, sink);
                double sum = sink == neg_inf ? 0.0 : std::exp(sink - m);
                for (auto& x : s) {
                    x = (x == neg_inf) ? 0.0 : std::exp(x - m);
                    sum += x;
                }
                for (index_t e = 0; e < p.dv; ++e) {
                    double acc = 0;
                    for (index_t j = 0; j < sq.k_len; ++j) {  // masked keys never contribute (not even 0 * Inf)
                        if (!visible_key[std::size_t(j)]) continue;
                        const auto key = p.key_at(sq, j);
                        acc += s[std::size_t(j)] * double(a.v(key.block, key.row, hk, e));
                    }
                    a.out(sq.batch, sq.q_begin + i, h, e) = sum == 0 ? T(0) : T(acc / sum);
                }
                if (!a.lse.empty())
                    a.lse(sq.batch, h, sq.q_begin + i) = sum == 0 ? T(neg_inf) : T(m + std::log(sum));
            }
        }
    }
}

}  // namespace reference
SEQMIX_ABI_END
}  // namespace seqmix
