#pragma once
// 64-byte aligned, uninitialized-by-default storage: the one allocator behind
// tensor<> and per-thread scratch.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace seqmix {

template <class T>
class aligned_buffer {
public:
    static constexpr std::size_t alignment = 64;
    static constexpr std::size_t huge_page = std::size_t(2) << 20;
    static constexpr std::size_t huge_threshold = std::size_t(8) << 20;
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

    // std::bad_alloc, or a message and abort when built with -fno-exceptions.
    [[noreturn]] static void out_of_memory() {
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
        throw std::bad_alloc();
#else
        std::fputs("seqmix: out of memory\n", stderr);
        std::abort();
#endif
    }

    // Grows only; contents are not preserved.
    void resize(std::size_t n) {
        if (n <= size_) return;
        if (n > (SIZE_MAX - huge_page) / sizeof(T)) out_of_memory();
        std::free(data_);
        data_ = nullptr;  // a failed allocation below leaves an empty buffer, not a stale size
        size_ = 0;
        // Large buffers (KV caches, states) start on a 2 MiB boundary and ask for
        // transparent huge pages: a long strided walk over them then stays in the TLB.
        const std::size_t align = n * sizeof(T) >= huge_threshold ? huge_page : alignment;
        const std::size_t bytes = (n * sizeof(T) + align - 1) / align * align;
        data_ = static_cast<T*>(std::aligned_alloc(align, bytes));
        if (!data_) out_of_memory();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        if (align == huge_page) madvise(data_, bytes, MADV_HUGEPAGE);
#endif
        size_ = n;
    }
    T* data() const { return data_; }
    std::size_t size() const { return size_; }

private:
    T* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace seqmix
