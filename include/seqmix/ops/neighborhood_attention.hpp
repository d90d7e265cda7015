#pragma once
// neighborhood_attention_1d / _2d / _3d (NATTEN's semantics): each query attends to the
// kernel_size^rank keys around it in an image [B, (depth,) (height,) width, heads, dim]; per
// axis the window is centred on the query and shifted, never shrunk, at the borders (causal:
// the kernel_size keys ending at the query, fewer at the start), on the grid of the query's
// residue mod dilation. A variant of the attention run (kernels/attention_run.hpp) with its
// own engine, rows in lanes over window offsets (kernels/window_products.hpp):
//   - the keys and values of each image, residue grid and KV head are packed once as
//     transposed lines ([dim][width], zero padded);
//   - a problem is a vector of consecutive queries of one grid line (W pixels along the
//     width); its keys are the window offsets j = t * kernel_x + dx, t the window line
//     (K x K lines in 3-D, K in 2-D, one in 1-D) and dx the column in it, the same offsets
//     for every lane while each lane reads its own columns: no key outside a query's window
//     is computed;
//   - a causal width axis masks, per window line, the offsets past a short window.
// Tiles of pixels sharing their loaded keys (rows in lanes over the union of the tile's
// windows) were measured first: at kernel 7 a 4 x 8 tile visits 140 keys for 49 useful, and
// ran 28.5 GFLOP/s on the 49 keys against 181 for dense attention on a Zen 5 core.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "../contract/attention.hpp"
#include "../contract/local_attention.hpp"
#include "../core/abi.hpp"
#include "../core/parallel.hpp"
#include "../core/scratch.hpp"
#include "../core/validate.hpp"
#include "../kernels/attention_policies.hpp"
#include "../kernels/attention_run.hpp"
#include "../kernels/attention_tiles.hpp"
#include "../kernels/pack.hpp"
#include "../kernels/window_products.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace detail {

// The offsets of a unit's windows: [0, lines * kx), each row seeing per window line the
// offsets [0, count) (count < kx: a causal width axis at the start of a line). A row's keys
// (lo, hi) end at its last line's last offset, so hi - (lines - 1) * kx + 1 is its count.
struct window_schedule {
    index_t kx, lines;
    const index_t* lo;
    const index_t* hi;
    bool partial;  // some row sees fewer than kx offsets per line: lines run as masked tiles
    kernels::run_slice part;

    index_t total() const { return lines * kx; }
    index_t size() const { return part.size(total()); }
    window_schedule slice(index_t f, index_t c) const {
        window_schedule s = *this;
        s.part = part.sub(f, c, total());
        return s;
    }
    // Blocks of whole window lines (the products shift a whole line out of aligned loads); a
    // line per block when some row's window is short (its mask is per line).
    template <class Fn>
    void for_each_block(index_t block, Fn&& fn) const {
        const index_t per_block = partial ? kx : std::max<index_t>(1, block / kx) * kx;
        part.blocks(
            per_block, [&](auto&& visit) { visit(index_t(0), total()); }, fn);
    }
    bool masked(index_t, index_t) const { return partial; }
    kernels::key_range visible(index_t r, index_t j0) const {
        if (lo[r] > hi[r]) return {1, 0};
        const index_t t = j0 / kx, count = hi[r] - (lines - 1) * kx + 1;
        return {t * kx, t * kx + count - 1};
    }
};

// W consecutive queries of one line of one residue grid of one image.
template <class Variant>
struct neighborhood_problem {
    using T = typename Variant::value_type;
    const Variant& var;
    index_t b, r;                         // image, residue
    std::array<index_t, 3> residue, n;    // the residue and its grid's extent per axis
    index_t z, y, x0;                     // the line's outer coordinates and its first query
    std::array<index_t, 2> first, lines;  // window lines along depth and height: first, count

