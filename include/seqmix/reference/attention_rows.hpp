#pragma once
// The loop every reference attention operator runs, in double: for each sequence, query head
// and query, the scores of the keys a predicate says it sees, the softmax over them (and the
// sink, a score with a zero value), and P V. Each reference operator is this loop plus its
// own predicate evaluated pair by pair; it shares nothing with the fast kernels but the
// argument validation and the contract's key addressing.
#include <cmath>
#include <limits>
#include <vector>

#include "../contract/attention.hpp"
#include "../core/abi.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace reference {
namespace detail {

// visible(sq, h, i, j): query i of head h sees key j of sequence sq.
// logit(sq, h, i, j, s): the score after the logits transform of the operator.
// sinks: one logit per query head, or nullptr.
template <class T, class Visible, class Logit>
void attention_rows(const seqmix::detail::attention_args<T>& a, Visible&& visible, Logit&& logit,
                    const float* sinks) {
    const auto& p = a.problem;
    const double neg_inf = -std::numeric_limits<double>::infinity();
    std::vector<double> s;
    std::vector<bool> seen;
    for (index_t seq = 0; seq < p.num_seqs; ++seq) {
        const auto sq = p.sequence(seq);
        for (index_t h = 0; h < p.hq; ++h) {
            const index_t hk = h / p.group;
            for (index_t i = 0; i < sq.q_len; ++i) {
                s.assign(std::size_t(sq.k_len), neg_inf);
                seen.assign(std::size_t(sq.k_len), false);
                double m = neg_inf;
                for (index_t j = 0; j < sq.k_len; ++j) {
                    if (!visible(sq, h, i, j)) continue;
                    seen[std::size_t(j)] = true;
                    const auto key = p.key_at(sq, j);
                    double dot = 0;
                    for (index_t d = 0; d < p.dk; ++d)
                        dot += double(a.q(sq.batch, sq.q_begin + i, h, d)) * double(a.k(key.block, key.row, hk, d));
                    const double score = logit(sq, h, i, j, p.scale * dot);
                    s[std::size_t(j)] = score;
                    m = std::max(m, score);
                }
                // A sink is one more score, with a zero value.
                const double sink = sinks ? double(sinks[h]) : neg_inf;
                m = std::max(m, sink);
                double sum = sink == neg_inf ? 0.0 : std::exp(sink - m);
                for (auto& x : s) {
                    x = (x == neg_inf) ? 0.0 : std::exp(x - m);
                    sum += x;
                }
                for (index_t e = 0; e < p.dv; ++e) {
                    double acc = 0;
                    for (index_t j = 0; j < sq.k_len; ++j) {  // unseen keys never contribute (not even 0 * Inf)
                        if (!seen[std::size_t(j)]) continue;
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

}  // namespace detail
}  // namespace reference
SEQMIX_ABI_END
}  // namespace seqmix
