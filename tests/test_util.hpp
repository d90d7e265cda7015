#pragma once
// Helpers shared by the operator tests: random tensors, copies to double, comparisons.
#include <seqmix/core/error.hpp>
#include <seqmix/core/storage_types.hpp>
#include <seqmix/core/tensor.hpp>

#include <algorithm>
#include <cmath>
#include <array>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <tuple>
#include <random>
#include <string>

#include "catch.hpp"

namespace seqmix_test {

using seqmix::index_t;

template <class T, std::size_t R>
seqmix::tensor<T, R> random_tensor(const std::array<index_t, R>& shape, unsigned seed, double lo = -1, double hi = 1) {
    seqmix::tensor<T, R> t(shape);
    std::mt19937_64 gen(seed);
    std::uniform_real_distribution<double> dist(lo, hi);
    for (index_t i = 0; i < t.size(); ++i) t.data()[i] = T(dist(gen));
    return t;
}

template <class U, class T, std::size_t R>
seqmix::tensor<U, R> convert(const seqmix::tensor<T, R>& t) {
    seqmix::tensor<U, R> out(t.shape());
    for (index_t i = 0; i < t.size(); ++i) out.data()[i] = U(t.data()[i]);
    return out;
}

// The accuracy contract of docs/api.md ("Accuracy"): fp32 results against the double
// reference, relative to the largest output magnitude. The recurrent operators and scans sum
// over whole chunks and states, so their bound is twice the attention operators'.
constexpr double attention_accuracy = 1e-5;
constexpr double recurrent_accuracy = 2e-5;

// max |a - b| over max |b| (relative to the reference's largest magnitude, at least `floor`:
// log-sum-exps near 0 are compared on the scale of 1); inf vs inf matches.
template <class A, class B, std::size_t R>
double max_rel_error(const seqmix::tensor<A, R>& a, const seqmix::tensor<B, R>& b, double floor = 0) {
    double err = 0, mag = floor;
    for (index_t i = 0; i < b.size(); ++i) {
        const double x = double(a.data()[i]), y = double(b.data()[i]);
        if (std::isinf(y) || std::isinf(x)) {
            if (x != y) return INFINITY;
            continue;
        }
        if (std::isnan(x) || std::isnan(y)) return INFINITY;
        err = std::max(err, std::abs(x - y));
        mag = std::max(mag, std::abs(y));
    }
    return err / std::max(mag, 1e-30);
}

template <class T, std::size_t R>
bool bitwise_equal(const seqmix::tensor<T, R>& a, const seqmix::tensor<T, R>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(T) * std::size_t(a.size())) == 0;
}

inline bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }
inline bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Element by element, any strides: the same bits (NaN payloads included).
template <class T, class U, std::size_t R>
bool bitwise_equal(const seqmix::tensor_view<T, R>& a, const seqmix::tensor_view<U, R>& b) {
    if (a.shape() != b.shape()) return false;
    bool same = true;
    std::array<seqmix::index_t, R> at{};
    for (seqmix::index_t n = 0; n < a.size() && same; ++n) {
        seqmix::index_t rest = n;
        for (std::size_t d = R; d-- > 0;) {
            at[d] = rest % a.extent(d);
            rest /= a.extent(d);
        }
        const auto x = std::apply([&](auto... i) { return a(i...); }, at);
        const auto y = std::apply([&](auto... i) { return b(i...); }, at);
        same = same_bits(x, y);
    }
    return same;
}

// The bits of a stored value: a float's, or a storage type's pattern.
template <class O>
std::uint32_t bits_of(O x) {
    if constexpr (std::is_same_v<O, float>) {
        std::uint32_t u;
        std::memcpy(&u, &x, 4);
        return u;
    } else {
        return x.bits;
    }
}

// out holds float_out rounded once into its storage type, bit for bit.
template <class O, std::size_t R>
bool stores_rounded(const seqmix::tensor<O, R>& out, const seqmix::tensor<float, R>& float_out) {
    bool same = out.size() == float_out.size();
    for (index_t i = 0; i < out.size() && same; ++i)
        same = bits_of(seqmix::storage_cast<O>(float_out.data()[i])) == bits_of(out.data()[i]);
    return same;
}

// Runs f and expects a seqmix::error whose message contains `needle`.
template <class F>
void expect_error(F&& f, const std::string& needle) {
    try {
        f();
        FAIL("expected seqmix::error mentioning " << needle);
    } catch (const seqmix::error& e) {
        INFO(e.what());
        CHECK(std::string(e.what()).find(needle) != std::string::npos);
    }
}

}  // namespace seqmix_test
