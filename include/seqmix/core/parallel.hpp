#pragma once
// The one threading helper. Work items are dealt to threads round-robin
// (a static partition: item i always goes to thread i % T), so each item is computed
// by the same code whatever the thread count and results never depend on it. Every thread
// runs its items with subnormals flushed to zero (core/float_mode.hpp), the caller's
// own mode restored after. Teams are OpenMP's, or an engine's executor (core/executor.hpp)
// named by the call's options.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "abi.hpp"
#include "executor.hpp"
#include "float_mode.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN

namespace detail {
// The executor of the operator call running on this thread (executor_scope), or nullptr:
// kernels pass thread counts only, and every team they open reads it here.
inline executor*& bound_executor() {
    static thread_local executor* bound = nullptr;
    return bound;
}
// True on a thread while it runs a member of an executor's team: a call made there (by a
// user's task, or nested) runs on that one thread, as inside an OpenMP region, and never
// asks the executor for a team it is itself part of.
inline bool& in_executor_team() {
    static thread_local bool in_team = false;
    return in_team;
}
struct executor_member {
    bool was = in_executor_team();
    executor_member() { in_executor_team() = true; }
    ~executor_member() { in_executor_team() = was; }
    executor_member(const executor_member&) = delete;
    executor_member& operator=(const executor_member&) = delete;
};
}  // namespace detail

// Binds an operator call's `opt.executor` to the calling thread for the call.
class executor_scope {
public:
    explicit executor_scope(executor* e) : previous_(detail::bound_executor()) { detail::bound_executor() = e; }
    ~executor_scope() { detail::bound_executor() = previous_; }
    executor_scope(const executor_scope&) = delete;
    executor_scope& operator=(const executor_scope&) = delete;

private:
    executor* previous_;
};

// The team a parallel region opened here would really get: `requested` (0 = the OpenMP
// default), one thread inside a parallel region that cannot nest another active one (a
// user's own `omp parallel` around the call), never above the OpenMP thread limit. With an
// executor: `requested` (0 = all), never above its concurrency.
inline int available_threads(int requested) {
    if (detail::in_executor_team()) return 1;
    if (const executor* ex = detail::bound_executor()) {
        const int c = std::max(1, ex->concurrency());
        return requested > 0 ? std::min(requested, c) : c;
    }
#if defined(_OPENMP)
    if (omp_get_active_level() >= omp_get_max_active_levels()) return 1;
    const int t = requested > 0 ? requested : omp_get_max_threads();
    return std::max(1, std::min(t, omp_get_thread_limit()));
#else
    (void)requested;
    return 1;
#endif
}

// Processors of the machine: schedules that repeat work to use more threads (the sequence
// segments of the chunk scan) never plan more parallel pieces than this.
inline int processor_count() {
    if (const executor* ex = detail::bound_executor()) return std::max(1, ex->concurrency());
#if defined(_OPENMP)
    return std::max(1, omp_get_num_procs());
#else
    return 1;
#endif
}

// Threads to use for `work_items` items: available_threads, never more than the items.
inline int resolve_threads(int requested, std::int64_t work_items) {
    return int(std::max<std::int64_t>(1, std::min<std::int64_t>(available_threads(requested), work_items)));
}

