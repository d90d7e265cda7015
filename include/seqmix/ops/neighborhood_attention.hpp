#pragma once
// neighborhood_attention_1d / _2d / _3d (NATTEN's semantics): each query attends to the
// kernel_size^rank keys around it in an image [B, (depth,) (height,) width, heads, dim]; per
// axis the window is centred on the query and shifted, never shrunk, at the borders (causal:
// the kernel_size keys ending at the query, fewer at the start), on the grid of the query's
// residue mod dilation. A variant of the attention run (kernels/attention_run.hpp):
//   - a problem per image and residue (dilation d splits an image into d^rank grids that never
//     see each other); its keys are that grid, numbered row by row (a kv_rows grid);
//   - its queries are numbered tile by tile, so a work unit is one tile of neighbouring
//     pixels whose windows overlap ("Faster Neighborhood Attention"): every key line of the
//     union of their windows is loaded once for all of them, as one run of the schedule;
//   - a row sees, in a key line, one interval (its window's columns), or nothing.
#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>

#include "../contract/attention.hpp"
#include "../contract/local_attention.hpp"
#include "../core/abi.hpp"
#include "../core/validate.hpp"
#include "../kernels/attention_policies.hpp"
#include "../kernels/attention_run.hpp"
#include "../kernels/kv_rows.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace detail {

// Keys of a residue grid at (z, y, x) <-> logical index (z * lines + y) * cols + x.
struct grid_index {
    index_t lines, cols;
    index_t flat(index_t z, index_t y, index_t x) const { return (z * lines + y) * cols + x; }
    void split(index_t j, index_t& z, index_t& y, index_t& x) const {
        x = j % cols;
        y = j / cols % lines;
        z = j / cols / lines;
    }
};

// The keys a tile of queries visits, line by line: the union of its rows' windows, a box
// [lo, hi] per axis. Each key line is a run; a row sees an interval of it (its window's
// columns) or nothing. Lines inside every row's window, columns too, run unmasked. A row's
// window follows from its place in the tile (rows are the tile's queries, head by head, and
// tiles are powers of two per axis): the per-axis windows of the tile's positions are kept
// here, so `visible` costs a few compares per row, not a decode of flat indices.
struct neighborhood_schedule {
    static constexpr int max_tile = 16;  // per axis (tiles hold about 16 queries)
    grid_index grid;
    std::array<index_t, 3> lo, hi;          // the union of the windows
    std::array<index_t, 3> all_lo, all_hi;  // the windows' intersection (empty: all_lo > all_hi)
    std::array<index_t, 3> tile;            // the tile's extent per axis (powers of two)
    index_t volume;                         // tile[0] * tile[1] * tile[2]
    int shift_x, shift_xy;                  // log2 tile[2], log2 (tile[2] * tile[1])
    const index_t* row_lo;                  // per row: lo > hi for a row without a query
    const index_t* row_hi;
    std::array<std::array<index_t, max_tile>, 3> first_at, last_at;  // window of each tile position
    kernels::run_slice part;                                      // a split-KV slice
    mutable index_t at_j0 = -1, at_z = 0, at_y = 0, at_x = 0;        // the last tile asked about

    index_t line() const { return hi[2] - lo[2] + 1; }
    index_t total() const { return (hi[0] - lo[0] + 1) * (hi[1] - lo[1] + 1) * line(); }
    index_t size() const { return part.size(total()); }
    neighborhood_schedule slice(index_t f, index_t c) const {
        neighborhood_schedule s = *this;
        s.part = part.sub(f, c, total());
        return s;
    }
    template <class Fn>
    void for_each_block(index_t block, Fn&& fn) const {
        part.blocks(block, [&](auto&& visit) {  // the lines of the box, one run each
            for (index_t z = lo[0]; z <= hi[0]; ++z)
                for (index_t y = lo[1]; y <= hi[1]; ++y) visit(grid.flat(z, y, lo[2]), line());
        }, fn);
    }
    void locate(index_t j0) const {
        if (j0 != at_j0) {
            grid.split(j0, at_z, at_y, at_x);
            at_j0 = j0;
        }
    }
    bool masked(index_t j0, index_t n) const {
        locate(j0);
        return !(at_z >= all_lo[0] && at_z <= all_hi[0] && at_y >= all_lo[1] && at_y <= all_hi[1] &&
                 at_x >= all_lo[2] && at_x + n - 1 <= all_hi[2]);
    }
    kernels::key_range visible(index_t r, index_t j0) const {
        locate(j0);
        // The row's place in the tile (tiles are powers of two: shifts and masks, no division).
        const index_t t = r & (volume - 1), wx = t & (tile[2] - 1), wy = (t >> shift_x) & (tile[1] - 1),
                      wz = t >> shift_xy;
        // Branch-free: whether a line is in a row's window alternates row by row.
        const bool in = (row_lo[r] <= row_hi[r]) & (at_z >= first_at[0][std::size_t(wz)]) &
                        (at_z <= last_at[0][std::size_t(wz)]) & (at_y >= first_at[1][std::size_t(wy)]) &
                        (at_y <= last_at[1][std::size_t(wy)]);
        const index_t line = grid.flat(at_z, at_y, 0);
        return {in ? line + first_at[2][std::size_t(wx)] : 1, in ? line + last_at[2][std::size_t(wx)] : 0};
    }
};

