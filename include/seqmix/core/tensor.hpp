#pragma once
// tensor: owning, 64-byte aligned, contiguous row-major; hands out views.
#include <algorithm>
#include <array>
#include <cstdint>

#include "aligned_buffer.hpp"
#include "error.hpp"
#include "tensor_view.hpp"
#include "validate.hpp"

namespace seqmix {

template <class T, std::size_t Rank>
class tensor {
public:
    tensor() = default;
    // Extents must be >= 0 and the element count must fit in memory: anything else is a
    // seqmix::error, detected before any arithmetic can overflow.
    explicit tensor(const std::array<index_t, Rank>& shape, T fill = T(0)) : shape_(shape) {
        index_t n = 1;
        for (std::size_t i = 0; i < Rank; ++i) {
            if (shape_[i] < 0) fail("tensor", "shape", "extents >= 0", shape_string(shape_));
            if (__builtin_mul_overflow(n, shape_[i], &n) || n > index_t(PTRDIFF_MAX / index_t(sizeof(T))))
                fail("tensor", "shape", "an element count whose bytes fit in 63 bits", shape_string(shape_));
        }
        storage_.resize(std::size_t(std::max<index_t>(n, 1)));
        std::fill(storage_.data(), storage_.data() + n, fill);
        size_ = n;
    }
    tensor_view<T, Rank> view() { return {storage_.data(), shape_}; }
    tensor_view<const T, Rank> view() const { return {storage_.data(), shape_}; }
    T* data() { return storage_.data(); }
    const T* data() const { return storage_.data(); }
    index_t size() const { return size_; }
    index_t extent(std::size_t i) const { return shape_[i]; }
    const std::array<index_t, Rank>& shape() const { return shape_; }
    template <class... I>
    T& operator()(I... idx) {
        return view()(idx...);
    }
    template <class... I>
    const T& operator()(I... idx) const {
        return view()(idx...);
    }

private:
    aligned_buffer<T> storage_;
    std::array<index_t, Rank> shape_{};
    index_t size_ = 0;
};

}  // namespace seqmix
