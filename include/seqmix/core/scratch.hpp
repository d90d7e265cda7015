#pragma once
// Per-thread scratch: one allocation per call, carved into 64-byte aligned slices,
// so no tile loop ever allocates.
#include <cstddef>

#include "aligned_buffer.hpp"

namespace seqmix {

template <class T>
class thread_scratch {
public:
    thread_scratch(int threads, std::size_t per_thread)
        : stride_((per_thread + 15) / 16 * 16 + 16), buffer_(stride_ * std::size_t(threads)) {}
    T* get(int thread) const { return buffer_.data() + stride_ * std::size_t(thread); }

private:
    std::size_t stride_;
    aligned_buffer<T> buffer_;
};

// Hands out consecutive aligned pieces of one scratch slice.
template <class T>
class scratch_carver {
public:
    explicit scratch_carver(T* base) : next_(base) {}
    T* take(std::size_t n) {
        T* p = next_;
        next_ += (n + 15) / 16 * 16;  // keeps every piece 64-byte aligned for float and double
        return p;
    }
    // Elements needed for pieces of these sizes.
    template <class... N>
    static std::size_t size_of(N... n) {
        return (std::size_t(0) + ... + ((std::size_t(n) + 15) / 16 * 16));
    }

private:
    T* next_;
};

}  // namespace seqmix
