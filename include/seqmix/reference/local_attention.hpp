#pragma once
// seqmix::reference local attention operators, in double: the band (and dilation) predicate of
// the contract evaluated for every (query, key) pair.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../contract/local_attention.hpp"
#include "../core/abi.hpp"
#include "attention_rows.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace reference {

template <class QV, class KV, class VV, class OV>
void sliding_window_attention(const QV& q_in, const KV& k_in, const VV& v_in, const OV& out_in,
                              const window_options& opt = {},
                              tensor_view<compute_type_of<typename OV::value_type>, 3> lse_in = {}) {
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

namespace detail {

// NATTEN's window along one axis of length n, in image positions: query i sees key j iff
// j = i (mod dilation) and start(i) <= j <= end(i) (NATTEN's get_window_start, written out).
inline bool in_neighborhood(index_t i, index_t j, index_t n, index_t kernel, index_t dil, bool causal) {
    if ((i - j) % dil != 0) return false;
    index_t start = 0;
    if (causal) {
        start = std::max(i - (kernel - 1) * dil, i % dil);
        return start <= j && j <= i;
    }
    const index_t r = kernel / 2;
    if (i - r * dil < 0) {
        start = i % dil;
    } else if (i + r * dil >= n) {
        const index_t a = n / dil * dil, b = n - a, m = i % dil;
        start = m < b ? n - b + m - 2 * r * dil : a + m - kernel * dil;
    } else {
        start = i - r * dil;
    }
    return start <= j && j <= start + (kernel - 1) * dil;
}

template <std::size_t Rank, class QV, class KV, class VV, class OV, class LV>
void neighborhood_attention(const QV& q_in, const KV& k_in, const VV& v_in, const OV& out_in, const LV& lse_in,
                            const neighborhood_options& opt, const char* op) {
    using O = typename OV::value_type;
    using T = compute_type_of<O>;
    const tensor_view<const typename QV::value_type, Rank + 3> qc = q_in;
    const tensor_view<const typename KV::value_type, Rank + 3> kc = k_in;
    const tensor_view<const typename VV::value_type, Rank + 3> vc = v_in;
    const auto g = seqmix::detail::validate_neighborhood<Rank, T>(qc, kc, vc, out_in, lse_in, opt, op);
    const auto q = seqmix::detail::image_of<Rank>(qc), k = seqmix::detail::image_of<Rank>(kc),
               v = seqmix::detail::image_of<Rank>(vc);
    const auto out = seqmix::detail::image_of<Rank>(out_in);
    const auto lse = seqmix::detail::lse_image_of<Rank>(lse_in);
    const double scale = opt.scale != 0 ? opt.scale : 1.0 / std::sqrt(double(g.dk));
    const auto& n = g.extent;
    std::vector<index_t> keys;
    for (index_t b = 0; b < g.batch; ++b)
        for (index_t z = 0; z < n[0]; ++z)
            for (index_t y = 0; y < n[1]; ++y)
                for (index_t x = 0; x < n[2]; ++x)
                    for (index_t h = 0; h < g.hq; ++h) {
                        const index_t hk = h / g.group, at[3] = {z, y, x};
                        keys.clear();  // flat key positions (kz * n1 + ky) * n2 + kx
                        for (index_t j = 0; j < n[0] * n[1] * n[2]; ++j) {
                            const index_t kat[3] = {j / (n[1] * n[2]), j / n[2] % n[1], j % n[2]};
                            bool seen = true;
                            for (std::size_t a = 0; a < 3; ++a)
                                seen = seen && in_neighborhood(at[a], kat[a], n[a], g.axis[a].kernel, g.dilation[a],
                                                               g.axis[a].causal);
                            if (seen) keys.push_back(j);
                        }
                        auto key = [&](const auto& t, index_t j, index_t e) {
                            return double(t(b, j / (n[1] * n[2]), j / n[2] % n[1], j % n[2], hk, e));
                        };
                        attend_row(
                            keys,
                            [&](index_t j) {
                                double dot = 0;
                                for (index_t d = 0; d < g.dk; ++d) dot += double(q(b, z, y, x, h, d)) * key(k, j, d);
                                return scale * dot;
                            },
                            [&](index_t j, index_t e) { return key(v, j, e); }, g.dv,
                            opt.sinks ? double(opt.sinks[h]) : -std::numeric_limits<double>::infinity(),
                            [&](index_t e, double o) { out(b, z, y, x, h, e) = storage_cast<O>(T(o)); },
                            [&](double l) {
                                if (!lse.empty()) lse(b, z, y, x, h) = T(l);
                            });
                    }
}

}  // namespace detail

template <class QV, class KV, class VV, class OV>
void neighborhood_attention_1d(const QV& q, const KV& k, const VV& v, const OV& out,
                               const neighborhood_options& opt = {},
                               tensor_view<compute_type_of<typename OV::value_type>, 3> lse = {}) {
    detail::neighborhood_attention<1>(q, k, v, out, lse, opt, "reference::neighborhood_attention_1d");
}
template <class QV, class KV, class VV, class OV>
void neighborhood_attention_2d(const QV& q, const KV& k, const VV& v, const OV& out,
                               const neighborhood_options& opt = {},
                               tensor_view<compute_type_of<typename OV::value_type>, 4> lse = {}) {
    detail::neighborhood_attention<2>(q, k, v, out, lse, opt, "reference::neighborhood_attention_2d");
}
template <class QV, class KV, class VV, class OV>
void neighborhood_attention_3d(const QV& q, const KV& k, const VV& v, const OV& out,
                               const neighborhood_options& opt = {},
                               tensor_view<compute_type_of<typename OV::value_type>, 5> lse = {}) {
    detail::neighborhood_attention<3>(q, k, v, out, lse, opt, "reference::neighborhood_attention_3d");
}

}  // namespace reference
SEQMIX_ABI_END
}  // namespace seqmix
