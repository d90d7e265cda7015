#pragma once
// seqmix::reference::softmax_attention: the obviously-correct loop version, in double. It
// evaluates the mask predicate of the contract for every (query, key) pair directly.
#include <cmath>

#include "../contract/attention.hpp"
#include "../core/abi.hpp"
#include "attention_rows.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace reference {

template <class QV, class KV, class VV, class OV>
void softmax_attention(const QV& q_in, const KV& k_in, const VV& v_in, const OV& out_in,
                       const attention_options& opt = {},
                       tensor_view<compute_type_of<typename OV::value_type>, 3> lse_in = {}) {
    auto a = seqmix::detail::prepare_attention(q_in, k_in, v_in, out_in, lse_in, opt, "reference::softmax_attention");
    const auto diag_of = [](const seqmix::detail::attention_sequence& sq, index_t i) {
        return i + sq.k_len - sq.q_len;
    };
    detail::attention_rows(
        a,
        [&](const auto& sq, index_t, index_t i, index_t j) {
            const index_t diag = diag_of(sq, i);
            if (opt.causal && j > diag) return false;
            if (opt.window_left >= 0 && j < diag - opt.window_left) return false;
            if (opt.window_right >= 0 && j > diag + opt.window_right) return false;
            return true;
        },
        [&](const auto& sq, index_t h, index_t i, index_t j, double score) {
            if (opt.softcap > 0) score = opt.softcap * std::tanh(score / opt.softcap);
            if (opt.alibi_slopes) score -= double(opt.alibi_slopes[h]) * double(std::abs(diag_of(sq, i) - j));
            return score;
        },
        opt.sinks);
}

}  // namespace reference
SEQMIX_ABI_END
}  // namespace seqmix