    index_t window_lines() const { return lines[0] * lines[1]; }
    index_t kx() const { return var.g.axis[2].kernel; }
    kernels::problem_extent extent() const { return {std::min<index_t>(var.W, n[2] - x0), window_lines() * kx()}; }
    typename Variant::row_type row(index_t h, index_t i) const {
        const auto& g = var.g;
        const index_t x = x0 + i;
        const index_t pz = residue[0] + z * g.dilation[0], py = residue[1] + y * g.dilation[1],
                      px = residue[2] + x * g.dilation[2];
        const index_t count = g.axis[2].last(x, n[2]) - g.axis[2].first(x, n[2]) + 1;  // < kx: causal start
        typename Variant::row_type row{};
        row.q = var.q.ptr(b, pz, py, px, h);
        row.out = var.out.ptr(b, pz, py, px, h);
        row.lse = var.lse.empty() ? nullptr : var.lse.ptr(b, pz, py, px, h);
        row.keys = {0, (window_lines() - 1) * kx() + count - 1};
        row.sink = var.sinks ? T(var.sinks[h]) : -std::numeric_limits<T>::infinity();
        return row;
    }
    kernels::window_keys<T> keys(index_t hk) const {
        const auto& ax = var.g.axis[2];
        kernels::window_keys<T> kv;
        const index_t base = ax.first(x0, n[2]);
        const index_t line0 = (first[0] * n[1] + first[1]);
        kv.ld = var.ld;
        kv.k_line = var.g.dk * var.ld;
        kv.v_line = var.g.dv * var.ld;
        kv.k_plane = n[1] * kv.k_line;
        kv.v_plane = n[1] * kv.v_line;
        kv.per_plane = lines[1];
        kv.kx = kx();
        kv.k = var.k_panels(b, r, hk) + line0 * kv.k_line + var.pad + base;
        kv.v = var.v_panels(b, r, hk) + line0 * kv.v_line + var.pad + base;
        for (index_t l = 0; l < var.W; ++l) {
            const index_t x = std::min(x0 + l, n[2] - 1);  // lanes past the line: any column (never written)
            kv.lane[std::size_t(l)] = std::int32_t(ax.first(x, n[2]) - base);
            kv.shifted = kv.shifted || kv.lane[std::size_t(l)] != l;
        }
        kv.aligned = !kv.shifted && (var.pad + base) % var.W == 0;
        kv.from = (var.pad + base) % var.W;  // lane 0's column past the aligned vector before it
        std::int32_t widest = 0;
        for (index_t l = 0; l < var.W; ++l) widest = std::max(widest, kv.lane[std::size_t(l)]);
        kv.two_vectors = !kv.aligned && kv.from + widest + kx() - 1 < 2 * var.W;
        if (kv.two_vectors)
            for (index_t c = 0; c < kx(); ++c)
                for (index_t l = 0; l < var.W; ++l)
                    kv.offset_lanes[std::size_t(c)][std::size_t(l)] =
                        std::int32_t(kv.from + kv.lane[std::size_t(l)] + c);
        return kv;
    }
    window_schedule schedule(const kernels::unit_span& u) const {
        return {kx(), window_lines(), u.lo, u.hi, u.min_hi < window_lines() * kx() - 1, {}};
    }
};

// neighborhood attention as a variant of the attention run, with the window engine. q, k, v
// and out may be stored as Q, K, V, O: keys and values are converted as they are packed.
template <class T, class Q = T, class K = T, class V = T, class O = T>
struct neighborhood_variant : kernels::attention_variant_base {
    using value_type = T;
    using row_type = kernels::attention_row<T, Q, O>;
    using engine = kernels::rows_in_lanes<T, kernels::window_products<T>>;
    static constexpr index_t W = index_t(simd::width<T>);
    tensor_view<const Q, 6> q;  // [B, depth, height, width, heads, dim]
    tensor_view<const K, 6> k;
    tensor_view<const V, 6> v;
    tensor_view<O, 6> out;
    tensor_view<T, 5> lse;  // [B, depth, height, width, heads] or empty
    neighborhood_geometry g;
    double scale_ = 0;
    const float* sinks = nullptr;
    kernels::logits_transform<T> none;
    index_t ld = 0;                      // columns of a packed line
    index_t pad = 0;                     // columns before a packed line's first: an interior unit's
                                         // first window column lands on a vector boundary
    std::vector<index_t> first_problem;  // per (image, residue): its first problem; then the total
    std::vector<std::size_t> panel_at;   // per (image, residue, KV head): its packed keys; values after all keys
    T* panels = nullptr;

