// Translation units built with different -march (AVX2 + OpenMP, and plain x86-64 without
// OpenMP) in one program: each must run its own seqmix code (per-target inline namespaces,
// core/abi.hpp), and all must be right. Two more units built for this build's target, with
// and without OpenMP, must give the same bits.
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
    CHECK(avx2.executor_same_bits);
    CHECK(sse2.executor_same_bits);  // threads without OpenMP: the pool's
}

TEST_CASE("without OpenMP, the same target gives the same bits (serially and on a thread_pool)") {
    const abi_report omp = abi_tu_native_omp(), serial = abi_tu_native_serial();
    INFO("OpenMP unit: " << omp.abi << ", serial unit: " << serial.abi);
    CHECK(omp.openmp);
    CHECK_FALSE(serial.openmp);
    CHECK(std::string(omp.abi) != serial.abi);
    CHECK(omp.output_bits == serial.output_bits);
    CHECK(omp.executor_same_bits);
    CHECK(serial.executor_same_bits);
}
