#pragma once
// The one threading helper. Work items are dealt to threads round-robin
// (a static partition: item i always goes to thread i % T), so each item is computed
// by the same code whatever the thread count and results never depend on it.
#include <algorithm>
#include <cstdint>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace seqmix {

// Threads to use: `requested` (0 = OpenMP default), never more than `work_items`.
inline int resolve_threads(int requested, std::int64_t work_items) {
#if defined(_OPENMP)
    int t = requested > 0 ? requested : omp_get_max_threads();
#else
    int t = 1;
    (void)requested;
#endif
    return int(std::max<std::int64_t>(1, std::min<std::int64_t>(t, work_items)));
}

// fn(item, thread_index) for every item in [0, n).
template <class Fn>
void parallel_for(std::int64_t n, int num_threads, Fn&& fn) {
    const int threads = resolve_threads(num_threads, n);
    if (threads <= 1) {
        for (std::int64_t i = 0; i < n; ++i) fn(i, 0);
        return;
    }
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num();
        const int nt = omp_get_num_threads();
        for (std::int64_t i = t; i < n; i += nt) fn(i, t);
    }
#endif
}

}  // namespace seqmix
