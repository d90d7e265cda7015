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
#include "softmax_attention.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace detail {

template <class T>
struct window_variant : softmax_variant<T> {
    index_t dilation;

    // The band in dilated steps: a residue's keys are every dilation-th key.
    window_variant(const attention_args<T>& args, const attention_options& band_opt, index_t dil)
        : softmax_variant<T>(args, band_opt), dilation(dil) {
        const auto& m = this->mask;
        this->set_mask({m.causal, m.window_left >= 0 ? m.window_left / dil : -1,
                        m.window_right >= 0 ? m.window_right / dil : -1});
    }
    // Problem p: sequence p / dilation, residue p % dilation of the diagonal.
    struct residue {
        attention_sequence sq;
        index_t r, i_first, q_len, k_len;  // queries i = i_first + i' * dilation, keys j = r + t * dilation
    };
    residue residue_of(index_t p) const {
        residue x{this->a.problem.sequence(p / dilation), p % dilation, 0, 0, 0};
        const index_t offset = x.sq.k_len - x.sq.q_len;  // diagonal of query i: i + offset
        x.i_first = ((x.r - offset) % dilation + dilation) % dilation;
        x.q_len = x.i_first < x.sq.q_len ? (x.sq.q_len - 1 - x.i_first) / dilation + 1 : 0;
        x.k_len = x.r < x.sq.k_len ? (x.sq.k_len - 1 - x.r) / dilation + 1 : 0;
        return x;
    }
    index_t problems() const { return this->a.problem.num_seqs * dilation; }
    kernels::problem_extent extent(index_t p) const {
        const residue x = residue_of(p);
        return {x.q_len, x.k_len};
    }
    kernels::attention_row<T> row(index_t p, index_t h, index_t i) const {
        const residue x = residue_of(p);
        const index_t at = x.i_first + i * dilation;  // the query's index in its sequence
        const index_t diag = (at + x.sq.k_len - x.sq.q_len - x.r) / dilation;
        const auto& a = this->a;
        return {a.q.ptr(x.sq.batch, x.sq.q_begin + at, h), a.out.ptr(x.sq.batch, x.sq.q_begin + at, h),
                a.lse.empty() ? nullptr : a.lse.ptr(x.sq.batch, h, x.sq.q_begin + at),
                this->mask.keys_of(diag, x.k_len), diag, T(0),
                this->opt().sinks ? T(this->opt().sinks[h]) : -std::numeric_limits<T>::infinity()};
    }
    kernels::kv_rows<T> keys(index_t p, index_t hk) const {
        const residue x = residue_of(p);
        kernels::kv_rows<T> kv = kv_of(this->a, x.sq, hk);
        kv.count = x.k_len;
        if (kv.pages) {
            kv.first = x.r;
        } else {
            kv.k += x.r * kv.k_row;
            kv.v += x.r * kv.v_row;
        }
        kv.step = dilation;
        kv.k_row *= dilation;
        kv.v_row *= dilation;
        return kv;
    }
};

}  // namespace detail

// out[b,i,h,:] = softmax over the keys j of query i's band (with dilation) of score(i, j),
// times V; lse (optional, [B,Hq,Nq]) receives each row's log-sum-exp.
template <class QV, class KV, class VV, class OV>
void sliding_window_attention(const QV& q, const KV& k, const VV& v, const OV& out, const window_options& opt = {},
                              tensor_view<typename OV::value_type, 3> lse = {}) {
    using T = typename OV::value_type;
    const char* op = "sliding_window_attention";
    detail::check_window(opt, op);
    const attention_options band = detail::band_options(opt);
    const auto a = detail::prepare_attention(q, k, v, out, lse, band, op);
    kernels::attention_run(detail::window_variant<T>(a, band, opt.dilation), opt.num_threads);
}

SEQMIX_ABI_END
}  // namespace seqmix
