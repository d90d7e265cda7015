#include <seqmix/core/error.hpp>
#include <seqmix/core/parallel.hpp>
#include <seqmix/core/scratch.hpp>
#include <seqmix/core/tensor.hpp>
#include <seqmix/core/validate.hpp>
#include <seqmix/kernels/pack.hpp>

#include <cstdint>
#include <stdexcept>
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
    // The element offset, without forming a pointer past a null base (undefined behaviour;
    // test_large reads and writes through offsets beyond 2^31 elements).
    CHECK(3 * v.stride(0) + 5 * v.stride(1) == 3 * big + 5);
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

TEST_CASE("parallel_for visits every item once, for any thread count", "[threads]") {
    for (int threads : {1, 2, 3, 0}) {
        std::vector<int> hits(1001, 0);
        parallel_for(1001, threads, [&](std::int64_t i, int) { hits[std::size_t(i)] += 1; });
        for (int h : hits) REQUIRE(h == 1);
    }
    CHECK(resolve_threads(8, 3) <= 3);
    CHECK(resolve_threads(0, 0) == 1);
}

// The calling thread's float mode: x86 MXCSR, AArch64 FPCR (core/float_mode.hpp).
#if SEQMIX_HAS_MXCSR
std::uint64_t float_mode() { return _mm_getcsr(); }
void set_float_mode(std::uint64_t m) { _mm_setcsr(unsigned(m)); }
#elif SEQMIX_HAS_FPCR
std::uint64_t float_mode() {
    std::uint64_t m;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(m) : : "memory");
    return m;
}
void set_float_mode(std::uint64_t m) { __asm__ __volatile__("msr fpcr, %0" : : "r"(m) : "memory"); }
#endif

TEST_CASE("parallel work runs with subnormals flushed; the caller's float mode is restored, also after a throw",
          "[threads]") {
#if SEQMIX_HAS_MXCSR || SEQMIX_HAS_FPCR
    const std::uint64_t flags = seqmix::subnormals_flushed::flags, caller = float_mode();
    for (std::uint64_t start : {caller & ~flags, caller | flags}) {
        set_float_mode(start);
        for (int threads : {1, 2, 3}) {
            std::vector<std::uint64_t> seen(7, 0);
            volatile float tiny = 1e-38f;
            std::vector<float> product(7, -1.0f);
            seqmix::parallel_for(7, threads, [&](std::int64_t i, int) {
                seen[std::size_t(i)] = float_mode() & flags;
                product[std::size_t(i)] = tiny * 0.25f;  // 2.5e-39: subnormal, flushed to 0
            });
            for (int i = 0; i < 7; ++i) {
                CHECK(seen[std::size_t(i)] == flags);
                CHECK(product[std::size_t(i)] == 0.0f);
            }
            seqmix::parallel_team(threads, [&](int t, int, const seqmix::team_sync&) {
                if (t == 0) seen[0] = float_mode() & flags;
            });
            CHECK(seen[0] == flags);
            CHECK(float_mode() == start);
            CHECK_THROWS(seqmix::parallel_for(5, threads, [](std::int64_t i, int) {
                if (i == 3) throw std::runtime_error("item 3");
            }));
            CHECK(float_mode() == start);
        }
    }
    set_float_mode(caller);
    volatile float tiny = 1e-38f;
    CHECK(tiny * 0.25f > 0.0f);  // the caller's own arithmetic keeps its subnormals
#else
    SUCCEED("no MXCSR or FPCR on this target: nothing to flush");
#endif
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

TEST_CASE("packing: rows, blocks of any strides (channel-major transpose), gather, states both ways") {
    // A [L=37, C=21] block read from a channel-major buffer [C][L] (the transpose case) and
    // from a token-major one, padded to 32 columns.
    const index_t L = 37, C = 21, ld = 32;
    std::vector<float> cm(std::size_t(C * L)), tm(std::size_t(L * C));
    for (index_t t = 0; t < L; ++t)
        for (index_t c = 0; c < C; ++c) cm[std::size_t(c * L + t)] = tm[std::size_t(t * C + c)] = float(t * 100 + c);
    std::vector<float> a(std::size_t(L * ld), -1.f), b(std::size_t(L * ld), -2.f);
    kernels::pack_block(cm.data(), 1, L, L, C, a.data(), ld);  // rows are tokens, stride 1; columns stride L
    kernels::pack_block(tm.data(), C, 1, L, C, b.data(), ld);
    for (index_t t = 0; t < L; ++t)
        for (index_t c = 0; c < ld; ++c) {
            const float want = c < C ? float(t * 100 + c) : 0.f;
            REQUIRE(a[std::size_t(t * ld + c)] == want);
            REQUIRE(b[std::size_t(t * ld + c)] == want);
        }
    // Gather rows 5, 0, 36 (with a negative column stride: the row read backwards).
    const std::int32_t idx[] = {5, 0, 36};
    std::vector<float> g(std::size_t(3 * ld), -3.f);
    kernels::gather_rows(tm.data() + (C - 1), idx, 3, C, -1, C, g.data(), ld);
    for (index_t i = 0; i < 3; ++i)
        for (index_t c = 0; c < C; ++c) REQUIRE(g[std::size_t(i * ld + c)] == float(idx[i] * 100 + (C - 1 - c)));
    // A state [1, 2, dk=5, dv=3] loaded as rows [dk][ldv] and as columns [dv][ldk], stored back.
    std::vector<double> st(30);
    for (std::size_t i = 0; i < st.size(); ++i) st[i] = double(i);
    tensor_view<const double, 4> sv(st.data(), {1, 2, 5, 3});
    std::vector<double> rows(5 * 8), cols(3 * 8), back(30, 0.0);
    kernels::load_state_rows(sv, 0, 1, 5, 3, rows.data(), 8);
    kernels::load_state_columns(sv, 0, 1, 5, 3, cols.data(), 8);
    for (index_t d = 0; d < 5; ++d)
        for (index_t e = 0; e < 3; ++e) {
            REQUIRE(rows[std::size_t(d * 8 + e)] == sv(0, 1, d, e));
            REQUIRE(cols[std::size_t(e * 8 + d)] == sv(0, 1, d, e));
        }
    tensor_view<double, 4> bv(back.data(), {1, 2, 5, 3});
    kernels::store_state_columns(cols.data(), 8, 0, 5, 3, bv, 0, 1);
    for (index_t d = 0; d < 5; ++d)
        for (index_t e = 0; e < 3; ++e) REQUIRE(bv(0, 1, d, e) == sv(0, 1, d, e));
}

TEST_CASE("release_thread_scratch frees the calling thread's scratch, only what no live call uses", "[threads]") {
    release_thread_scratch();
    CHECK(thread_scratch_bytes() == 0);
    {
        thread_scratch<float> outer(2, 1000);
        { thread_scratch<float> inner(1, 5000); }
        const std::size_t held = thread_scratch_bytes();
        CHECK(held >= (2 * 1000 + 5000) * sizeof(float));
        // Inside a call: the outer slice stays (it is in use), the inner one goes.
        const std::size_t freed = release_thread_scratch();
        CHECK(freed >= 5000 * sizeof(float));
        CHECK(thread_scratch_bytes() == held - freed);
        outer.get(1)[999] = 1.0f;  // still valid
    }
    CHECK(release_thread_scratch() >= 2 * 1000 * sizeof(float));
    CHECK(thread_scratch_bytes() == 0);
}
