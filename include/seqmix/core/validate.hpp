#pragma once
// Shape, stride, memory and option checks shared by every operator; each builds a
// seqmix::error message that names the operator, the argument, what was expected and what
// was given, and builds it only when the check fails.
//
// Order of use (contract/*.hpp): every view goes through checked_view (extents >= 0, element
// count and reach free of 64-bit overflow) before anything multiplies its extents; outputs
// also through check_output_layout (no element written twice); then the shape checks; then
// one check_disjoint over all outputs and inputs.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>

#include "abi.hpp"
#include "error.hpp"
#include "tensor_view.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN

template <std::size_t R>
std::string shape_string(const std::array<index_t, R>& shape) {
    std::ostringstream os;
    os << '[';
    for (std::size_t i = 0; i < R; ++i) os << (i ? "," : "") << shape[i];
    os << ']';
    return os.str();
}
template <class T, std::size_t R>
std::string shape_string(const tensor_view<T, R>& v) {
    return shape_string(v.shape());
}

template <class T, std::size_t R>
std::string strides_string(const tensor_view<T, R>& v) {
    std::ostringstream os;
    os << '[';
    for (std::size_t i = 0; i < R; ++i) os << (i ? "," : "") << v.stride(i);
    os << ']';
    return os.str();
}

// Extents >= 0; the element count and the furthest element reached (in bytes, either
// direction) fit in 63 bits. Checked with overflow builtins: no undefined behaviour on any
// input. An empty view ("not given") passes.
// The failure path of check_view, out of line so that the checks themselves inline.
template <class T, std::size_t R>
[[noreturn]] __attribute__((noinline, cold)) void view_check_failed(const tensor_view<T, R>& v, const char* op,
                                                                    const char* arg, bool negative,
                                                                    bool count_overflow) {
    if (negative) fail(op, arg, "extents >= 0", shape_string(v));
    if (count_overflow) fail(op, arg, "an element count that fits in 64 bits", shape_string(v));
    fail(op, arg, detail::concat("strides whose reach fits in 63 bits of bytes (shape ", shape_string(v), ")"),
         strides_string(v));
}

template <class T, std::size_t R>
inline void check_view(const tensor_view<T, R>& v, const char* op, const char* arg) {
    if (v.empty()) return;
    // One pass, branch-light (this runs for every view of every decode step).
    constexpr index_t limit = std::numeric_limits<index_t>::max() / index_t(sizeof(T));
    index_t count = 1, reach = 0;
    bool negative = false, count_overflow = false, reach_overflow = false, any_zero = false;
    for (std::size_t i = 0; i < R; ++i) {
        const index_t e = v.extent(i), s = v.stride(i);
        negative |= e < 0;
        any_zero |= e == 0;
        count_overflow |= __builtin_mul_overflow(count, e, &count);
        index_t term = 0;
        reach_overflow |= s == std::numeric_limits<index_t>::min() ||
                          __builtin_mul_overflow(e - 1, s < 0 ? -s : s, &term) ||
                          __builtin_add_overflow(reach, term, &reach);
    }
    if (__builtin_expect(!(negative | count_overflow | reach_overflow | (reach >= limit)), 1)) return;
    if (!negative && !count_overflow && any_zero) return;  // no element is ever read or written
    view_check_failed(v, op, arg, negative, count_overflow);
}

// An output must not write one element twice: sorted by stride magnitude, every axis of
// extent > 1 strides past everything the smaller axes reach (stride 0 never does).
template <class T, std::size_t R>
void check_output_layout(const tensor_view<T, R>& v, const char* op, const char* arg) {
    if (v.empty() || v.size() == 0 || v.is_contiguous()) return;  // row-major: distinct by construction
    std::array<std::size_t, R> order{};
    for (std::size_t i = 0; i < R; ++i) order[i] = i;
    auto mag = [&](std::size_t i) { return v.stride(i) < 0 ? -v.stride(i) : v.stride(i); };
    for (std::size_t i = 1; i < R; ++i)  // insertion sort: R is tiny, and no std::sort call per decode step
        for (std::size_t j = i; j > 0 && mag(order[j]) < mag(order[j - 1]); --j) std::swap(order[j], order[j - 1]);
    index_t reach = 0;
    for (std::size_t i : order) {
        if (v.extent(i) <= 1) continue;
        if (mag(i) <= reach)
            fail(op, arg,
                 detail::concat("an output whose elements are distinct (no stride 0 or interleaved strides; shape ",
                                shape_string(v), ")"),
                 detail::concat("strides ", strides_string(v)));
        reach += (v.extent(i) - 1) * mag(i);
    }
}

