#pragma once
// Benchmark inputs: pseudo-random values (splitmix64 of the element index), never periodic
// along the sequence. A repeating sequence is learned exactly by the delta rule, and its
// corrections then sink into subnormals, which the FMA units run far slower.
#include <cstdint>
#include <type_traits>

namespace seqmix_bench {

// Every element of a view or tensor (anything with data() and size()) in [lo, hi), rounded
// into its element type (float, or bf16 / fp16).
template <class X>
void fill_uniform(X&& x, float lo, float hi, unsigned salt) {
    using E = std::remove_cv_t<std::remove_reference_t<decltype(*x.data())>>;
    for (std::int64_t i = 0; i < std::int64_t(x.size()); ++i) {
        std::uint64_t z = std::uint64_t(i) * 0x9E3779B97F4A7C15ull + salt;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        x.data()[i] = E(lo + (hi - lo) * float(z >> 40) * 0x1p-24f);
    }
}

}  // namespace seqmix_bench
