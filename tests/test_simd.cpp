#include <seqmix/simd/simd.hpp>

#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "catch.hpp"

using namespace seqmix;

TEST_CASE("vector exp (float) is accurate over [-87, 88]") {
    constexpr std::size_t W = simd::width<float>;
    alignas(64) float in[W], out[W];
    double max_rel = 0;
    float worst = 0;
    // Every float in [-87, 88] on a fine grid (about 1.8 million points).
    const double step = 1e-4;
    for (double x0 = -87.0; x0 <= 88.0; x0 += step * W) {
        for (std::size_t i = 0; i < W; ++i) in[i] = float(std::min(88.0, x0 + step * double(i)));
        simd::store_aligned(out, simd::exp(simd::load_aligned(in)));
        for (std::size_t i = 0; i < W; ++i) {
            const double ref = std::exp(double(in[i]));
            const double rel = std::abs(double(out[i]) - ref) / ref;
            if (rel > max_rel) {
                max_rel = rel;
                worst = in[i];
            }
        }
    }
    std::printf("simd::exp<float> (width %zu): max relative error %.3g over [-87, 88] (at x = %g)\n", W,
                max_rel, double(worst));
    CHECK(max_rel < 3e-7);  // about 2.5 ulp
}

TEST_CASE("vector exp: limits softmax depends on") {
    for (float x : {-std::numeric_limits<float>::infinity(), -1000.0f, -104.0f, -90.0f, -87.01f})
        CHECK(simd::hsum(simd::exp(simd::broadcast(x))) == 0.0f);
    // No result is subnormal (Intel's microcode assists): the smallest nonzero is >= FLT_MIN.
    for (float x = -87.0f; x < -86.0f; x += 1e-3f) CHECK(simd::hmax(simd::exp(simd::broadcast(x))) >= std::numeric_limits<float>::min());
    alignas(64) float lanes[simd::width<float>];
    simd::store_aligned(lanes, simd::exp(simd::broadcast(std::numeric_limits<float>::quiet_NaN())));
    CHECK(std::isnan(lanes[0]));
    CHECK(simd::hmax(simd::exp(simd::broadcast(0.0f))) == 1.0f);
    CHECK(std::isfinite(simd::hmax(simd::exp(simd::broadcast(88.7f)))));
    CHECK(simd::hsum(simd::exp(simd::broadcast(-std::numeric_limits<double>::infinity()))) == 0.0);
    const double e1 = simd::hmax(simd::exp(simd::broadcast(1.0)));
    CHECK(std::abs(e1 - std::exp(1.0)) < 1e-15);
}

template <class T>
void check_blas1() {
    constexpr std::size_t W = simd::width<T>;
    for (std::size_t n = 0; n <= 5 * W + 3; ++n) {
        std::vector<T> a(n), b(n), y(n), y2(n);
        for (std::size_t i = 0; i < n; ++i) {
            a[i] = T(0.5) + T(i % 7);
            b[i] = T(1) - T(i % 3);
            y[i] = y2[i] = T(i);
        }
        double ref = 0;
        for (std::size_t i = 0; i < n; ++i) ref += double(a[i]) * double(b[i]);
        REQUIRE(double(simd::dot(a.data(), b.data(), n)) == Approx(ref).margin(1e-4));
        simd::axpy(T(2), a.data(), y.data(), n);
        for (std::size_t i = 0; i < n; ++i) REQUIRE(y[i] == y2[i] + T(2) * a[i]);
        simd::scale(T(3), y2.data(), n);
        for (std::size_t i = 0; i < n; ++i) REQUIRE(y2[i] == T(3) * T(i));
    }
}

TEST_CASE("dot, axpy and scale at every tail length") {
    check_blas1<float>();
    check_blas1<double>();
}

