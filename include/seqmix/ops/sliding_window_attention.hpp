#pragma once
// sliding_window_attention: each query sees the keys of a band around its (bottom-right
// aligned) diagonal d, [d - window_left, d + window_right], and with dilation only those
// with (d - j) % dilation == 0. A variant of the attention run (kernels/attention_run.hpp):
// the queries and keys of one residue r = d mod dilation form a problem of their own, whose
// keys are a strided run of the cache (every dilation-th key from r) and whose window is
// the band in dilated steps, so no key outside the band is touched and the cost is
// O(N x window). With dilation 1 it is softmax_attention's variant over the same band, bits
// included (query blocks follow the band there, so a unit's span stays close to it).
#include <algorithm>
#include <limits>

#include "../contract/local_attention.hpp"
#include "../core/abi.hpp"
#include "../kernels/attention_run.hpp"
#include "neighborhood_attention.hpp"  // the contract names both local operators here
#include "softmax_attention.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace detail {

template <class T, class A = attention_args<T>>
struct window_variant : softmax_variant<T, A> {
    index_t dilation;

    // The band in dilated steps: a residue's keys are every dilation-th key.
    window_variant(const A& args, const attention_options& band_opt, index_t dil)
        : softmax_variant<T, A>(args, band_opt), dilation(dil) {
        const auto& m = this->mask;
        this->set_mask(
            {m.causal, m.window_left >= 0 ? m.window_left / dil : -1, m.window_right >= 0 ? m.window_right / dil : -1});
    }
    index_t problems() const { return this->a.problem.num_seqs * dilation; }
    // Problem p: residue r = p % dilation of sequence p / dilation: its keys r + t * dilation
    // and the queries whose diagonal i + Nk - Nq has residue r.
    band_problem<T, A> problem(index_t p) const {
        const attention_sequence sq = this->a.problem.sequence(p / dilation);
        const index_t r = p % dilation;
        const index_t i_first = ((r - (sq.k_len - sq.q_len)) % dilation + dilation) % dilation;
        const index_t q_len = i_first < sq.q_len ? (sq.q_len - 1 - i_first) / dilation + 1 : 0;
        const index_t k_len = r < sq.k_len ? (sq.k_len - 1 - r) / dilation + 1 : 0;
        return {*this, sq, dilation, r, i_first, q_len, k_len};
    }
};

}  // namespace detail

// out[b,i,h,:] = softmax over the keys j of query i's band (with dilation) of score(i, j),
// times V; lse (optional, [B,Hq,Nq]) receives each row's log-sum-exp.
template <class QV, class KV, class VV, class OV>
void sliding_window_attention(const QV& q, const KV& k, const VV& v, const OV& out, const window_options& opt = {},
                              tensor_view<compute_type_of<typename OV::value_type>, 3> lse = {}) {
    const executor_scope threads_of_call(opt.executor);
    using T = compute_type_of<typename OV::value_type>;
    const char* op = "sliding_window_attention";
    detail::check_window(opt, op);
    const attention_options band = detail::band_options(opt);
    const auto a = detail::prepare_attention(q, k, v, out, lse, band, op);
    kernels::attention_run(detail::window_variant<T, std::decay_t<decltype(a)>>(a, band, opt.dilation),
                           opt.num_threads);
}

SEQMIX_ABI_END
}  // namespace seqmix
