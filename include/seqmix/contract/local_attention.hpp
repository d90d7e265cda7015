#pragma once
// The contract of the local attention operators: sliding_window_attention (a band of keys
// around each query's diagonal, with dilation) and neighborhood_attention_1d/2d/3d (NATTEN's
// neighborhoods). Their options, and how they are validated: as the softmax_attention call
// they are a restriction of (contract/attention.hpp), plus their own options.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <initializer_list>

#include "../core/executor.hpp"
#include "../core/abi.hpp"
#include "../core/validate.hpp"
#include "attention.hpp"

namespace seqmix {

struct window_options : attention_inputs {
    int window_left = -1;          // keys up to this many tokens before the diagonal (-1 = unbounded)
    int window_right = -1;         // keys up to this many tokens after it (-1 = unbounded)
    bool causal = false;           // window_right = 0
    int dilation = 1;              // only keys j with (diagonal - j) % dilation == 0 (NATTEN 1-D)
    double scale = 0;              // 0 = 1/sqrt(Dk)
    double softcap = 0;            // 0 = off
    const float* sinks = nullptr;  // [Hq]; a logit joining every row's denominator
};

// One value per spatial axis (depth, height, width; 1-D and 2-D use the last ones): set from
// one value for every axis (`opt.kernel_size = 7`) or from one per axis (`{7, 5}` in 2-D).
template <class E>
struct per_axis {
    std::array<E, 3> v;  // v[0] the outermost axis given, ...
    int given = 1;       // values given (1: every axis the same)
    // cppcheck-suppress noExplicitConstructor
    per_axis(E x) : v{x, x, x} {}  // NOLINT: implicit on purpose
    per_axis(std::initializer_list<E> xs) : v{}, given(int(xs.size())) {
        std::size_t i = 0;
        for (E x : xs)
            if (i < 3) v[i++] = x;
    }
    E of(int axis) const { return given == 1 ? v[0] : v[std::size_t(axis)]; }  // axis 0 = outermost
};

// NATTEN's neighborhood attention: each query attends to the kernel_size^rank keys around it
// (per axis: the window centred on it, shifted, not shrunk, at the borders; causal: the
// kernel_size keys ending at it), on the grid of its residue mod dilation.
struct neighborhood_options {
    per_axis<int> kernel_size = 7;         // odd, per axis
    per_axis<int> dilation = 1;            // per axis; kernel_size * dilation <= extent
    per_axis<bool> causal = false;         // per axis
    double scale = 0;                      // 0 = 1/sqrt(Dk)
    const float* sinks = nullptr;          // [Hq]; a logit joining every row's denominator
    int num_threads = 0;                   // 0 = OpenMP default
    seqmix::executor* executor = nullptr;  // nullptr = OpenMP; else its threads (core/executor.hpp)
};

SEQMIX_ABI_BEGIN
namespace detail {

// The softmax_attention options with the same band (dilation aside): what validation and
// the dilation-1 case run on.
inline attention_options band_options(const window_options& w) {
    attention_options o;
    static_cast<attention_inputs&>(o) = static_cast<const attention_inputs&>(w);
    o.scale = w.scale;
    o.causal = w.causal;
    o.window_left = w.window_left;
    o.window_right = w.window_right;
    o.softcap = w.softcap;
    o.sinks = w.sinks;
    return o;
}

inline void check_window(const window_options& w, const char* op) {
    check(w.dilation >= 1, op, "dilation", ">= 1", w.dilation);
}

// A neighborhood's options against the image: per axis an odd kernel, dilation >= 1 and
// kernel_size * dilation <= extent (NATTEN's rule: every residue grid holds a whole window).
template <std::size_t Rank>
void check_neighborhood(const neighborhood_options& o, const std::array<index_t, Rank>& extents, const char* op) {
    const auto per_axis_count = [&](int given, const char* arg) {
        if (given != 1 && given != int(Rank))
            raise(concat(op, ": argument '", arg, "': expected 1 or ", Rank, " values (one per axis), given ", given));
    };
    per_axis_count(o.kernel_size.given, "kernel_size");
    per_axis_count(o.dilation.given, "dilation");
    per_axis_count(o.causal.given, "causal");
    for (int a = 0; a < int(Rank); ++a) {
        const index_t ks = o.kernel_size.of(a), dil = o.dilation.of(a), n = extents[std::size_t(a)];
        if (ks < 1 || ks % 2 == 0)
            raise(concat(op, ": argument 'kernel_size': expected an odd size >= 1 on axis ", a, ", given ", ks));
        if (dil < 1) raise(concat(op, ": argument 'dilation': expected >= 1 on axis ", a, ", given ", dil));
        if (ks * dil > n)
            raise(concat(op, ": argument 'kernel_size': expected kernel_size * dilation <= the image extent on axis ",
                         a, " (", n, "), given ", ks, " * ", dil));
    }
    check_threads(o.num_threads, op);
}

// One axis of a residue grid: the window of query position i (first and last key).
struct neighborhood_axis {
    index_t kernel;
    bool causal;
    index_t first(index_t i, index_t n) const {
        return causal ? std::max<index_t>(0, i - kernel + 1) : std::clamp<index_t>(i - kernel / 2, 0, n - kernel);
    }
    index_t last(index_t i, index_t n) const { return causal ? i : first(i, n) + kernel - 1; }
};

// An image normalized to three spatial axes (depth, height, width; missing ones of extent 1).
struct neighborhood_geometry {
    index_t batch = 0, hq = 0, hkv = 0, group = 0, dk = 0, dv = 0;
    std::array<index_t, 3> extent{}, dilation{};
    std::array<neighborhood_axis, 3> axis{};
};

// An image view [B, spatial (Rank axes)..., trailing axes] as [B, depth, height, width,
// trailing axes]: the missing outer spatial axes get extent 1.
template <std::size_t Rank, std::size_t Trailing, class T, std::size_t R>
tensor_view<T, 4 + Trailing> as_volume(const tensor_view<T, R>& v) {
    static_assert(R == 1 + Rank + Trailing, "an image view is [B, spatial..., trailing axes]");
    if (v.empty()) return {};
    std::array<index_t, 4 + Trailing> shape{}, strides{};
    for (std::size_t a = 0; a < 4 + Trailing; ++a) {  // axes 1 .. 3 - Rank are the missing ones
        const bool missing = a >= 1 && a <= 3 - Rank;
        const std::size_t from = a == 0 ? 0 : a - (3 - Rank);
        shape[a] = missing ? 1 : v.extent(from);
        strides[a] = missing ? 0 : v.stride(from);
    }
    return {v.data(), shape, strides};
}
// q, k, v, out: [B, depth, height, width, heads, dim]; lse: [B, depth, height, width, heads].
template <std::size_t Rank, class T, std::size_t R>
tensor_view<T, 6> image_of(const tensor_view<T, R>& v) {
    return as_volume<Rank, 2>(v);
}
template <std::size_t Rank, class T, std::size_t R>
tensor_view<T, 5> lse_image_of(const tensor_view<T, R>& v) {
    return as_volume<Rank, 1>(v);
}

// Validation shared by the fast kernel and the reference: shapes, options, aliasing. Returns
// the geometry over rank-6 views.
// T: the compute type; q, k, v and out may be stored as Q, K, V, O (check_attention_types).
template <std::size_t Rank, class T, class Q, class K, class V, class O>
neighborhood_geometry validate_neighborhood(const tensor_view<const Q, Rank + 3>& q,
                                            const tensor_view<const K, Rank + 3>& k,
                                            const tensor_view<const V, Rank + 3>& v,
                                            const tensor_view<O, Rank + 3>& out, const tensor_view<T, Rank + 2>& lse,
                                            const neighborhood_options& opt, const char* op) {
    check_attention_types<T, Q, K, V, O>();
    check_given(q, op, "q");
    check_given(k, op, "k");
    check_given(v, op, "v");
    check_given(out, op, "out");
    check_view(q, op, "q");
    check_view(k, op, "k");
    check_view(v, op, "v");
    check_view(out, op, "out");
    check_output_layout(out, op, "out");
    check_view(lse, op, "lse");
    check_output_layout(lse, op, "lse");
    constexpr std::size_t H = Rank + 1, D = Rank + 2;  // axes of heads and dim
    const index_t hq = q.extent(H), hkv = k.extent(H), dk = q.extent(D), dv = v.extent(D);
    std::array<index_t, Rank> image{};
    for (std::size_t a = 0; a < Rank; ++a) image[a] = q.extent(1 + a);
    check_heads(dk, dv, hq, hkv, op);
    std::array<index_t, Rank + 3> ks = q.shape(), vs{}, os{};
    ks[H] = hkv;
    vs = ks;
    vs[D] = dv;
    os = q.shape();
    os[D] = dv;
    check_shape(k, ks, op, "k");
    check_shape(v, vs, op, "v");
    check_shape(out, os, op, "out");
    if (!lse.empty()) {
        std::array<index_t, Rank + 2> ls{};
        for (std::size_t a = 0; a <= Rank; ++a) ls[a] = q.extent(a);
        ls[Rank + 1] = hq;
        check_shape(lse, ls, op, "lse");
    }
    check_disjoint(op, {memory_of("out", out), memory_of("lse", lse)},
                   {memory_of("q", q), memory_of("k", k), memory_of("v", v)});
    check_finite_as<T>(opt.scale, op, "scale");
    check_sinks<T>(opt.sinks, hq, op);
    check_neighborhood(opt, image, op);
    neighborhood_geometry g{};
    g.batch = q.extent(0);
    g.hq = hq;
    g.hkv = hkv;
    g.group = hq / hkv;
    g.dk = dk;
    g.dv = dv;
    for (std::size_t a = 0; a < 3; ++a) {
        const bool given = a >= 3 - Rank;
        const int axis = int(a) - int(3 - Rank);
        g.extent[a] = given ? image[std::size_t(axis)] : 1;
        g.dilation[a] = given ? opt.dilation.of(axis) : 1;
        g.axis[a] = {given ? index_t(opt.kernel_size.of(axis)) : 1, given && opt.causal.of(axis)};
    }
    return g;
}

}  // namespace detail
SEQMIX_ABI_END
}  // namespace seqmix