    index_t residues() const { return g.dilation[0] * g.dilation[1] * g.dilation[2]; }
    std::array<index_t, 3> residue_of(index_t r) const {
        return {r / (g.dilation[1] * g.dilation[2]), r / g.dilation[2] % g.dilation[1], r % g.dilation[2]};
    }
    std::array<index_t, 3> grid_of(index_t r) const {
        const auto res = residue_of(r);
        std::array<index_t, 3> n{};
        for (std::size_t a = 0; a < 3; ++a) n[a] = (g.extent[a] - res[a] + g.dilation[a] - 1) / g.dilation[a];
        return n;
    }
    index_t x_blocks(const std::array<index_t, 3>& n) const { return (n[2] + W - 1) / W; }

    // Numbers the problems and sizes the packed lines: call before packing.
    std::size_t layout() {
        const auto& ax = g.axis[2];
        pad = (ax.causal ? ax.kernel - 1 : ax.kernel / 2) % W;  // x - first(x) of an interior query
        ld = (pad + g.extent[2] + W + 15) / 16 * 16;
        first_problem.assign(1, 0);
        panel_at.assign(1, 0);
        for (index_t b = 0; b < g.batch; ++b)
            for (index_t r = 0; r < residues(); ++r) {
                const auto n = grid_of(r);
                first_problem.push_back(first_problem.back() + n[0] * n[1] * x_blocks(n));
                for (index_t hk = 0; hk < g.hkv; ++hk)
                    panel_at.push_back(panel_at.back() + std::size_t(n[0] * n[1] * (g.dk + g.dv) * ld));
            }
        return panel_at.back() + std::size_t(ld);  // slack: a line's padding may run past the last
    }
    const T* k_panels(index_t b, index_t r, index_t hk) const {
        return panels + panel_at[std::size_t((b * residues() + r) * g.hkv + hk)];
    }
    const T* v_panels(index_t b, index_t r, index_t hk) const {
        const auto n = grid_of(r);
        return k_panels(b, r, hk) + n[0] * n[1] * g.dk * ld;
    }
    // Every line of every grid transposed: keys [line][dk][ld], then values [line][dv][ld].
    void pack(int threads) {
        const index_t items = g.batch * residues() * g.hkv;
        parallel_for(items, resolve_threads(threads, items), [&](index_t item, int) {
            const index_t hk = item % g.hkv, r = item / g.hkv % residues(), b = item / g.hkv / residues();
            const auto res = residue_of(r), n = grid_of(r);
            T* kp = const_cast<T*>(k_panels(b, r, hk));
            T* vp = kp + n[0] * n[1] * g.dk * ld;
            for (index_t z = 0; z < n[0]; ++z)
                for (index_t y = 0; y < n[1]; ++y) {
                    const index_t pz = res[0] + z * g.dilation[0], py = res[1] + y * g.dilation[1];
                    const index_t line = z * n[1] + y;
                    kernels::pack_block(k.ptr(b, pz, py, res[2], hk), k.stride(5), g.dilation[2] * k.stride(3), g.dk,
                                        n[2], kp + line * g.dk * ld + pad, ld);
                    kernels::pack_block(v.ptr(b, pz, py, res[2], hk), v.stride(5), g.dilation[2] * v.stride(3), g.dv,
                                        n[2], vp + line * g.dv * ld + pad, ld);
                }
        });
    }

