#pragma once
// 64-byte aligned, uninitialized-by-default storage: the one allocator behind
// tensor<> and per-thread scratch.
#include <cstddef>
#include <cstdlib>
#include <new>
#include <utility>

namespace seqmix {

template <class T>
class aligned_buffer {
public:
    static constexpr std::size_t alignment = 64;
    aligned_buffer() = default;
    explicit aligned_buffer(std::size_t n) { resize(n); }
    aligned_buffer(const aligned_buffer&) = delete;
    aligned_buffer& operator=(const aligned_buffer&) = delete;
    aligned_buffer(aligned_buffer&& o) noexcept
        : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
    aligned_buffer& operator=(aligned_buffer&& o) noexcept {
        std::swap(data_, o.data_);
        std::swap(size_, o.size_);
        return *this;
    }
    ~aligned_buffer() { std::free(data_); }

    // Grows only; contents are not preserved.
    void resize(std::size_t n) {
        if (n <= size_) return;
        std::free(data_);
        std::size_t bytes = (n * sizeof(T) + alignment - 1) / alignment * alignment;
        data_ = static_cast<T*>(std::aligned_alloc(alignment, bytes));
        if (!data_) throw std::bad_alloc();
        size_ = n;
    }
    T* data() const { return data_; }
    std::size_t size() const { return size_; }

private:
    T* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace seqmix
