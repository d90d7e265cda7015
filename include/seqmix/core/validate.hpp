#pragma once
// Shape and stride checks shared by every operator; each builds a seqmix::error message
// that names the operator, the argument, what was expected and what was given.
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <type_traits>

#include "error.hpp"
#include "tensor_view.hpp"

namespace seqmix {

template <class T, std::size_t R>
std::string shape_string(const tensor_view<T, R>& v) {
    std::ostringstream os;
    os << '[';
    for (std::size_t i = 0; i < R; ++i) os << (i ? "," : "") << v.extent(i);
    os << ']';
    return os.str();
}

// Operators take views of rank Full ([B, ...]) or Full - 1 (one unbatched sequence).
// Returns the view as rank Full; any other rank is a seqmix::error.
template <std::size_t Full, class V>
auto as_batched(const V& v, const char* op, const char* arg, const char* layout) {
    using T = typename V::element_type;
    constexpr std::size_t R = V::rank;
    if constexpr (R == Full) {
        return tensor_view<const T, Full>(v);
    } else if constexpr (R + 1 == Full) {
        std::array<index_t, Full> shape{}, strides{};
        shape[0] = 1;
        strides[0] = v.empty() ? 0 : v.size();
        for (std::size_t i = 0; i < R; ++i) {
            shape[i + 1] = v.extent(i);
            strides[i + 1] = v.stride(i);
        }
        return tensor_view<const T, Full>(v.data(), shape, strides);
    } else {
        raise(detail::concat(op, ": argument '", arg, "': expected rank ", Full, " ", layout,
                             " or rank ", Full - 1, " without the batch axis, given rank ", R));
        return tensor_view<const T, Full>();
    }
}

// The same for outputs (keeps the element type mutable).
template <std::size_t Full, class V>
auto as_batched_out(const V& v, const char* op, const char* arg, const char* layout) {
    using T = typename V::element_type;
    auto c = as_batched<Full>(v, op, arg, layout);
    return tensor_view<T, Full>(const_cast<T*>(c.data()), c.shape(), c.strides());
}

// q, k, v (read) and out (written) of one element type, normalized to rank Full.
template <class T, std::size_t Full>
struct qkvo_views {
    tensor_view<const T, Full> q, k, v;
    tensor_view<T, Full> out;
};

template <std::size_t Full, class QV, class KV, class VV, class OV>
auto as_batched_qkvo(const QV& q, const KV& k, const VV& v, const OV& out, const char* op, const char* layout) {
    static_assert(view_traits<QV>::is_view && view_traits<KV>::is_view && view_traits<VV>::is_view &&
                      view_traits<OV>::is_view,
                  "seqmix: q, k, v and out must be seqmix::tensor_view");
    using T = typename OV::value_type;
    static_assert(std::is_same_v<typename OV::element_type, T>, "seqmix: out must be a mutable view");
    static_assert(std::is_same_v<typename QV::value_type, T> && std::is_same_v<typename KV::value_type, T> &&
                      std::is_same_v<typename VV::value_type, T>,
                  "seqmix: q, k, v and out must have one element type");
    qkvo_views<T, Full> r;
    r.q = as_batched<Full>(q, op, "q", layout);
    r.k = as_batched<Full>(k, op, "k", layout);
    r.v = as_batched<Full>(v, op, "v", layout);
    r.out = as_batched_out<Full>(out, op, "out", layout);
    return r;
}

template <class T, std::size_t R>
void check_given(const tensor_view<T, R>& v, const char* op, const char* arg) {
    check(!v.empty(), op, arg, "a non-empty view", "an empty view");
}

template <class T, std::size_t R>
void check_extent(const tensor_view<T, R>& v, std::size_t axis, index_t expected, const char* op,
                  const char* arg, const char* what) {
    if (v.extent(axis) != expected)
        raise(detail::concat(op, ": argument '", arg, "': expected ", what, " (axis ", axis,
                             ") = ", expected, ", given shape ", shape_string(v)));
}

template <class T, std::size_t R>
void check_shape(const tensor_view<T, R>& v, const std::array<index_t, R>& expected,
                 const char* op, const char* arg) {
    if (v.shape() != expected) {
        tensor_view<T, R> e(nullptr, expected);
        raise(detail::concat(op, ": argument '", arg, "': expected shape ", shape_string(e),
                             ", given ", shape_string(v)));
    }
}

template <class O, std::size_t RO, class I, std::size_t RI>
void check_no_alias(const tensor_view<O, RO>& out, const char* out_name,
                    const tensor_view<I, RI>& in, const char* in_name, const char* op) {
    if (overlaps(out, in))
        raise(detail::concat(op, ": argument '", out_name, "': expected memory disjoint from '",
                             in_name, "', given an overlapping view"));
}

// cu_seqlens: num_seqs + 1 non-decreasing offsets from 0 to `total`.
inline void check_cu_seqlens(const std::int32_t* cu, index_t num_seqs, index_t total,
                             const char* op, const char* arg) {
    check(num_seqs >= 1, op, "num_seqs", detail::concat(">= 1 when '", arg, "' is given"),
          num_seqs);
    check(cu[0] == 0, op, arg, "first offset 0", cu[0]);
    for (index_t s = 0; s < num_seqs; ++s)
        if (cu[s + 1] < cu[s])
            raise(detail::concat(op, ": argument '", arg, "': expected non-decreasing offsets, given ",
                                 arg, "[", s, "] = ", cu[s], " > ", arg, "[", s + 1, "] = ", cu[s + 1]));
    check(cu[num_seqs] == total, op, arg,
          detail::concat("last offset = total tokens ", total), cu[num_seqs]);
}

inline void check_finite(double x, const char* op, const char* arg) {
    check(std::isfinite(x), op, arg, "a finite value", x);
}

inline void check_threads(int n, const char* op) {
    check(n >= 0, op, "num_threads", ">= 0 (0 = OpenMP default)", n);
}

}  // namespace seqmix
