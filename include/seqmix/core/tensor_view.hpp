#pragma once
// tensor_view: pointer + extents + strides (in elements, 64-bit), nothing more.
// Layout questions are free functions below, not flags inside kernels.
#include <array>
#include <cstddef>
#include <type_traits>

namespace seqmix {

using index_t = std::ptrdiff_t;

template <class T, std::size_t Rank>
class tensor_view {
public:
    using element_type = T;
    using value_type = std::remove_cv_t<T>;
    using extents_type = std::array<index_t, Rank>;
    static constexpr std::size_t rank = Rank;

    tensor_view() = default;  // empty: "not given" for optional arguments

    // Contiguous row-major view.
    tensor_view(T* data, const extents_type& shape) : data_(data), shape_(shape) {
        index_t s = 1;
        for (std::size_t i = Rank; i-- > 0;) {
            strides_[i] = s;
            s *= shape_[i];
        }
    }
    tensor_view(T* data, const extents_type& shape, const extents_type& strides)
        : data_(data), shape_(shape), strides_(strides) {}

    // tensor_view<T> -> tensor_view<const T>, implicit as for pointers
    template <class U, class = std::enable_if_t<std::is_same_v<const U, T> && !std::is_same_v<U, T>>>
    // cppcheck-suppress noExplicitConstructor
    tensor_view(const tensor_view<U, Rank>& other)
        : data_(other.data()), shape_(other.shape()), strides_(other.strides()) {}

    T* data() const { return data_; }
    index_t extent(std::size_t i) const { return shape_[i]; }
    index_t stride(std::size_t i) const { return strides_[i]; }
    const extents_type& shape() const { return shape_; }
    const extents_type& strides() const { return strides_; }
    bool empty() const { return data_ == nullptr; }
    index_t size() const {
        index_t n = 1;
        for (auto e : shape_) n *= e;
        return n;
    }
    bool is_contiguous() const {
        index_t s = 1;
        for (std::size_t i = Rank; i-- > 0;) {
            if (shape_[i] != 1 && strides_[i] != s) return false;
            s *= shape_[i];
        }
        return true;
    }

    template <class... I>
    T& operator()(I... idx) const {
        static_assert(sizeof...(I) == Rank, "tensor_view: wrong number of indices");
        const index_t ii[] = {static_cast<index_t>(idx)...};
        index_t off = 0;
        // cppcheck-suppress arrayIndexOutOfBounds ; ii has Rank entries (the static_assert)
        for (std::size_t d = 0; d < Rank; ++d) off += ii[d] * strides_[d];
        return data_[off];
    }

    // Pointer to element (i0, ..., i_{k-1}, 0, ..., 0): the start of a sub-block.
    template <class... I>
    T* ptr(I... idx) const {
        const index_t ii[] = {static_cast<index_t>(idx)..., 0};
        index_t off = 0;
        for (std::size_t d = 0; d < sizeof...(I); ++d) off += ii[d] * strides_[d];
        return data_ + off;
    }

private:
    T* data_ = nullptr;
    extents_type shape_{};
    extents_type strides_{};
};

// Unit stride on the last axis: the fast paths vectorize along it.
template <class T, std::size_t R>
bool last_dim_contiguous(const tensor_view<T, R>& v) {
    return v.extent(R - 1) <= 1 || v.stride(R - 1) == 1;
}

// The view with axes reordered: permute(v, {0, 2, 1, 3}) turns [B,H,N,D] into [B,N,H,D].
template <class T, std::size_t R>
tensor_view<T, R> permute(const tensor_view<T, R>& v, const std::array<std::size_t, R>& order) {
    std::array<index_t, R> shape{}, strides{};
    for (std::size_t i = 0; i < R; ++i) {
        shape[i] = v.extent(order[i]);
        strides[i] = v.stride(order[i]);
    }
    return {v.data(), shape, strides};
}

// A view of [begin, begin + count) along one axis: a tile of a view is a view.
template <class T, std::size_t R>
tensor_view<T, R> slice(const tensor_view<T, R>& v, std::size_t axis, index_t begin, index_t count) {
    auto shape = v.shape();
    shape[axis] = count;
    return {v.data() + begin * v.stride(axis), shape, v.strides()};
}

// Smallest and one-past-largest address the view touches (any stride signs); nulls when it
// touches nothing. One pass: the alias checks call it for every view of every decode step.
template <class T, std::size_t R>
std::pair<const void*, const void*> address_span(const tensor_view<T, R>& v) {
    index_t lo = 0, hi = 0;
    bool none = v.empty();
    for (std::size_t d = 0; d < R; ++d) {
        none |= v.extent(d) == 0;
        const index_t reach = (v.extent(d) - 1) * v.stride(d);
        (reach < 0 ? lo : hi) += reach;
    }
    if (none) return {nullptr, nullptr};
    const auto* base = reinterpret_cast<const char*>(v.data());
    return {base + lo * index_t(sizeof(T)), base + (hi + 1) * index_t(sizeof(T))};
}

template <class A, std::size_t RA, class B, std::size_t RB>
bool overlaps(const tensor_view<A, RA>& a, const tensor_view<B, RB>& b) {
    auto sa = address_span(a), sb = address_span(b);
    if (!sa.first || !sb.first) return false;
    return sa.first < sb.second && sb.first < sa.second;
}

// Trait for generic entry points that accept any view.
template <class V>
struct view_traits {
    static constexpr bool is_view = false;
};
template <class T, std::size_t R>
struct view_traits<tensor_view<T, R>> {
    static constexpr bool is_view = true;
    using value_type = std::remove_cv_t<T>;
    static constexpr std::size_t rank = R;
};

}  // namespace seqmix