// Operators take views of rank Full ([B, ...]) or Full - 1 (one unbatched sequence).
// Returns the view as rank Full after check_view; any other rank is a seqmix::error.
template <std::size_t Full, class V>
auto as_batched(const V& v, const char* op, const char* arg, const char* layout) {
    using T = typename V::element_type;
    constexpr std::size_t R = V::rank;
    check_view(v, op, arg);
    if constexpr (R == Full) {
        return tensor_view<const T, Full>(v);
    } else if constexpr (R + 1 == Full) {
        std::array<index_t, Full> shape{}, strides{};
        shape[0] = 1;
        strides[0] = 0;  // one batch row: the stride is never used
        for (std::size_t i = 0; i < R; ++i) {
            shape[i + 1] = v.extent(i);
            strides[i + 1] = v.stride(i);
        }
        return tensor_view<const T, Full>(v.data(), shape, strides);
    } else {
        raise(detail::concat(op, ": argument '", arg, "': expected rank ", Full, " ", layout, " or rank ", Full - 1,
                             " without the batch axis, given rank ", R));
        return tensor_view<const T, Full>();
    }
}

// The same for outputs (keeps the element type mutable; checks the output layout).
template <std::size_t Full, class V>
auto as_batched_out(const V& v, const char* op, const char* arg, const char* layout) {
    using T = typename V::element_type;
    auto c = as_batched<Full>(v, op, arg, layout);
    check_output_layout(c, op, arg);
    return tensor_view<T, Full>(const_cast<T*>(c.data()), c.shape(), c.strides());
}

// q, k, v (read) and out (written), each in its element type, normalized to rank Full.
template <std::size_t Full, class Q, class K, class V, class O>
struct qkvo_views {
    tensor_view<const Q, Full> q;
    tensor_view<const K, Full> k;
    tensor_view<const V, Full> v;
    tensor_view<O, Full> out;
};

// Whether the views q, k, v and out share one element type (operators without storage types).
template <class QV, class KV, class VV, class OV>
constexpr bool one_element_type = std::is_same_v<typename QV::value_type, typename OV::value_type>&&
    std::is_same_v<typename KV::value_type, typename OV::value_type>&&
        std::is_same_v<typename VV::value_type, typename OV::value_type>;

template <std::size_t Full, class QV, class KV, class VV, class OV>
auto as_batched_qkvo(const QV& q, const KV& k, const VV& v, const OV& out, const char* op, const char* layout) {
    static_assert(
        view_traits<QV>::is_view && view_traits<KV>::is_view && view_traits<VV>::is_view && view_traits<OV>::is_view,
        "seqmix: q, k, v and out must be seqmix::tensor_view");
    static_assert(std::is_same_v<typename OV::element_type, typename OV::value_type>,
                  "seqmix: out must be a mutable view");
    qkvo_views<Full, typename QV::value_type, typename KV::value_type, typename VV::value_type, typename OV::value_type>
        r;
    r.q = as_batched<Full>(q, op, "q", layout);
    r.k = as_batched<Full>(k, op, "k", layout);
    r.v = as_batched<Full>(v, op, "v", layout);
    r.out = as_batched_out<Full>(out, op, "out", layout);
    return r;
}

// An optional view (empty = not given) of an exact rank, checked like the others.
template <class T, std::size_t R>
tensor_view<const T, R> checked_view(const tensor_view<const T, R>& v, const char* op, const char* arg) {
    check_view(v, op, arg);
    return v;
}
template <class T, std::size_t R>
tensor_view<T, R> checked_output(const tensor_view<T, R>& v, const char* op, const char* arg) {
    check_view(v, op, arg);
    check_output_layout(v, op, arg);
    return v;
}

template <class T, std::size_t R>
void check_given(const tensor_view<T, R>& v, const char* op, const char* arg) {
    check(!v.empty(), op, arg, "a non-empty view", "an empty view");
}

template <class T, std::size_t R>
[[noreturn]] __attribute__((noinline, cold)) void extent_check_failed(const tensor_view<T, R>& v, std::size_t axis,
                                                                      index_t expected, const char* op, const char* arg,
                                                                      const char* what) {
    raise(detail::concat(op, ": argument '", arg, "': expected ", what, " (axis ", axis, ") = ", expected,
                         ", given shape ", shape_string(v)));
}

template <class T, std::size_t R>
inline void check_extent(const tensor_view<T, R>& v, std::size_t axis, index_t expected, const char* op,
                         const char* arg, const char* what) {
    if (__builtin_expect(v.extent(axis) != expected, 0)) extent_check_failed(v, axis, expected, op, arg, what);
}

template <class T, std::size_t R>
[[noreturn]] __attribute__((noinline, cold)) void shape_check_failed(const tensor_view<T, R>& v,
                                                                     const std::array<index_t, R>& expected,
                                                                     const char* op, const char* arg) {
    raise(detail::concat(op, ": argument '", arg, "': expected shape ", shape_string(expected), ", given ",
                         shape_string(v)));
}

template <class T, std::size_t R>
inline void check_shape(const tensor_view<T, R>& v, const std::array<index_t, R>& expected, const char* op,
                        const char* arg) {
    bool same = true;  // a plain loop: std::array == calls memcmp, and this runs per decode step
    for (std::size_t i = 0; i < R; ++i) same &= v.extent(i) == expected[i];
    if (__builtin_expect(!same, 0)) shape_check_failed(v, expected, op, arg);
}

// The memory of one argument as the alias rules see it: the byte range it reaches, and
// enough of the view to tell "exactly the same view" from "overlapping". It points at the
// view's own extents and strides: the view must outlive the check (it always does: checks
// run on the operator's local views).
// One address per element type: views of two types over the same bytes (bf16 and fp16 are
// both 2 bytes) are never the same view.
template <class T>
inline constexpr char element_tag = 0;

