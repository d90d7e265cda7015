#pragma once
// Each bench_<op>.cpp registers its benchmarks from a static initializer:
//   static const seqmix_bench::registration reg(20, register_my_op_benchmarks);
// bench_main.cpp runs the registrations in `order` (ceilings first), so adding an operator
// adds a file and edits no shared one (CMake globs bench_*.cpp).
#include <algorithm>
#include <utility>
#include <vector>

namespace seqmix_bench {

using register_fn = void (*)();

inline std::vector<std::pair<int, register_fn>>& registrations() {
    static std::vector<std::pair<int, register_fn>> r;
    return r;
}

struct registration {
    registration(int order, register_fn fn) { registrations().emplace_back(order, fn); }
};

// Called once by main after the ceilings are measured.
inline void register_all() {
    auto r = registrations();
    std::stable_sort(r.begin(), r.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [order, fn] : r) fn();
}

}  // namespace seqmix_bench