template <class T>
struct neighborhood_variant;

// One residue grid of one image: queries numbered tile by tile (a tile's padding past the
// grid's edge numbers no query), keys row by row.
template <class T>
struct neighborhood_problem {
    const neighborhood_variant<T>& var;
    index_t b;
    std::array<index_t, 3> residue, n, tiles;

    grid_index grid() const { return {n[1], n[2]}; }
    kernels::problem_extent extent() const {
        return {tiles[0] * tiles[1] * tiles[2] * var.g.tile_volume(), n[0] * n[1] * n[2]};
    }
    // The first grid position of query i's tile and its place in the tile. Tiles are powers
    // of two per axis (shifts and masks); the tile index takes two 32-bit divisions. Called
    // for every row of every unit: 64-bit divisions here cost as much as the unit's FMAs.
    void tile_of(index_t i, std::array<index_t, 3>& origin, std::array<index_t, 3>& at) const {
        const auto& tl = var.g.tile;
        const int sx = __builtin_ctzll(std::uint64_t(tl[2])), sy = __builtin_ctzll(std::uint64_t(tl[1]));
        const int sv = sx + sy + __builtin_ctzll(std::uint64_t(tl[0]));
        const std::uint32_t t = std::uint32_t(i >> sv), w = std::uint32_t(i & ((index_t(1) << sv) - 1));
        const std::uint32_t plane = std::uint32_t(tiles[1] * tiles[2]), tz = t / plane, rest = t - tz * plane;
        const std::uint32_t ty = rest / std::uint32_t(tiles[2]), tx = rest - ty * std::uint32_t(tiles[2]);
        origin = {index_t(tz) * tl[0], index_t(ty) * tl[1], index_t(tx) * tl[2]};
        at = {origin[0] + (w >> (sx + sy)), origin[1] + ((w >> sx) & (tl[1] - 1)), origin[2] + (w & (tl[2] - 1))};
    }
    kernels::attention_row<T> row(index_t h, index_t i) const {
        std::array<index_t, 3> origin, c, p;
        tile_of(i, origin, c);
        kernels::attention_row<T> r{};
        for (std::size_t a = 0; a < 3; ++a) {
            if (c[a] >= n[a]) return r;  // padding: no query
            p[a] = residue[a] + c[a] * var.g.dilation[a];
        }
        const auto& ax = var.g.axis;
        r.q = var.q.ptr(b, p[0], p[1], p[2], h);
        r.out = var.out.ptr(b, p[0], p[1], p[2], h);
        r.lse = var.lse.empty() ? nullptr : var.lse.ptr(b, p[0], p[1], p[2], h);
        r.keys = {grid().flat(ax[0].first(c[0], n[0]), ax[1].first(c[1], n[1]), ax[2].first(c[2], n[2])),
                  grid().flat(ax[0].last(c[0], n[0]), ax[1].last(c[1], n[1]), ax[2].last(c[2], n[2]))};
        r.sink = var.sinks ? T(var.sinks[h]) : -std::numeric_limits<T>::infinity();
        return r;
    }
    kernels::kv_rows<T> keys(index_t hk) const {
        kernels::kv_rows<T> kv{};
        const auto &k = var.k, &v = var.v;
        const auto& d = var.g.dilation;
        kv.k = k.ptr(b, residue[0], residue[1], residue[2], hk);
        kv.v = v.ptr(b, residue[0], residue[1], residue[2], hk);
        kv.k_row = d[2] * k.stride(3);
        kv.v_row = d[2] * v.stride(3);
        kv.k_line = d[1] * k.stride(2);
        kv.v_line = d[1] * v.stride(2);
        kv.k_plane = d[0] * k.stride(1);
        kv.v_plane = d[0] * v.stride(1);
        kv.k_elem = k.stride(5);
        kv.v_elem = v.stride(5);
        kv.k_head = k.stride(4);
        kv.v_head = v.stride(4);
        kv.cols = n[2];
        kv.lines = n[1];
        kv.count = n[0] * n[1] * n[2];
        return kv;
    }
    // The unit is one tile: windows move with the query, so the union of the tile's windows
    // spans from its first query's window start to its last one's window end, per axis, and
    // their intersection from the last one's start to the first one's end.
    neighborhood_schedule schedule(const kernels::unit_span& u) const {
        std::array<index_t, 3> origin, at;
        tile_of(u.i0, origin, at);
        const auto& tl = var.g.tile;
        neighborhood_schedule s{grid(), {}, {}, {}, {}, tl, tl[0] * tl[1] * tl[2],
                                __builtin_ctzll(std::uint64_t(tl[2])), __builtin_ctzll(std::uint64_t(tl[2] * tl[1])),
                                u.lo, u.hi, {}, {}, {}};
        for (std::size_t a = 0; a < 3; ++a) {
            const auto& ax = var.g.axis[a];
            const index_t q0 = origin[a], q1 = std::min(origin[a] + var.g.tile[a], n[a]) - 1;
            s.lo[a] = ax.first(q0, n[a]);
            s.hi[a] = ax.last(q1, n[a]);
            s.all_lo[a] = ax.first(q1, n[a]);
            s.all_hi[a] = ax.last(q0, n[a]);
            for (index_t w = 0; w < var.g.tile[a]; ++w) {  // positions past the grid: padding rows
                s.first_at[a][std::size_t(w)] = ax.first(std::min(q0 + w, q1), n[a]);
                s.last_at[a][std::size_t(w)] = ax.last(std::min(q0 + w, q1), n[a]);
            }
        }
        return s;
    }
};

