#include <seqmix/core/float_mode.hpp>
#include <seqmix/simd/simd.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "catch.hpp"

using namespace seqmix;

namespace {
// fn(x) in vectors over [lo, hi] on a grid of step 1e-4; err(x, relative error) per point.
template <class Fn, class Err>
void exp_over_grid(double lo, double hi, Fn&& fn, Err&& err) {
    constexpr std::size_t W = simd::width<float>;
    alignas(64) float in[W], out[W];
    const double step = 1e-4;
    for (double x0 = lo; x0 <= hi; x0 += step * double(W)) {
        for (std::size_t i = 0; i < W; ++i) in[i] = float(std::min(hi, x0 + step * double(i)));
        simd::store_aligned(out, fn(simd::load_aligned(in)));
        for (std::size_t i = 0; i < W; ++i) {
            const double ref = std::exp(double(in[i]));
            err(in[i], std::abs(double(out[i]) - ref) / ref);
        }
    }
}
}  // namespace

TEST_CASE("vector exp (float) is accurate over [-87, 88]") {
    double max_rel = 0;
    float worst = 0;
    // Every float in [-87, 88] on a fine grid (about 1.8 million points).
    exp_over_grid(
        -87.0, 88.0, [](const simd::vec<float>& x) { return simd::exp(x); },
        [&](float x, double rel) {
            if (rel > max_rel) {
                max_rel = rel;
                worst = x;
            }
        });
    std::printf("simd::exp<float> (width %zu): max relative error %.3g over [-87, 88] (at x = %g)\n",
                simd::width<float>, max_rel, double(worst));
    CHECK(max_rel < 3e-7);  // about 2.5 ulp
}

TEST_CASE("vector exp: limits softmax depends on") {
    for (float x : {-std::numeric_limits<float>::infinity(), -1000.0f, -104.0f, -90.0f, -87.01f})
        CHECK(simd::hsum(simd::exp(simd::broadcast(x))) == 0.0f);
    // No result is subnormal (Intel's microcode assists): the smallest nonzero is >= FLT_MIN.
    for (float x = -87.0f; x < -86.0f; x += 1e-3f)
        CHECK(simd::hmax(simd::exp(simd::broadcast(x))) >= std::numeric_limits<float>::min());
    alignas(64) float lanes[simd::width<float>];
    simd::store_aligned(lanes, simd::exp(simd::broadcast(std::numeric_limits<float>::quiet_NaN())));
    CHECK(std::isnan(lanes[0]));
    CHECK(simd::hmax(simd::exp(simd::broadcast(0.0f))) == 1.0f);
    CHECK(std::isfinite(simd::hmax(simd::exp(simd::broadcast(88.7f)))));
    CHECK(simd::hsum(simd::exp(simd::broadcast(-std::numeric_limits<double>::infinity()))) == 0.0);
    const double e1 = simd::hmax(simd::exp(simd::broadcast(1.0)));
    CHECK(std::abs(e1 - std::exp(1.0)) < 1e-15);
}

