#pragma once
// seqmix::reference local attention operators, in double: the band (and dilation) predicate of
// the contract evaluated for every (query, key) pair.
#include <cmath>

#include "../contract/local_attention.hpp"
#include "../core/abi.hpp"
#include "attention_rows.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace reference {

template <class QV, class KV, class VV, class OV>
void sliding_window_attention(const QV& q_in, const KV& k_in, const VV& v_in, const OV& out_in,
                              const window_options& opt = {}, tensor_view<typename OV::value_type, 3> lse_in = {}) {
    const char* op = "reference::sliding_window_attention";
    seqmix::detail::check_window(opt, op);
    const attention_options band = seqmix::detail::band_options(opt);
    auto a = seqmix::detail::prepare_attention(q_in, k_in, v_in, out_in, lse_in, band, op);
    detail::attention_rows(
        a,
        [&](const auto& sq, index_t, index_t i, index_t j) {
            const index_t diag = i + sq.k_len - sq.q_len;
            if (opt.window_left >= 0 && j < diag - opt.window_left) return false;
            if (opt.window_right >= 0 && j > diag + opt.window_right) return false;
            if (opt.causal && j > diag) return false;
            return (diag - j) % opt.dilation == 0;
        },
        [&](const auto&, index_t, index_t, index_t, double score) {
            return opt.softcap > 0 ? opt.softcap * std::tanh(score / opt.softcap) : score;
        },
        opt.sinks);
}

}  // namespace reference
SEQMIX_ABI_END
}  // namespace seqmix