template <class T>
void check_partial() {
    constexpr std::size_t W = simd::width<T>;
    alignas(64) T src[W], dst[W];
    for (std::size_t n = 0; n < W; ++n) {
        for (std::size_t i = 0; i < W; ++i) {
            src[i] = T(i + 1);
            dst[i] = T(-1);
        }
        const auto v = simd::load_partial(src, n, T(7));
        alignas(64) T lanes[W];
        simd::store_aligned(lanes, v);
        for (std::size_t i = 0; i < W; ++i) REQUIRE(lanes[i] == (i < n ? src[i] : T(7)));
        simd::store_partial(dst, v, n);
        for (std::size_t i = 0; i < W; ++i) REQUIRE(dst[i] == (i < n ? src[i] : T(-1)));
    }
    alignas(64) T x[W];
    for (std::size_t i = 0; i < W; ++i) x[i] = T(i) - T(3);
    CHECK(simd::hmax(simd::load_aligned(x)) == T(W) - T(4));
    CHECK(simd::hsum(simd::load_aligned(x)) == T(W * (W - 1) / 2) - T(3 * W));
}

TEST_CASE("masked loads and stores touch only the first n lanes; reductions") {
    check_partial<float>();
    check_partial<double>();
}

template <class T>
void check_hsum_rows() {
    constexpr std::size_t W = simd::width<T>;
    simd::vec<T> rows[W];
    alignas(64) T lanes[W];
    for (std::size_t r = 0; r < W; ++r) {
        for (std::size_t i = 0; i < W; ++i) lanes[i] = T(r * 100 + i);
        rows[r] = simd::load_aligned(lanes);
    }
    simd::store_aligned(lanes, simd::hsum_rows(rows));
    for (std::size_t r = 0; r < W; ++r) REQUIRE(lanes[r] == T(r * 100 * W + W * (W - 1) / 2));
}

TEST_CASE("hsum_rows puts the sum of row i in lane i (xsimd 8.1 AVX-512 haddp does not)") {
    check_hsum_rows<float>();
    check_hsum_rows<double>();
}

template <class T, int S>
void check_shift() {
    constexpr std::size_t W = simd::width<T>;
    alignas(64) T both[2 * W], out[W];
    for (std::size_t i = 0; i < 2 * W; ++i) both[i] = T(i) + T(0.5);
    simd::store_aligned(out, simd::shift_lanes<S>(simd::load_aligned(both), simd::load_aligned(both + W)));
    for (std::size_t i = 0; i < W; ++i) REQUIRE(out[i] == both[i + std::size_t(S)]);
}

template <class T>
void check_lane_moves() {
    constexpr int W = int(simd::width<T>);
    check_shift<T, 0>();
    check_shift<T, 1>();
    check_shift<T, W / 2>();
    check_shift<T, W - 1>();
    alignas(64) T x[W], out[W];
    std::int32_t idx[16] = {};
    for (int i = 0; i < W; ++i) {
        x[i] = T(i * 10);
        idx[i] = std::int32_t(i < 3 ? 0 : i - 3);  // a window shifted at a border: lanes repeat
    }
    const auto xv = simd::load_aligned(x);
    simd::store_aligned(out, simd::permute2(xv, xv, idx));  // one vector: both halves the same
    for (int i = 0; i < W; ++i) REQUIRE(out[i] == x[idx[i]]);
}

TEST_CASE("shift_lanes takes consecutive lanes across two vectors; permute2 of one vector moves its lanes") {
    check_lane_moves<float>();
    check_lane_moves<double>();
}

template <class T>
void check_permute2() {
    constexpr int W = int(simd::width<T>);
    alignas(64) T both[2 * W], out[W];
    for (int i = 0; i < 2 * W; ++i) both[i] = T(i * 3 + 1);
    std::int32_t idx[16] = {};
    for (int i = 0; i < W; ++i) idx[i] = std::int32_t(i < 2 ? 2 : i + W / 2);  // repeats, then across both vectors
    simd::store_aligned(out, simd::permute2(simd::load_aligned(both), simd::load_aligned(both + W), idx));
    for (int i = 0; i < W; ++i) REQUIRE(out[i] == both[idx[i]]);
}

TEST_CASE("permute2 takes lanes by index from two vectors") {
    check_permute2<float>();
    check_permute2<double>();
}