TEST_CASE("vector exp of a nonpositive argument (the online softmax): accurate, -inf gives 0, NaN stays") {
    double near = 0, far = 0;  // max relative errors over [-14, 0] and [-87, -14)
    exp_over_grid(
        -87.0, 0.0, [](const simd::vec<float>& x) { return simd::exp_nonpositive(x); },
        [&](float x, double rel) { (x >= -14.0f ? near : far) = std::max(x >= -14.0f ? near : far, rel); });
    std::printf("simd::exp_nonpositive<float>: max relative error %.3g over [-14, 0], %.3g over [-87, -14)\n", near,
                far);
    CHECK(near < 1e-6);
    CHECK(far < 1e-5);
    const subnormals_flushed flush;  // the library's mode in its own regions
    for (float x : {-std::numeric_limits<float>::infinity(), -1000.0f, -139.0f, -104.0f})
        CHECK(simd::hmax(simd::exp_nonpositive(simd::broadcast(x))) == 0.0f);
    CHECK(simd::hmax(simd::exp_nonpositive(simd::broadcast(0.0f))) == 1.0f);
    alignas(64) float out[simd::width<float>];
    simd::store_aligned(out, simd::exp_nonpositive(simd::broadcast(std::numeric_limits<float>::quiet_NaN())));
    CHECK(std::isnan(out[0]));
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

// ---- Reduced-precision storage types: every pattern, every rounding boundary ----

namespace {
std::uint32_t bits_of(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
// The value of a binary floating-point pattern with `ebits` exponent and `mbits` mantissa bits,
// computed in double from the definition (independent of the conversions under test).
// fn: e4m3fn's rule (no Inf; only all-ones is NaN).
double decode_reference(std::uint32_t bits, int ebits, int mbits, bool fn) {
    const std::uint32_t m = bits & ((1u << mbits) - 1), e = (bits >> mbits) & ((1u << ebits) - 1);
    const double sign = (bits >> (ebits + mbits)) & 1 ? -1.0 : 1.0;
    const int bias = (1 << (ebits - 1)) - 1;
    const std::uint32_t emax = (1u << ebits) - 1;
    if (fn && e == emax && m == (1u << mbits) - 1) return std::numeric_limits<double>::quiet_NaN();
    if (!fn && e == emax) return m ? std::numeric_limits<double>::quiet_NaN() : sign * HUGE_VAL;
    if (e == 0) return sign * std::ldexp(double(m), 1 - bias - mbits);
    return sign * std::ldexp(double(m + (1u << mbits)), int(e) - bias - mbits);
}

template <class S>
struct format;
template <>
struct format<bf16> {
    static constexpr int ebits = 8, mbits = 7, patterns = 1 << 16;
    static constexpr bool fn = false;
    static constexpr bool flushes_float_subnormals = true;  // shares float's exponent range
};
template <>
struct format<fp16> {
    static constexpr int ebits = 5, mbits = 10, patterns = 1 << 16;
    static constexpr bool fn = false;
    static constexpr bool flushes_float_subnormals = false;  // float subnormals are far below its range anyway
};
template <>
struct format<fp8_e4m3> {
    static constexpr int ebits = 4, mbits = 3, patterns = 1 << 8;
    static constexpr bool fn = true;
    static constexpr bool flushes_float_subnormals = false;
};

template <class S>
S of_bits(std::uint32_t b) {
    return S::from_bits(decltype(S::bits)(b));
}

// The vector conversions, width<float> values at a time, tail included.
template <class S>
std::vector<float> widen_vector(const std::vector<S>& in) {
    constexpr std::size_t W = simd::width<float>;
    std::vector<float> out(in.size());
    std::size_t i = 0;
    for (; i + W <= in.size(); i += W) simd::store(out.data() + i, simd::load_float(in.data() + i));
    if (i < in.size())
        simd::store_partial(out.data() + i, simd::load_float_partial(in.data() + i, in.size() - i), in.size() - i);
    return out;
}
template <class S>
std::vector<S> narrow_vector(const std::vector<float>& in) {
    constexpr std::size_t W = simd::width<float>;
    std::vector<S> out(in.size());
    std::size_t i = 0;
    for (; i + W <= in.size(); i += W) simd::store_float(out.data() + i, simd::load(in.data() + i));
    if (i < in.size())
        simd::store_float_partial(out.data() + i, simd::load_partial(in.data() + i, in.size() - i), in.size() - i);
    return out;
}

template <class S>
void check_storage_type(const char* name) {
    using F = format<S>;
    INFO(name);
    static_assert(std::is_trivially_copyable_v<S> && sizeof(S) == (F::ebits + F::mbits + 1) / 8);
    // Every pattern to float: exact, scalar and vector (also with FTZ | DAZ set: the library's mode).
    std::vector<S> all(F::patterns);
    for (int b = 0; b < F::patterns; ++b) all[std::size_t(b)] = of_bits<S>(std::uint32_t(b));
    const std::vector<float> wide = widen_vector(all);
    std::vector<float> wide_flushed;
    {
        subnormals_flushed guard;
        wide_flushed = widen_vector(all);
    }
    for (int b = 0; b < F::patterns; ++b) {
        const double ref = decode_reference(std::uint32_t(b), F::ebits, F::mbits, F::fn);
        const float scalar = float(all[std::size_t(b)]);
        INFO("pattern " << b);
        if (std::isnan(ref)) {
            REQUIRE(std::isnan(scalar));
            REQUIRE(std::isnan(wide[std::size_t(b)]));
            REQUIRE(std::isnan(wide_flushed[std::size_t(b)]));
            REQUIRE(std::isnan(float(S(scalar))));  // NaN stays NaN
            REQUIRE(std::signbit(float(S(scalar))) == std::signbit(scalar));
            continue;
        }
        REQUIRE(double(scalar) == ref);
        REQUIRE(std::signbit(scalar) == std::signbit(ref));
        REQUIRE(bits_of(wide[std::size_t(b)]) == bits_of(scalar));
        REQUIRE(bits_of(wide_flushed[std::size_t(b)]) == bits_of(scalar));
        // Round trip; a bf16 subnormal is a float subnormal, which narrows to a signed zero.
        const bool flushed = F::flushes_float_subnormals && std::fpclassify(scalar) == FP_SUBNORMAL;
        REQUIRE(std::uint32_t(S(scalar).bits) == (flushed ? (std::signbit(scalar) ? 0x8000u : 0u) : std::uint32_t(b)));
    }
    // From float: at every boundary between two neighbouring finite values of the same sign,
    // the exact midpoint goes to the even one, and the floats just beside it to the nearer.
    std::vector<float> probes;
    std::vector<std::uint32_t> expected;
    const std::uint32_t sign_bit = 1u << (F::ebits + F::mbits);
    for (std::uint32_t b = 0; b + 1 < sign_bit; ++b) {
        const double lo = decode_reference(b, F::ebits, F::mbits, F::fn);
        const double hi = decode_reference(b + 1, F::ebits, F::mbits, F::fn);
        if (std::isnan(hi) || std::isinf(hi) || std::isnan(lo)) continue;
        const float mid = float((lo + hi) / 2);
        REQUIRE(double(mid) == (lo + hi) / 2);  // exact in float for these formats
        for (std::uint32_t s : {0u, sign_bit}) {
            const float sg = s ? -1.0f : 1.0f;
            auto probe = [&](float x, std::uint32_t bits) {
                probes.push_back(sg * x);
                const bool flushed = F::flushes_float_subnormals && std::fpclassify(x) == FP_SUBNORMAL;
                expected.push_back(s | (flushed ? 0u : bits));
            };
            probe(mid, (b & 1) ? b + 1 : b);
            probe(std::nextafter(mid, 0.0f), b);
            probe(std::nextafter(mid, HUGE_VALF), b + 1);
        }
    }
    const std::vector<S> narrow = narrow_vector<S>(probes);
    std::vector<S> narrow_flushed;
    {
        subnormals_flushed guard;
        narrow_flushed = narrow_vector<S>(probes);
    }
    for (std::size_t i = 0; i < probes.size(); ++i) {
        INFO("float " << probes[i] << " (bits " << bits_of(probes[i]) << ")");
        REQUIRE(std::uint32_t(S(probes[i]).bits) == expected[i]);
        REQUIRE(std::uint32_t(narrow[i].bits) == expected[i]);
        REQUIRE(std::uint32_t(narrow_flushed[i].bits) == expected[i]);
    }
}
}  // namespace

TEST_CASE("storage types: every pattern converts to float exactly, and float rounds to nearest even") {
    check_storage_type<bf16>("bf16");
    check_storage_type<fp16>("fp16");
    check_storage_type<fp8_e4m3>("fp8_e4m3");
}

TEST_CASE("storage types: overflow, Inf, NaN and zero") {
    const float inf = HUGE_VALF, nan = std::numeric_limits<float>::quiet_NaN(), big = 3.0e38f;
    // bf16 and fp16 overflow to Inf and keep Inf; fp8_e4m3 has no Inf and saturates at 448.
    CHECK(bf16(big * 10).bits == 0x7F80);
    CHECK(bf16(-inf).bits == 0xFF80);
    CHECK(bf16(3.3961775e38f).bits == 0x7F80);  // above the midpoint of the largest finite and 2^128
    CHECK(fp16(65504.0f).bits == 0x7BFF);
    CHECK(fp16(65519.99f).bits == 0x7BFF);
    CHECK(fp16(65520.0f).bits == 0x7C00);  // the midpoint to 2^16 rounds to even: Inf
    CHECK(fp16(-inf).bits == 0xFC00);
    for (float x : {448.0f, 449.0f, 464.0f, 1.0e6f, inf}) {
        CHECK(fp8_e4m3(x).bits == 0x7E);
        CHECK(fp8_e4m3(-x).bits == 0xFE);
    }
    CHECK(fp8_e4m3(nan).bits == 0x7F);
    CHECK(fp8_e4m3(-nan).bits == 0xFF);
    CHECK(std::isnan(float(bf16(nan))));
    CHECK(std::isnan(float(fp16(-nan))));
    CHECK(std::signbit(float(fp16(-nan))));
    // Signed zeros and values far below the smallest subnormal.
    CHECK(bf16(-0.0f).bits == 0x8000);
    CHECK(fp16(-1e-30f).bits == 0x8000);
    CHECK(fp8_e4m3(1e-30f).bits == 0x00);
    CHECK(fp8_e4m3(std::ldexp(1.0f, -10)).bits == 0x00);  // 2^-10: half the smallest, ties to 0
    CHECK(fp8_e4m3(std::nextafter(std::ldexp(1.0f, -10), 1.0f)).bits == 0x01);
    // A float subnormal becomes a zero of its sign (as the library flushes them, and as
    // vcvtneps2bf16 does); the smallest normal stays.
    const float tiny = std::ldexp(1.0f, -130);
    CHECK(bf16(tiny).bits == 0x0000);
    CHECK(bf16(-tiny).bits == 0x8000);
    CHECK(float(bf16(std::ldexp(1.0f, -126))) == std::ldexp(1.0f, -126));
}