// neighborhood attention as a variant of the attention run.
template <class T>
struct neighborhood_variant : kernels::attention_variant_base {
    using value_type = T;
    tensor_view<const T, 6> q, k, v;  // [B, depth, height, width, heads, dim]
    tensor_view<T, 6> out;
    tensor_view<T, 5> lse;            // [B, depth, height, width, heads] or empty
    neighborhood_geometry g;
    double scale_;
    const float* sinks;
    kernels::logits_transform<T> none;

    kernels::attention_heads heads() const { return {g.hkv, g.group, g.dk, g.dv}; }
    index_t residues() const { return g.dilation[0] * g.dilation[1] * g.dilation[2]; }
    index_t problems() const { return g.batch * residues(); }
    neighborhood_problem<T> problem(index_t p) const {
        const index_t r = p % residues();
        neighborhood_problem<T> pr{*this, p / residues(), {r / (g.dilation[1] * g.dilation[2]),
                                                           r / g.dilation[2] % g.dilation[1], r % g.dilation[2]},
                                   {}, {}};
        for (std::size_t a = 0; a < 3; ++a) {
            pr.n[a] = (g.extent[a] - pr.residue[a] + g.dilation[a] - 1) / g.dilation[a];
            pr.tiles[a] = (pr.n[a] + g.tile[a] - 1) / g.tile[a];
        }
        return pr;
    }
    bool banded() const { return true; }
    index_t query_block(index_t, index_t) const { return g.tile_volume(); }  // a unit is a tile
    index_t visited_keys(index_t, index_t k_len) const {
        index_t n = 1;
        for (std::size_t a = 0; a < 3; ++a) n *= std::min(g.tile[a] + g.axis[a].kernel - 1, g.extent[a]);
        return std::min(n, k_len);
    }
    double scale() const { return scale_; }
    index_t q_elem() const { return q.stride(5); }
    index_t out_elem() const { return out.stride(5); }
    const kernels::logits_transform<T>& logits() const { return none; }
};

