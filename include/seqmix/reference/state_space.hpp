#pragma once
// seqmix::reference versions of the state-space scans, token by token in double:
//   selective_scan  h_t = exp(d_t A_c) h_{t-1} + d_t u_t B_t,  y_t = C_t . h_t + D_c u_t
//   ssd_scan        h_t = exp(d_t A_h) h_{t-1} + d_t x_t B_t^T, y_t = h_t C_t + D_h x_t
//   causal_conv1d   y_t = bias + sum_w weight[w] x_{t-W+1+w}
// with d_t = softplus(delta_t + bias) when asked, and y *= silu(z) when z is given.
#include <cmath>
#include <vector>

#include "../contract/state_space.hpp"
#include "../core/abi.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace reference {
namespace detail {
inline double softplus(double x) { return x > 20 ? x : std::log1p(std::exp(x)); }
inline double silu(double x) { return x / (1 + std::exp(-x)); }
inline double step_size(double raw, const float* bias, index_t i, bool softplus_on) {
    const double d = raw + (bias ? double(bias[i]) : 0.0);
    return softplus_on ? softplus(d) : d;
}
}  // namespace detail

template <class UV, class DV, class AV, class BV, class CV, class OV,
          class Z = compute_type_of<typename OV::value_type>,
          class SIV = tensor_view<const compute_type_of<typename OV::value_type>, 3>,
          class SOV = tensor_view<compute_type_of<typename OV::value_type>, 3>>
void selective_scan(const UV& u, const DV& delta, const AV& A, const BV& B, const CV& C, const OV& out,
                    const selective_scan_options<Z>& opt = {}, const SIV& initial_state = {},
                    const SOV& final_state = {}) {
    const auto a = seqmix::detail::prepare_selective_scan(u, delta, A, B, C, out, opt, initial_state, final_state,
                                                          "reference::selective_scan");
    const index_t S = a.dstate;
    std::vector<double> h(static_cast<std::size_t>(S));
    for (index_t s = 0; s < a.num_seqs; ++s) {
        const auto sq = a.sequence(s);
        // A state pool: the sequence's slot (pad_slot: skipped), its start (zeros or the slot).
        const index_t slot = a.state_slot(s);
        if (slot < 0) continue;
        const auto init = seqmix::detail::initial_of(a, a, s);
        const auto fin = seqmix::detail::final_of(a, a, s);
        for (index_t c = 0; c < a.din; ++c) {
            const index_t g = a.group_of(c);
            for (index_t j = 0; j < S; ++j) h[std::size_t(j)] = init.empty() ? 0.0 : double(init(slot, c, j));
            auto store = [&](index_t to) {  // h into pool slot `to` (the final state or a snapshot)
                for (index_t j = 0; j < S; ++j)
                    a.final_state(to, c, j) = seqmix::detail::rounded_to(a.final_state, h[std::size_t(j)]);
            };
            for (index_t t = 0; t < sq.len; ++t) {
                const index_t n = sq.begin + t;
                const double d = detail::step_size(double(a.delta(sq.batch, n, c)), a.delta_bias, c, a.softplus);
                const double x = double(a.u(sq.batch, n, c));
                double y = 0;
                for (index_t j = 0; j < S; ++j) {
                    double& hj = h[std::size_t(j)];
                    hj = std::exp(d * double(a.A(c, j))) * hj + d * x * double(a.B(sq.batch, n, g, j));
                    y += double(a.C(sq.batch, n, g, j)) * hj;
                }
                if (a.D) y += double(a.D[c]) * x;
                if (!a.z.empty()) y *= detail::silu(double(a.z(sq.batch, n, c)));
                a.out(sq.batch, n, c) = seqmix::detail::rounded_to(a.out, y);
                if (a.snapshot_after(s, t) >= 0) store(a.snapshot_after(s, t));
            }
            if (!fin.empty()) store(slot);
        }
    }
}

template <class XV, class TV, class AV, class BV, class CV, class OV,
          class Z = compute_type_of<typename OV::value_type>,
          class SIV = tensor_view<const compute_type_of<typename OV::value_type>, 4>,
          class SOV = tensor_view<compute_type_of<typename OV::value_type>, 4>>
