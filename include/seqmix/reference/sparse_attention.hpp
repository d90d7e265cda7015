#pragma once
// seqmix::reference sparse attention operators, in double: every score of a row computed, the
// selection made by sorting (top-k keys, or MoBA's key blocks by mean query . mean key), then
// the softmax over the chosen keys (reference/attention_rows.hpp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "../contract/sparse_attention.hpp"
#include "../core/abi.hpp"
#include "attention_rows.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace reference {
namespace detail {

// Better score first, NaN above everything, ties: lower index first.
inline bool ranks_before(double sa, index_t a, double sb, index_t b) {
    const bool na = std::isnan(sa), nb = std::isnan(sb);
    if (na != nb) return na;
    if (!na && sa != sb) return sa > sb;
    return a < b;
}

}  // namespace detail

template <class QV, class KV, class VV, class OV>
void topk_attention(const QV& q, const KV& k, const VV& v, const OV& out, const topk_options& opt = {},
                    tensor_view<compute_type_of<typename OV::value_type>, 3> lse = {}) {
    const char* op = "reference::topk_attention";
    const attention_options band = seqmix::detail::sparse_band_options(opt);
    const auto a = seqmix::detail::prepare_attention(q, k, v, out, lse, band, op);
    seqmix::detail::validate_topk(a, opt, op);
    const auto& p = a.problem;
    std::vector<index_t> keys;
    std::vector<double> score;
    for (index_t s = 0; s < p.num_seqs; ++s) {
        const auto sq = p.sequence(s);
        for (index_t i = 0; i < sq.q_len; ++i)
            for (index_t h = 0; h < p.hq; ++h) {
                keys.clear();
                if (!opt.indices.empty()) {
                    for (index_t t = 0; t < opt.indices.extent(3); ++t)
                        if (opt.indices(sq.batch, sq.q_begin + i, h / p.group, t) >= 0)
                            keys.push_back(opt.indices(sq.batch, sq.q_begin + i, h / p.group, t));
                } else {
                    const index_t diag = i + sq.k_len - sq.q_len;
                    score.assign(std::size_t(sq.k_len), 0.0);
                    for (index_t j = 0; j < sq.k_len; ++j)
                        if (!opt.causal || j <= diag) {
                            keys.push_back(j);
                            score[std::size_t(j)] = detail::dot_qk(a, sq, h, i, j);
                        }
                    std::sort(keys.begin(), keys.end(), [&](index_t x, index_t y) {
                        return detail::ranks_before(score[std::size_t(x)], x, score[std::size_t(y)], y);
                    });
                    keys.resize(std::min<std::size_t>(keys.size(), std::size_t(opt.top_k)));
                    std::sort(keys.begin(), keys.end());
                    if (!opt.indices_out.empty())
                        for (index_t t = 0; t < opt.top_k; ++t)
                            opt.indices_out(sq.batch, sq.q_begin + i, h, t) =
                                t < index_t(keys.size()) ? std::int32_t(keys[std::size_t(t)]) : -1;
                }
                detail::attend_keys(a, sq, h, i, keys, opt.sinks, [](index_t, double logit) { return logit; });
            }
    }
}

template <class QV, class KV, class VV, class OV>
void block_sparse_attention(const QV& q, const KV& k, const VV& v, const OV& out, const block_sparse_options& opt = {},
                            tensor_view<compute_type_of<typename OV::value_type>, 3> lse = {}) {
    const char* op = "reference::block_sparse_attention";
    const attention_options band = seqmix::detail::sparse_band_options(opt);
    const auto a = seqmix::detail::prepare_attention(q, k, v, out, lse, band, op);
    seqmix::detail::validate_block_sparse(a, opt, op);
    const auto& p = a.problem;
    const index_t bs = opt.block_size;
    std::vector<index_t> keys, chosen, order;
    for (index_t s = 0; s < p.num_seqs; ++s) {
        const auto sq = p.sequence(s);
        const index_t blocks = (sq.k_len + bs - 1) / bs;
        for (index_t h = 0; h < p.hq; ++h) {
            const index_t hk = h / p.group;
            // Sums of each query block's queries and each key block's keys; a block pair's score
            // is (sum q . sum k) / (queries x keys): the mean query . the mean key.
            std::vector<double> qsum(std::size_t(blocks * p.dk), 0.0), ksum(std::size_t(blocks * p.dk), 0.0);
            std::vector<index_t> qn(std::size_t(blocks), 0), kn(std::size_t(blocks), 0);
            for (index_t i = 0; i < sq.q_len; ++i) {
                const index_t qb = seqmix::detail::query_block_of(i, sq.q_len, sq.k_len, bs);
                ++qn[std::size_t(qb)];
                for (index_t d = 0; d < p.dk; ++d)
                    qsum[std::size_t(qb * p.dk + d)] += double(a.q(sq.batch, sq.q_begin + i, h, d));
            }
            for (index_t j = 0; j < sq.k_len; ++j) {
                const auto key = p.key_at(sq, j);
                ++kn[std::size_t(j / bs)];
                for (index_t d = 0; d < p.dk; ++d)
                    ksum[std::size_t(j / bs * p.dk + d)] += double(a.k(key.block, key.row, hk, d));
            }
            for (index_t i = 0; i < sq.q_len; ++i) {
                const index_t qb = seqmix::detail::query_block_of(i, sq.q_len, sq.k_len, bs);
                chosen.clear();
                if (!opt.block_indices.empty()) {
                    for (index_t t = 0; t < opt.block_indices.extent(3); ++t) {
                        const index_t kb = opt.block_indices(s, hk, qb, t);
                        if (kb < 0) break;
                        chosen.push_back(kb);
                    }
                } else {
                    std::vector<char> forced(std::size_t(blocks), 0);
                    for (index_t t = 0; t < opt.local_blocks; ++t) {
                        if (qb - t >= 0) forced[std::size_t(qb - t)] = 1;
                        if (!opt.causal && qb + t < blocks) forced[std::size_t(qb + t)] = 1;
                    }
                    if (opt.keep_first && blocks > 0) forced[0] = 1;
                    order.clear();
                    std::vector<double> score(std::size_t(blocks), 0.0);
                    for (index_t kb = 0; kb < blocks; ++kb) {
                        if (forced[std::size_t(kb)]) chosen.push_back(kb);
                        else if (!opt.causal || kb <= qb) order.push_back(kb);
                        double dot = 0;
                        for (index_t d = 0; d < p.dk; ++d)
                            dot += qsum[std::size_t(qb * p.dk + d)] * ksum[std::size_t(kb * p.dk + d)];
                        score[std::size_t(kb)] = dot / (double(qn[std::size_t(qb)]) * double(kn[std::size_t(kb)]));
                    }
                    std::sort(order.begin(), order.end(), [&](index_t x, index_t y) {
                        return detail::ranks_before(score[std::size_t(x)], x, score[std::size_t(y)], y);
                    });
                    for (index_t t = 0; t < std::min<index_t>(opt.top_blocks, index_t(order.size())); ++t)
                        chosen.push_back(order[std::size_t(t)]);
                }
                const index_t diag = i + sq.k_len - sq.q_len;
                keys.clear();
                for (index_t kb : chosen)
                    for (index_t j = kb * bs; j < std::min(kb * bs + bs, sq.k_len); ++j)
                        if (!opt.causal || j <= diag) keys.push_back(j);
                detail::attend_keys(a, sq, h, i, keys, opt.sinks, [](index_t, double logit) { return logit; });
            }
        }
    }
}

}  // namespace reference
SEQMIX_ABI_END
}  // namespace seqmix