struct arg_memory {
    const char* name = nullptr;
    const void* element = nullptr;  // &element_tag<T>
    const char* lo = nullptr;       // [lo, hi): null when the view is empty or has no elements
    const char* hi = nullptr;
    const void* data = nullptr;
    std::size_t rank = 0, element_size = 0;
    const index_t* shape = nullptr;
    const index_t* strides = nullptr;
    bool same_view(const arg_memory& o) const {
        if (data != o.data || rank != o.rank || element_size != o.element_size || element != o.element) return false;
        for (std::size_t i = 0; i < rank; ++i)
            if (shape[i] != o.shape[i] || strides[i] != o.strides[i]) return false;
        return true;
    }
    bool overlaps(const arg_memory& o) const { return lo && o.lo && lo < o.hi && o.lo < hi; }
};

template <class T, std::size_t R>
arg_memory memory_of(const char* name, const tensor_view<T, R>& v) {
    arg_memory m;
    m.name = name;
    const auto span = address_span(v);  // the view passed check_view: no overflow
    m.lo = static_cast<const char*>(span.first);
    m.hi = static_cast<const char*>(span.second);
    m.data = v.data();
    m.rank = R;
    m.element_size = sizeof(T);
    m.element = &element_tag<std::remove_cv_t<T>>;
    m.shape = v.shape().data();
    m.strides = v.strides().data();
    return m;
}

// The outputs or the inputs of one call, without allocation (a call has a handful).
struct arg_list {
    std::array<arg_memory, 12> items;
    std::size_t count = 0;
    arg_list(std::initializer_list<arg_memory> a, std::initializer_list<arg_memory> more = {}) {
        for (const auto& m : a) add(m);
        for (const auto& m : more) add(m);
    }
    void add(const arg_memory& m) {
        if (count == items.size()) raise("seqmix: internal error: more than 12 arguments in one alias check");
        items[count++] = m;
    }
    const arg_memory* begin() const { return items.data(); }
    const arg_memory* end() const { return items.data() + count; }
};

// The alias rules of every operator: outputs are disjoint from each other and from every
// input, with one exception: the output named `in_place_output` may be exactly the view of
// the input `in_place_input` (an in-place state update); a partial overlap is still an error.
inline void check_disjoint(const char* op, const arg_list& outputs, const arg_list& inputs,
                           const char* in_place_output = nullptr, const char* in_place_input = nullptr) {
    auto named = [](const char* a, const char* b) { return a && b && std::string(a) == b; };
    for (const auto* o = outputs.begin(); o != outputs.end(); ++o) {
        for (const auto* p = outputs.begin(); p != o; ++p)
            if (o->overlaps(*p))
                fail(op, o->name, detail::concat("memory disjoint from '", p->name, "'"), "an overlapping view");
        for (const auto& i : inputs) {
            if (!o->overlaps(i)) continue;
            if (named(o->name, in_place_output) && named(i.name, in_place_input)) {
                if (o->same_view(i)) continue;
                fail(op, o->name,
                     detail::concat("exactly the view of '", i.name, "' (in-place update) or memory disjoint from it"),
                     "a partly overlapping view");
            }
            fail(op, o->name, detail::concat("memory disjoint from '", i.name, "'"), "an overlapping view");
        }
    }
}

// cu_seqlens: num_seqs + 1 non-decreasing offsets from 0 to `total`.
inline void check_cu_seqlens(const std::int32_t* cu, index_t num_seqs, index_t total, const char* op, const char* arg) {
    if (num_seqs < 1) fail(op, "num_seqs", detail::concat(">= 1 when '", arg, "' is given"), num_seqs);
    check(cu[0] == 0, op, arg, "first offset 0", cu[0]);
    for (index_t s = 0; s < num_seqs; ++s)
        if (cu[s + 1] < cu[s])
            raise(detail::concat(op, ": argument '", arg, "': expected non-decreasing offsets, given ", arg, "[", s,
                                 "] = ", cu[s], " > ", arg, "[", s + 1, "] = ", cu[s + 1]));
    if (cu[num_seqs] != total) fail(op, arg, detail::concat("last offset = total tokens ", total), cu[num_seqs]);
}

// x is finite and stays finite when converted to T (compared in double: converting an
// out-of-range double to float would itself be undefined).
template <class T>
bool fits_finite(double x) {
    return std::isfinite(x) && std::abs(x) <= double(std::numeric_limits<T>::max());
}

// Options are used in the element type T: they must be finite there (1e300 is finite as a
// double and infinite as a float).
template <class T>
void check_finite_as(double x, const char* op, const char* arg) {
    if (!fits_finite<T>(x)) fail(op, arg, std::is_same_v<T, float> ? "a value finite as float" : "a finite value", x);
}

inline void check_threads(int n, const char* op) { check(n >= 0, op, "num_threads", ">= 0 (0 = OpenMP default)", n); }

SEQMIX_ABI_END
}  // namespace seqmix
