// Two translation units built with different -march (AVX2 + OpenMP, and plain x86-64 without
// OpenMP) in one program: each must run its own seqmix code (per-target inline namespaces,
// core/abi.hpp), and both must be right.
#include <seqmix/core/abi.hpp>

#include <string>

#include "abi_report.hpp"
#include "catch.hpp"

TEST_CASE("two translation units with different -march and OpenMP flags each run their own kernels") {
    const abi_report avx2 = abi_tu_avx2(), sse2 = abi_tu_sse2();
    INFO("avx2 unit: " << avx2.abi << ", sse2 unit: " << sse2.abi << ", this unit: " << seqmix::abi_name());
    CHECK(std::string(avx2.abi) == "abi_fma3_avx2_omp");
    CHECK(std::string(sse2.abi) == "abi_sse2_serial");
    CHECK(avx2.float_lanes == 8);
    CHECK(sse2.float_lanes == 4);
    CHECK(avx2.openmp);
    CHECK_FALSE(sse2.openmp);
    CHECK(avx2.attention_symbol != sse2.attention_symbol);  // one definition each, not merged
    CHECK(avx2.attention_error < 1e-5);
    CHECK(sse2.attention_error < 1e-5);
    CHECK(avx2.gla_error < 1e-5);
    CHECK(sse2.gla_error < 1e-5);
}
