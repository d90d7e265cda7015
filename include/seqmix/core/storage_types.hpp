#pragma once
// Reduced-precision storage types: bf16, fp16 and fp8_e4m3 (OCP "e4m3fn"). They only store
// values; arithmetic is always float. Conversions are integer bit arithmetic, so they give the
// same bits on every target and under any MXCSR mode (FTZ / DAZ included):
//   - from float: round to nearest, ties to even; NaN stays NaN (quieted), Inf stays Inf
//     (bf16, fp16); fp8_e4m3 has no Inf and saturates: every finite or infinite magnitude
//     beyond its largest, 448, becomes +-448; a float subnormal becomes a bf16 zero of its
//     sign (the library flushes subnormals, and AVX512-BF16's conversion does the same);
//   - to float: exact.
// The vector forms (simd/convert.hpp) give the same bits as these.
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace seqmix {

namespace storage_detail {
inline std::uint32_t float_bits(float f) {
    std::uint32_t u = 0;
    std::memcpy(&u, &f, sizeof u);
    return u;
}
inline float bits_float(std::uint32_t u) {
    float f = 0;
    std::memcpy(&f, &u, sizeof f);
    return f;
}
// round(m / 2^shift), ties to even (shift >= 1).
inline std::uint32_t shift_round_even(std::uint32_t m, unsigned shift) {
    if (shift > 31) return 0;
    const std::uint32_t q = m >> shift, rem = m & ((std::uint32_t(1) << shift) - 1),
                        half = std::uint32_t(1) << (shift - 1);
    return q + (rem > half || (rem == half && (q & 1)));
}

// Round to nearest even; a float subnormal becomes a zero of its sign, as the library reads
// and writes them everywhere (core/float_mode.hpp) and as AVX512-BF16's vcvtneps2bf16 does.
inline std::uint16_t bf16_from_float(float f) {
    const std::uint32_t x = float_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return std::uint16_t((x >> 16) | 0x40u);  // NaN: quiet, sign kept
    if ((x & 0x7F800000u) == 0) return std::uint16_t((x >> 16) & 0x8000u);         // zero, subnormal: signed zero
    return std::uint16_t((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);                  // overflow rounds to Inf
}
inline float bf16_to_float(std::uint16_t h) { return bits_float(std::uint32_t(h) << 16); }

inline std::uint16_t fp16_from_float(float f) {
    const std::uint32_t x = float_bits(f), a = x & 0x7FFFFFFFu;
    const std::uint16_t sign = std::uint16_t((x >> 16) & 0x8000u);
    if (a > 0x7F800000u) return std::uint16_t(sign | 0x7E00u | ((a >> 13) & 0x1FFu));  // NaN: quiet, payload top
    if (a >= 0x477FF000u) return std::uint16_t(sign | 0x7C00u);                        // >= 65520 (and Inf): Inf
    if (a >= 0x38800000u) {                                                            // normal: >= 2^-14
        const std::uint32_t r = a - (112u << 23);                                      // exponent bias 127 -> 15
        return std::uint16_t(sign | ((r + 0xFFFu + ((r >> 13) & 1u)) >> 13));
    }
    // Subnormal: units of 2^-24; a = m 2^(e - 150) with the implicit bit in m.
    const std::uint32_t e = a >> 23;
    if (e == 0) return sign;  // float subnormals are far below 2^-25
    const std::uint32_t m = (a & 0x7FFFFFu) | 0x800000u;
    return std::uint16_t(sign | shift_round_even(m, 126u - e));
}
inline float fp16_to_float(std::uint16_t h) {
    const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    if (e == 0x1F) return bits_float(sign | 0x7F800000u | (m << 13));  // Inf, NaN
    if (e != 0) return bits_float(sign | ((e + 112u) << 23) | (m << 13));
    // Subnormal (or zero): m 2^-24, exact in float; built from bits (a float multiply would
    // flush nothing here, but bits keep it independent of the rounding mode too).
    if (m == 0) return bits_float(sign);
    unsigned shift = 0;
    std::uint32_t mm = m;
    while (!(mm & 0x400u)) mm <<= 1, ++shift;  // normalize: m 2^-24 = 1.f 2^(-14 - shift)
    return bits_float(sign | ((113u - shift) << 23) | ((mm & 0x3FFu) << 13));
}

// e4m3fn: bias 7, no Inf; S.1111.111 is NaN; the largest finite is S.1111.110 = 448.
inline std::uint8_t fp8_e4m3_from_float(float f) {
    const std::uint32_t x = float_bits(f), a = x & 0x7FFFFFFFu;
    const std::uint8_t sign = std::uint8_t((x >> 24) & 0x80u);
    if (a > 0x7F800000u) return std::uint8_t(sign | 0x7Fu);   // NaN
    if (a >= 0x43E00000u) return std::uint8_t(sign | 0x7Eu);  // >= 448 (and Inf): saturate
    if (a >= 0x3C800000u) {                                   // normal: >= 2^-6
        const std::uint32_t r = a - (120u << 23);             // exponent bias 127 -> 7
        return std::uint8_t(sign | ((r + 0x7FFFFu + ((r >> 20) & 1u)) >> 20));
    }
    // Subnormal: units of 2^-9.
    const std::uint32_t e = a >> 23;
    if (e == 0) return sign;
    const std::uint32_t m = (a & 0x7FFFFFu) | 0x800000u;
    return std::uint8_t(sign | shift_round_even(m, 141u - e));
}
inline float fp8_e4m3_to_float(std::uint8_t b) {
    const std::uint32_t sign = std::uint32_t(b & 0x80u) << 24, e = (b >> 3) & 0xFu, m = b & 0x7u;
    if ((b & 0x7Fu) == 0x7Fu) return bits_float(sign | 0x7FC00000u);  // NaN
    if (e != 0) return bits_float(sign | ((e + 120u) << 23) | (m << 20));
    if (m == 0) return bits_float(sign);
    unsigned shift = 0;
    std::uint32_t mm = m;
    while (!(mm & 0x8u)) mm <<= 1, ++shift;  // m 2^-9 = 1.f 2^(-6 - shift)
    return bits_float(sign | ((121u - shift) << 23) | ((mm & 0x7u) << 20));
}
}  // namespace storage_detail

// bfloat16: float's sign and exponent, 7 mantissa bits.
struct bf16 {
    std::uint16_t bits;
    // cppcheck-suppress uninitMemberVar ; trivial like float: a tensor's storage is not zeroed
    bf16() = default;
    explicit bf16(float f) : bits(storage_detail::bf16_from_float(f)) {}
    operator float() const { return storage_detail::bf16_to_float(bits); }
    static bf16 from_bits(std::uint16_t b) {
        bf16 h{};
        h.bits = b;
        return h;
    }
};

// IEEE binary16: 5 exponent bits, 10 mantissa bits, largest finite 65504.
struct fp16 {
    std::uint16_t bits;
    // cppcheck-suppress uninitMemberVar ; trivial like float: a tensor's storage is not zeroed
    fp16() = default;
    explicit fp16(float f) : bits(storage_detail::fp16_from_float(f)) {}
    operator float() const { return storage_detail::fp16_to_float(bits); }
    static fp16 from_bits(std::uint16_t b) {
        fp16 h{};
        h.bits = b;
        return h;
    }
};

// OCP 8-bit float e4m3fn: 4 exponent bits, 3 mantissa bits, no Inf, largest finite 448.
struct fp8_e4m3 {
    std::uint8_t bits;
    // cppcheck-suppress uninitMemberVar ; trivial like float: a tensor's storage is not zeroed
    fp8_e4m3() = default;
    explicit fp8_e4m3(float f) : bits(storage_detail::fp8_e4m3_from_float(f)) {}
    operator float() const { return storage_detail::fp8_e4m3_to_float(bits); }
    static fp8_e4m3 from_bits(std::uint8_t b) {
        fp8_e4m3 h{};
        h.bits = b;
        return h;
    }
};

// Whether T is one of the storage types above (arithmetic happens in float).
template <class T>
constexpr bool is_storage_type = std::is_same_v<T, bf16> || std::is_same_v<T, fp16> || std::is_same_v<T, fp8_e4m3>;

// The type arithmetic on values stored as S happens in: float for the storage types, else S.
template <class S>
using compute_type_of = std::conditional_t<is_storage_type<S>, float, S>;

// x stored as S: rounded into a storage type, or x itself.
template <class S, class T>
inline S storage_cast(T x) {
    if constexpr (std::is_same_v<S, T>) return x;
    else if constexpr (is_storage_type<S>) return S(float(x));
    else return S(x);
}

}  // namespace seqmix