// fn(item, thread_index) for every item in [0, n), thread_index < resolve_threads(num_threads, n).
// An exception thrown by fn is caught inside the parallel region (it must not escape an
// OpenMP region), the remaining items are skipped, and it is rethrown to the caller.
template <class Fn>
void parallel_for(std::int64_t n, int num_threads, Fn&& fn) {
    const int threads = resolve_threads(num_threads, n);
    if (threads <= 1) {
        const subnormals_flushed flushed;
        for (std::int64_t i = 0; i < n; ++i) fn(i, 0);
        return;
    }
    if (executor* ex = detail::bound_executor()) {
        std::exception_ptr failure;
        std::mutex failure_mutex;
        std::atomic<bool> failed{false};
        ex->run(threads, [&](int t) {
            const detail::executor_member member;
            const subnormals_flushed flushed;
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
            try {
                for (std::int64_t i = t; i < n && !failed.load(std::memory_order_relaxed); i += threads) fn(i, t);
            } catch (...) {
                std::lock_guard<std::mutex> lock(failure_mutex);
                if (!failure) failure = std::current_exception();
                failed.store(true, std::memory_order_relaxed);
            }
#else
            for (std::int64_t i = t; i < n; i += threads) fn(i, t);
#endif
        });
        if (failure) std::rethrow_exception(failure);
        return;
    }
#if defined(_OPENMP)
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
    std::exception_ptr failure;
    std::atomic<bool> failed{false};
#pragma omp parallel num_threads(threads)
    {
        const subnormals_flushed flushed;
        const int t = omp_get_thread_num();
        const int nt = omp_get_num_threads();
        try {
            for (std::int64_t i = t; i < n && !failed.load(std::memory_order_relaxed); i += nt) fn(i, t);
        } catch (...) {
#pragma omp critical(seqmix_parallel_for_failure)
            if (!failure) failure = std::current_exception();
            failed.store(true, std::memory_order_relaxed);
        }
    }
    if (failure) std::rethrow_exception(failure);
#else
#pragma omp parallel num_threads(threads)
    {
        const subnormals_flushed flushed;
        const int t = omp_get_thread_num();
        const int nt = omp_get_num_threads();
        for (std::int64_t i = t; i < n; i += nt) fn(i, t);
    }
#endif
#endif
}

// A team of threads that meets at barriers: fn(thread, team_size, team) where
// team.barrier() waits for every thread of the team. For schedules with phases (prepare
// chunks in parallel, then run the state chain in parallel) inside one parallel region.
// Items inside a phase are dealt round-robin (for i = thread; i < n; i += team_size), so
// the computation of an item never depends on the team size. fn must not throw (a thread
// that left early would leave the others waiting at a barrier): kernels run here allocate
// nothing and check nothing.
namespace detail {
// A barrier for an executor's team (OpenMP teams use `omp barrier`).
class team_barrier {
public:
    explicit team_barrier(int members) : members_(members) {}
    void wait() {
        std::unique_lock<std::mutex> lock(mutex_);
        const std::uint64_t phase = phase_;
        if (++arrived_ == members_) {
            arrived_ = 0;
            ++phase_;
            all_arrived_.notify_all();
        } else {
            all_arrived_.wait(lock, [&] { return phase_ != phase; });
        }
    }

private:
    std::mutex mutex_;
    std::condition_variable all_arrived_;
    int members_, arrived_ = 0;
    std::uint64_t phase_ = 0;
};
}  // namespace detail

struct team_sync {
    bool in_region = false;                            // false: run by the caller alone, where a barrier would bind to
                                                       // whatever region the caller is in (a user's): a no-op then
    detail::team_barrier* executor_barrier = nullptr;  // the team runs on an executor
    void barrier() const {
        if (executor_barrier) {
            executor_barrier->wait();
            return;
        }
#if defined(_OPENMP)
        if (in_region) {
#pragma omp barrier
        }
#endif
    }
};

template <class Fn>
void parallel_team(int threads, Fn&& fn) {
    if (threads <= 1) {
        const subnormals_flushed flushed;
        fn(0, 1, team_sync{false});
        return;
    }
    if (executor* ex = detail::bound_executor()) {
        detail::team_barrier barrier(threads);
        ex->run(threads, [&](int t) {
            const detail::executor_member member;
            const subnormals_flushed flushed;
            fn(t, threads, team_sync{true, &barrier});
        });
        return;
    }
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads)
    {
        const subnormals_flushed flushed;
        fn(omp_get_thread_num(), omp_get_num_threads(), team_sync{true});
    }
#endif
}

// fn(i, thread) for i in [0, n), each thread taking one contiguous range of items (the
// split is a function of the team size, so items must be independent: each writes its own
// memory and reads nothing another item writes). For items that stream adjacent memory
// (decode steps over a state pool): dealt round-robin, two cores walking interleaved 32 KB
// items ran a bf16 read-modify-write at half the bandwidth of contiguous halves (52 vs 113
// GB/s on the Zen 5 host; 73 vs 118 for 64 KB items). fn must not throw.
template <class Fn>
void parallel_ranges(std::int64_t n, int threads, Fn&& fn) {
    parallel_team(threads, [&](int t, int nt, const team_sync&) {
        const std::int64_t lo = n * t / nt, hi = n * (t + 1) / nt;
        for (std::int64_t i = lo; i < hi; ++i) fn(i, t);
    });
}

SEQMIX_ABI_END
}  // namespace seqmix