void ssd_scan(const XV& x, const TV& dt, const AV& A, const BV& B, const CV& C, const OV& out,
              const ssd_options<Z>& opt = {}, const SIV& initial_state = {}, const SOV& final_state = {}) {
    const auto a =
        seqmix::detail::prepare_ssd(x, dt, A, B, C, out, opt, initial_state, final_state, "reference::ssd_scan");
    const auto& p = a.problem;
    const index_t P = p.dv, S = p.dk;
    std::vector<double> h(static_cast<std::size_t>(P * S));
    for (index_t s = 0; s < p.num_seqs; ++s) {
        const auto sq = p.sequence(s);
        // A state pool: the sequence's slot (pad_slot: skipped), its start (zeros or the slot).
        const index_t slot = p.state_slot(s);
        if (slot < 0) continue;
        const auto init = seqmix::detail::initial_of(a, p, s);
        const auto fin = seqmix::detail::final_of(a, p, s);
        for (index_t hd = 0; hd < p.hv; ++hd) {
            const index_t g = hd / p.group;
            for (index_t i = 0; i < P; ++i)
                for (index_t j = 0; j < S; ++j)
                    h[std::size_t(i * S + j)] = init.empty() ? 0.0 : double(init(slot, hd, i, j));
            auto store = [&](index_t to) {  // h into pool slot `to` (the final state or a snapshot)
                for (index_t i = 0; i < P; ++i)
                    for (index_t j = 0; j < S; ++j)
                        a.final_state(to, hd, i, j) =
                            seqmix::detail::rounded_to(a.final_state, h[std::size_t(i * S + j)]);
            };
            for (index_t t = 0; t < sq.len; ++t) {
                const index_t n = sq.begin + t;
                const double d = detail::step_size(double(a.dt(sq.batch, n, hd)), a.dt_bias, hd, a.softplus);
                const double decay = std::exp(d * double(a.A(hd)));
                for (index_t i = 0; i < P; ++i) {
                    const double xi = double(a.v(sq.batch, n, hd, i));
                    double y = 0;
                    for (index_t j = 0; j < S; ++j) {
                        double& e = h[std::size_t(i * S + j)];
                        e = decay * e + d * xi * double(a.k(sq.batch, n, g, j));
                        y += e * double(a.q(sq.batch, n, g, j));
                    }
                    if (a.D) y += double(a.D[hd]) * xi;
                    if (!a.z.empty()) y *= detail::silu(double(a.z(sq.batch, n, hd, i)));
                    a.out(sq.batch, n, hd, i) = seqmix::detail::rounded_to(a.out, y);
                }
                if (p.snapshot_after(s, t) >= 0) store(p.snapshot_after(s, t));
            }
            if (!fin.empty()) store(slot);
        }
    }
}

template <class XV, class WV, class OV, class SIV = tensor_view<const compute_type_of<typename OV::value_type>, 3>,
          class SOV = tensor_view<compute_type_of<typename OV::value_type>, 3>>
void causal_conv1d(const XV& x, const WV& weight, const OV& out, const conv1d_options& opt = {},
                   const SIV& initial_state = {}, const SOV& final_state = {}) {
    const auto a =
        seqmix::detail::prepare_conv1d(x, weight, out, opt, initial_state, final_state, "reference::causal_conv1d");
    const index_t W = a.width, K = W - 1;
    std::vector<double> results;
    for (index_t s = 0; s < a.num_seqs; ++s) {
        const auto sq = a.sequence(s);
        // A state pool: the sequence's slot (pad_slot: skipped), its start (zeros or the slot).
        const index_t slot = a.state_slot(s);
        if (slot < 0) continue;
        const auto init = seqmix::detail::initial_of(a, a, s);
        const auto fin = seqmix::detail::final_of(a, a, s);
        for (index_t c = 0; c < a.channels; ++c) {
            // input j of this sequence: j >= 0 from x, -K <= j < 0 from the state (oldest first)
            auto input = [&](index_t j) {
                if (j >= 0) return double(a.x(sq.batch, sq.begin + j, c));
                return init.empty() ? 0.0 : double(init(slot, c, K + j));
            };
            results.assign(std::size_t(sq.len), 0.0);
            for (index_t t = 0; t < sq.len; ++t) {
                double y = a.bias ? double(a.bias[c]) : 0.0;
                for (index_t w = 0; w < W; ++w) y += double(a.weight(c, w)) * input(t - K + w);
                if (a.act == activation::silu) y = detail::silu(y);
                results[std::size_t(t)] = y;
            }
            // The snapshots (slots nobody reads) and the final state before the outputs: it may
            // be read from the same memory.
            for (index_t t = 0; t < sq.len; ++t)
                if (a.snapshot_after(s, t) >= 0)
                    for (index_t i = 0; i < K; ++i)
                        a.final_state(a.snapshot_after(s, t), c, i) =
                            seqmix::detail::rounded_to(a.final_state, input(t + 1 - K + i));
            std::vector<double> last(static_cast<std::size_t>(K));
            for (index_t i = 0; i < K; ++i) last[std::size_t(i)] = input(sq.len - K + i);
            for (index_t t = 0; t < sq.len; ++t)
                a.out(sq.batch, sq.begin + t, c) = seqmix::detail::rounded_to(a.out, results[std::size_t(t)]);
            if (!fin.empty())
                for (index_t i = 0; i < K; ++i) fin(slot, c, i) = seqmix::detail::rounded_to(fin, last[std::size_t(i)]);
        }
    }
}

}  // namespace reference
SEQMIX_ABI_END
}  // namespace seqmix
