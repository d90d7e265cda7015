#pragma once
// The loops every reference attention operator runs, in double. attend_row: one query row's
// softmax over a list of keys (and the sink, a score with a zero value), then P V.
// attention_rows: for each sequence, query head and query of a [B, N, H, D] problem, the keys
// a predicate says it sees, through attend_row. Each reference operator is one of these plus
// its own predicate or key list evaluated pair by pair; it shares nothing with the fast
// kernels but the argument validation and the contract's key addressing.
#include <cmath>
#include <limits>
#include <vector>

#include "../contract/attention.hpp"
#include "../core/abi.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace reference {
namespace detail {

// The keys of `keys` (any order), score(j) their logits, value(j, e) their values; sink a
// logit with a zero value (-inf: none). out(e, x) and lse(x) receive the row (zeros and -inf
// when it sees nothing). Unseen keys never contribute, not even as 0 * Inf.
template <class Score, class Value, class Out, class Lse>
void attend_row(const std::vector<index_t>& keys, Score&& score, Value&& value, index_t dv, double sink, Out&& out,
                Lse&& lse) {
    const double neg_inf = -std::numeric_limits<double>::infinity();
    std::vector<double> p(keys.size());
    double m = sink;
    for (std::size_t t = 0; t < keys.size(); ++t) m = std::max(m, p[t] = score(keys[t]));
    double sum = sink == neg_inf ? 0.0 : std::exp(sink - m);
    for (double& x : p) sum += x = (x == neg_inf) ? 0.0 : std::exp(x - m);
    for (index_t e = 0; e < dv; ++e) {
        double acc = 0;
        for (std::size_t t = 0; t < keys.size(); ++t) acc += p[t] * value(keys[t], e);
        out(e, sum == 0 ? 0.0 : acc / sum);
    }
    lse(sum == 0 ? neg_inf : m + std::log(sum));
}

// What the stored keys (values) of KV head hk are multiplied by: an fp8 cache's scale, or 1.
inline double cache_scale(const float* scale, index_t hk) { return scale ? double(scale[hk]) : 1.0; }

// scale * q_i . k_j of query i of head h and key j of a sequence, in double (A: attention_args,
// any storage types: every element is read as its exact value).
template <class A>
double dot_qk(const A& a, const seqmix::detail::attention_sequence& sq, index_t h, index_t i, index_t j) {
    const auto& p = a.problem;
    const auto key = p.key_at(sq, j);
    double dot = 0;
    for (index_t d = 0; d < p.dk; ++d)
        dot += double(a.q(sq.batch, sq.q_begin + i, h, d)) * double(a.k(key.block, key.row, h / p.group, d));
    return p.scale * dot * cache_scale(p.opt->k_scale, h / p.group);
}

// Query i of head h of a [B, N, H, D] problem over the keys of `keys`, through attend_row:
// logit(j, s) is the score after the operator's logits transform.
template <class A, class Logit>
void attend_keys(const A& a, const seqmix::detail::attention_sequence& sq, index_t h, index_t i,
                 const std::vector<index_t>& keys, const float* sinks, Logit&& logit) {
    using T = typename A::compute_type;
    using O = typename A::output_type;
    const auto& p = a.problem;
    const double v_scale = cache_scale(p.opt->v_scale, h / p.group);
    attend_row(
        keys, [&](index_t j) { return logit(j, dot_qk(a, sq, h, i, j)); },
        [&](index_t j, index_t e) {
            const auto key = p.key_at(sq, j);
            return double(a.v(key.block, key.row, h / p.group, e)) * v_scale;
        },
        p.dv, sinks ? double(sinks[h]) : -std::numeric_limits<double>::infinity(),
        [&](index_t e, double x) { a.out(sq.batch, sq.q_begin + i, h, e) = storage_cast<O>(T(x)); },
        [&](double x) {
            if (!a.lse.empty()) a.lse(sq.batch, h, sq.q_begin + i) = T(x);
        });
}

// visible(sq, h, i, j): query i of head h sees key j of sequence sq.
// logit(sq, h, i, j, s): the score after the logits transform of the operator.
// sinks: one logit per query head, or nullptr.
template <class A, class Visible, class Logit>
void attention_rows(const A& a, Visible&& visible, Logit&& logit, const float* sinks) {
    const auto& p = a.problem;
    std::vector<index_t> keys;
    for (index_t seq = 0; seq < p.num_seqs; ++seq) {
        const auto sq = p.sequence(seq);
        for (index_t h = 0; h < p.hq; ++h)
            for (index_t i = 0; i < sq.q_len; ++i) {
                keys.clear();
                for (index_t j = 0; j < sq.k_len; ++j)
                    if (visible(sq, h, i, j)) keys.push_back(j);
                attend_keys(a, sq, h, i, keys, sinks, [&](index_t j, double s) { return logit(sq, h, i, j, s); });
            }
    }
}

}  // namespace detail
}  // namespace reference
SEQMIX_ABI_END
}  // namespace seqmix
