#pragma once
// Per-thread scratch: one allocation per call, carved into 64-byte aligned slices,
// so no tile loop ever allocates.
#include <cstddef>
#include <vector>

#include "abi.hpp"
#include "aligned_buffer.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN

namespace detail {
// Storage behind thread_scratch, kept by the calling thread between calls so that repeated
// operator calls do not map (and fault in) fresh pages each time. Scratch objects nest in
// stack order, each taking the next slot; a slot only ever grows.
struct scratch_pool {
    std::vector<aligned_buffer<unsigned char>> slots;
    std::size_t in_use = 0;
};
inline scratch_pool& this_thread_scratch_pool() {
    static thread_local scratch_pool pool;
    return pool;
}
}  // namespace detail

// Bytes of scratch memory seqmix keeps for the calling thread between calls: the working
// memory of the largest calls it made so far.
inline std::size_t thread_scratch_bytes() {
    std::size_t bytes = 0;
    for (const auto& slot : detail::this_thread_scratch_pool().slots) bytes += slot.size();
    return bytes;
}

// Frees the scratch memory seqmix keeps for the calling thread (all of it between calls;
// within a call, only what the call is not using) and returns the bytes freed. Its next
// call allocates again. Each thread that calls seqmix keeps its own: an engine calls this
// on each of them, for example when a worker goes idle.
inline std::size_t release_thread_scratch() {
    auto& pool = detail::this_thread_scratch_pool();
    std::size_t bytes = 0;
    for (std::size_t i = pool.in_use; i < pool.slots.size(); ++i) bytes += pool.slots[i].size();
    pool.slots.resize(pool.in_use);
    pool.slots.shrink_to_fit();
    return bytes;
}

template <class T>
class thread_scratch {
public:
    thread_scratch(int threads, std::size_t per_thread)
        : stride_((per_thread + 15) / 16 * 16 + 16), pool_(detail::this_thread_scratch_pool()) {
        if (pool_.slots.size() <= pool_.in_use) pool_.slots.resize(pool_.in_use + 1);
        auto& slot = pool_.slots[pool_.in_use];
        slot.resize(stride_ * std::size_t(threads) * sizeof(T));  // may throw: the slot is not taken yet
        ++pool_.in_use;
        data_ = reinterpret_cast<T*>(slot.data());
    }
    ~thread_scratch() { --pool_.in_use; }
    thread_scratch(const thread_scratch&) = delete;
    thread_scratch& operator=(const thread_scratch&) = delete;
    T* get(int thread) const { return data_ + stride_ * std::size_t(thread); }

private:
    std::size_t stride_;
    detail::scratch_pool& pool_;
    T* data_ = nullptr;
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

SEQMIX_ABI_END
}  // namespace seqmix
