#pragma once
// Helpers shared by the operator tests: random tensors, copies to double, comparisons.
#include <seqmix/core/error.hpp>
#include <seqmix/core/tensor.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include "catch.hpp"

namespace seqmix_test {

using seqmix::index_t;

template <class T, std::size_t R>
seqmix::tensor<T, R> random_tensor(const std::array<index_t, R>& shape, unsigned seed, double lo = -1,
                                   double hi = 1) {
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

// max |a - b| over max |b| (relative to the reference's largest magnitude); inf vs inf matches.
template <class A, class B, std::size_t R>
double max_rel_error(const seqmix::tensor<A, R>& a, const seqmix::tensor<B, R>& b) {
    double err = 0, mag = 0;
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