// Query tiles: about 32 rows per unit, grown axis by axis from the innermost, never past the
// image. Tiles of neighbouring pixels share most of their windows (at kernel 7 a 4 x 8 tile
// visits 10 x 14 keys for its 32 x 49), and two vectors of rows let each key element loaded
// feed two FMAs in the lane-panel GEMMs (one vector of rows: one FMA per broadcast load).
inline std::array<index_t, 3> neighborhood_tile(const std::array<index_t, 3>& extent, index_t group, int rank) {
    constexpr index_t rows = 32;
    std::array<index_t, 3> t{1, 1, 1};
    for (bool grew = true; grew && t[0] * t[1] * t[2] * group < rows;) {
        grew = false;
        for (int a = 2; a >= 3 - rank && t[0] * t[1] * t[2] * group < rows; --a)
            if (t[std::size_t(a)] < extent[std::size_t(a)] && t[std::size_t(a)] < neighborhood_schedule::max_tile) {
                t[std::size_t(a)] *= 2;
                grew = true;
            }
    }
    return t;
}

template <std::size_t Rank, class QV, class KV, class VV, class OV, class LV>
void neighborhood_attention(const QV& q, const KV& k, const VV& v, const OV& out, const LV& lse,
                            const neighborhood_options& opt, const char* op) {
    using T = typename OV::value_type;
    static_assert(QV::rank == Rank + 3 && KV::rank == Rank + 3 && VV::rank == Rank + 3 && OV::rank == Rank + 3,
                  "seqmix: neighborhood attention takes [B, spatial..., heads, dim] views");
    const tensor_view<const T, Rank + 3> qc = q, kc = k, vc = v;
    neighborhood_geometry g = validate_neighborhood<Rank, T>(qc, kc, vc, out, lse, opt, op);
    std::array<index_t, 3> grid_extent{};
    for (std::size_t a = 0; a < 3; ++a) grid_extent[a] = g.extent[a] / g.dilation[a];
    g.tile = neighborhood_tile(grid_extent, g.group, int(Rank));
    neighborhood_variant<T> var;
    var.q = image_of<Rank>(qc);
    var.k = image_of<Rank>(kc);
    var.v = image_of<Rank>(vc);
    var.out = image_of<Rank>(out);
    var.lse = lse_image_of<Rank>(lse);
    var.g = g;
    var.scale_ = opt.scale != 0 ? opt.scale : 1.0 / std::sqrt(double(g.dk));
    var.sinks = opt.sinks;
    kernels::attention_run(var, opt.num_threads);
}

}  // namespace detail

// out[b, pixel, h, :] = softmax over the pixel's neighborhood of scale * q.k, times V; lse
// (optional) [B, spatial..., Hq]. q [B, N, Hq, Dk], k [B, N, Hkv, Dk], v [B, N, Hkv, Dv].
template <class QV, class KV, class VV, class OV>
void neighborhood_attention_1d(const QV& q, const KV& k, const VV& v, const OV& out,
                               const neighborhood_options& opt = {},
                               tensor_view<typename OV::value_type, 3> lse = {}) {
    detail::neighborhood_attention<1>(q, k, v, out, lse, opt, "neighborhood_attention_1d");
}
// Images [B, height, width, heads, dim]; lse [B, height, width, Hq].
template <class QV, class KV, class VV, class OV>
void neighborhood_attention_2d(const QV& q, const KV& k, const VV& v, const OV& out,
                               const neighborhood_options& opt = {},
                               tensor_view<typename OV::value_type, 4> lse = {}) {
    detail::neighborhood_attention<2>(q, k, v, out, lse, opt, "neighborhood_attention_2d");
}
// Volumes (video) [B, depth, height, width, heads, dim]; lse [B, depth, height, width, Hq].
template <class QV, class KV, class VV, class OV>
void neighborhood_attention_3d(const QV& q, const KV& k, const VV& v, const OV& out,
                               const neighborhood_options& opt = {},
                               tensor_view<typename OV::value_type, 5> lse = {}) {
    detail::neighborhood_attention<3>(q, k, v, out, lse, opt, "neighborhood_attention_3d");
}

SEQMIX_ABI_END
}  // namespace seqmix
