#include <seqmix/core/error.hpp>
#include <seqmix/core/parallel.hpp>
#include <seqmix/core/scratch.hpp>
#include <seqmix/core/tensor.hpp>
#include <seqmix/core/validate.hpp>

#include <cstdint>
#include <vector>

#include "catch.hpp"

using namespace seqmix;

TEST_CASE("tensor_view: contiguous strides, indexing, const conversion, empty") {
    std::vector<float> buf(2 * 3 * 4 * 5);
    for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = float(i);
    tensor_view<float, 4> v(buf.data(), {2, 3, 4, 5});
    CHECK(v.stride(0) == 60);
    CHECK(v.stride(1) == 20);
    CHECK(v.stride(2) == 5);
    CHECK(v.stride(3) == 1);
    CHECK(v(1, 2, 3, 4) == float(60 + 40 + 15 + 4));
    CHECK(v.is_contiguous());
    CHECK(v.size() == 120);
    tensor_view<const float, 4> c = v;  // implicit const conversion
    CHECK(c.data() == v.data());
    CHECK(c(0, 1, 0, 2) == 22.0f);
    tensor_view<const float, 4> none;
    CHECK(none.empty());
    static_assert(!std::is_convertible_v<tensor_view<const float, 2>, tensor_view<float, 2>>,
                  "const must not convert back to mutable");
}

TEST_CASE("tensor_view: 64-bit strides do not overflow") {
    const index_t big = index_t(1) << 33;
    tensor_view<const float, 2> v(nullptr, {4, big}, {big, 1});
    CHECK(v.stride(0) == big);
    CHECK(&v(3, 5) - v.data() == 3 * big + 5);
}

TEST_CASE("tensor_view: permute and slice are views of the same memory") {
    std::vector<double> buf(2 * 3 * 4);
    for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = double(i);
    tensor_view<double, 3> v(buf.data(), {2, 3, 4});
    auto p = permute(v, {0, 2, 1});  // [2,4,3]
    CHECK(p.extent(1) == 4);
    CHECK(p(1, 3, 2) == v(1, 2, 3));
    CHECK_FALSE(p.is_contiguous());
    CHECK_FALSE(last_dim_contiguous(p));
    auto s = slice(v, 1, 1, 2);  // rows 1..2 of axis 1
    CHECK(s.extent(1) == 2);
    CHECK(s(1, 0, 3) == v(1, 1, 3));
    CHECK(overlaps(s, v));
    CHECK_FALSE(overlaps(slice(v, 0, 0, 1), slice(v, 0, 1, 1)));
}

TEST_CASE("tensor: 64-byte aligned storage with fill") {
    tensor<float, 3> t({3, 5, 7}, 2.5f);
    CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0);
    CHECK(t.size() == 105);
    CHECK(t(2, 4, 6) == 2.5f);
    CHECK(t.view().is_contiguous());
}

TEST_CASE("parallel_for visits every item once, for any thread count") {
    for (int threads : {1, 2, 3, 0}) {
        std::vector<int> hits(1001, 0);
        parallel_for(1001, threads, [&](std::int64_t i, int) { hits[std::size_t(i)] += 1; });
        for (int h : hits) REQUIRE(h == 1);
    }
    CHECK(resolve_threads(8, 3) <= 3);
    CHECK(resolve_threads(0, 0) == 1);
}

TEST_CASE("scratch slices are aligned and disjoint") {
    thread_scratch<float> s(2, 100);
    CHECK(reinterpret_cast<std::uintptr_t>(s.get(0)) % 64 == 0);
    CHECK(reinterpret_cast<std::uintptr_t>(s.get(1)) % 64 == 0);
    CHECK(s.get(1) - s.get(0) >= 100);
    scratch_carver<float> c(s.get(0));
    float* a = c.take(3);
    float* b = c.take(5);
    CHECK(reinterpret_cast<std::uintptr_t>(b) % 64 == 0);
    CHECK(b - a >= 3);
    CHECK(scratch_carver<float>::size_of(3, 5) == 32);
}

TEST_CASE("errors name operator, argument, expectation and given value") {
    try {
        check(false, "my_op", "k", "extent 64", 63);
        FAIL("no throw");
    } catch (const seqmix::error& e) {
        CHECK(std::string(e.what()) == "my_op: argument 'k': expected extent 64, given 63");
    }
    CHECK_THROWS_AS(check(false, "a", "b", "c", "d"), std::invalid_argument);
    std::vector<float> buf(24);
    tensor_view<float, 3> v(buf.data(), {2, 3, 4});
    try {
        check_extent(v, 1, 5, "op", "x", "sequence length");
        FAIL("no throw");
    } catch (const seqmix::error& e) {
        CHECK(std::string(e.what()) == "op: argument 'x': expected sequence length (axis 1) = 5, given shape [2,3,4]");
    }
    const std::int32_t good[] = {0, 3, 3, 7}, bad_order[] = {0, 4, 2, 7}, bad_start[] = {1, 3, 5, 7};
    CHECK_NOTHROW(check_cu_seqlens(good, 3, 7, "op", "cu"));
    CHECK_THROWS_AS(check_cu_seqlens(bad_order, 3, 7, "op", "cu"), seqmix::error);
    CHECK_THROWS_AS(check_cu_seqlens(bad_start, 3, 7, "op", "cu"), seqmix::error);
    CHECK_THROWS_AS(check_cu_seqlens(good, 3, 8, "op", "cu"), seqmix::error);
}