    kernels::attention_heads heads() const { return {g.hkv, g.group, g.dk, g.dv}; }
    index_t problems() const { return first_problem.back(); }
    neighborhood_problem<neighborhood_variant> problem(index_t p) const {
        const index_t br =
            index_t(std::upper_bound(first_problem.begin(), first_problem.end(), p) - first_problem.begin()) - 1;
        const index_t r = br % residues();
        neighborhood_problem<neighborhood_variant> pr{*this, br / residues(), r, residue_of(r), grid_of(r), 0, 0, 0, {},
                                                      {}};
        const index_t local = p - first_problem[std::size_t(br)], xb = x_blocks(pr.n);
        pr.x0 = local % xb * W;
        pr.y = local / xb % pr.n[1];
        pr.z = local / xb / pr.n[1];
        const std::array<index_t, 2> at{pr.z, pr.y};
        for (std::size_t a = 0; a < 2; ++a) {
            pr.first[a] = g.axis[a].first(at[a], pr.n[a]);
            pr.lines[a] = g.axis[a].last(at[a], pr.n[a]) - pr.first[a] + 1;
        }
        return pr;
    }
    index_t query_block(index_t, index_t) const { return W; }  // a unit: the problem's queries
    index_t visited_keys(index_t, index_t k_len) const { return k_len; }
    double scale() const { return scale_; }
    index_t q_elem() const { return q.stride(5); }
    index_t out_elem() const { return out.stride(5); }
    const kernels::logits_transform<T>& logits() const { return none; }
};

template <std::size_t Rank, class QV, class KV, class VV, class OV, class LV>
void neighborhood_attention(const QV& q, const KV& k, const VV& v, const OV& out, const LV& lse,
                            const neighborhood_options& opt, const char* op) {
    const executor_scope threads_of_call(opt.executor);
    using Q = typename QV::value_type;
    using K = typename KV::value_type;
    using V = typename VV::value_type;
    using O = typename OV::value_type;
    using T = compute_type_of<O>;
    static_assert(QV::rank == Rank + 3 && KV::rank == Rank + 3 && VV::rank == Rank + 3 && OV::rank == Rank + 3,
                  "seqmix: neighborhood attention takes [B, spatial..., heads, dim] views");
    const tensor_view<const Q, Rank + 3> qc = q;
    const tensor_view<const K, Rank + 3> kc = k;
    const tensor_view<const V, Rank + 3> vc = v;
    neighborhood_variant<T, Q, K, V, O> var;
    var.g = validate_neighborhood<Rank, T>(qc, kc, vc, out, lse, opt, op);
    var.q = image_of<Rank>(qc);
    var.k = image_of<Rank>(kc);
    var.v = image_of<Rank>(vc);
    var.out = image_of<Rank>(out);
    var.lse = lse_image_of<Rank>(lse);
    var.scale_ = opt.scale != 0 ? opt.scale : 1.0 / std::sqrt(double(var.g.dk));
    var.sinks = opt.sinks;
    thread_scratch<T> packed(1, var.layout());  // reused across calls: no fresh pages per call
    var.panels = packed.get(0);
    var.pack(opt.num_threads);
    kernels::attention_run(var, opt.num_threads);
}

}  // namespace detail

// out[b, pixel, h, :] = softmax over the pixel's neighborhood of scale * q.k, times V; lse
// (optional) [B, spatial..., Hq]. q [B, N, Hq, Dk], k [B, N, Hkv, Dk], v [B, N, Hkv, Dv].
template <class QV, class KV, class VV, class OV>
void neighborhood_attention_1d(const QV& q, const KV& k, const VV& v, const OV& out,
                               const neighborhood_options& opt = {},
                               tensor_view<compute_type_of<typename OV::value_type>, 3> lse = {}) {
    detail::neighborhood_attention<1>(q, k, v, out, lse, opt, "neighborhood_attention_1d");
}
// Images [B, height, width, heads, dim]; lse [B, height, width, Hq].
template <class QV, class KV, class VV, class OV>
void neighborhood_attention_2d(const QV& q, const KV& k, const VV& v, const OV& out,
                               const neighborhood_options& opt = {},
                               tensor_view<compute_type_of<typename OV::value_type>, 4> lse = {}) {
    detail::neighborhood_attention<2>(q, k, v, out, lse, opt, "neighborhood_attention_2d");
}
// Volumes (video) [B, depth, height, width, heads, dim]; lse [B, depth, height, width, Hq].
template <class QV, class KV, class VV, class OV>
void neighborhood_attention_3d(const QV& q, const KV& k, const VV& v, const OV& out,
                               const neighborhood_options& opt = {},
                               tensor_view<compute_type_of<typename OV::value_type>, 5> lse = {}) {
    detail::neighborhood_attention<3>(q, k, v, out, lse, opt, "neighborhood_attention_3d");
}

SEQMIX_ABI_END
}  // namespace seqmix
