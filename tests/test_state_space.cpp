// The state-space scans: selective_scan (Mamba-1), ssd_scan (Mamba-2), causal_conv1d, their
// decode steps and the double references: one family, one executable.
#include <seqmix/ops/causal_conv1d.hpp>
#include <seqmix/ops/selective_scan.hpp>
#include <seqmix/ops/ssd_scan.hpp>
#include <seqmix/reference/state_space.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "catch.hpp"
#include "snapshot_check.hpp"
#include "test_util.hpp"

using namespace seqmix;
using namespace seqmix_test;

namespace {

// Which optional parts a case switches on.
struct extras {
    bool softplus = true, bias = true, skip = true, gate = true;
};
const extras all_extras[] = {
    {true, true, true, true}, {false, false, false, false}, {true, false, true, false}, {false, true, false, true}};

std::vector<float> random_params(index_t n, unsigned seed, double lo, double hi) {
    auto t = random_tensor<float, 1>({n}, seed, lo, hi);
    return std::vector<float>(t.data(), t.data() + n);
}

// Token t of a [Bt, N, ...] tensor as the [Bt, ...] view a decode step takes (const inputs).
template <class T, std::size_t R>
tensor_view<const T, R - 1> at_token(const tensor<T, R>& x, index_t t) {
    const auto v = x.view();
    std::array<index_t, R - 1> shape{}, strides{};
    for (std::size_t i = 0, j = 0; i < R; ++i) {
        if (i == 1) continue;
        shape[j] = v.extent(i);
        strides[j++] = v.stride(i);
    }
    return {v.ptr(0, t), shape, strides};
}
// The same, writable (the steps' outputs).
template <class T, std::size_t R>
tensor_view<T, R - 1> at_token_out(tensor<T, R>& x, index_t t) {
    const auto c = at_token(x, t);
    return {const_cast<T*>(c.data()), c.shape(), c.strides()};
}

// A view of `t` read through a permutation: the same values stored in another axis order.
// order[i] is the storage position of logical axis i (storage shape = logical shape permuted).
template <class T, std::size_t R>
struct relaid {
    tensor<T, R> storage;
    tensor_view<T, R> view;
    relaid(const tensor<T, R>& t, const std::array<std::size_t, R>& order) : storage(permuted_shape(t, order)) {
        std::array<index_t, R> strides{};
        for (std::size_t i = 0; i < R; ++i) strides[i] = storage.view().stride(order[i]);
        view = tensor_view<T, R>(storage.data(), t.shape(), strides);
        std::array<index_t, R> idx{};
        for (index_t n = 0; n < t.size(); ++n) {
            index_t off = 0, rest = n;
            for (std::size_t d = R; d-- > 0;) {
                idx[d] = rest % t.shape()[d];
                rest /= t.shape()[d];
                off += idx[d] * strides[d];
            }
            storage.data()[off] = t.data()[n];
        }
    }
    static std::array<index_t, R> permuted_shape(const tensor<T, R>& t, const std::array<std::size_t, R>& order) {
        std::array<index_t, R> s{};
        for (std::size_t i = 0; i < R; ++i) s[order[i]] = t.shape()[i];
        return s;
    }
    // Back to a logical-order tensor.
    tensor<T, R> gather() const {
        tensor<T, R> r(view.shape());
        std::array<index_t, R> idx{};
        for (index_t n = 0; n < r.size(); ++n) {
            index_t off = 0, rest = n;
            for (std::size_t d = R; d-- > 0;) {
                idx[d] = rest % view.extent(d);
                rest /= view.extent(d);
                off += idx[d] * view.stride(d);
            }
            r.data()[n] = view.data()[off];
        }
        return r;
    }
};

// ---------------------------------------------------------------- selective_scan

struct scan_shape {
    index_t Bt, N, Din, S, G;
};

template <class T>
struct scan_inputs {
    tensor<T, 3> u, delta, z, init;
    tensor<T, 2> A;
    tensor<T, 4> B, C;
    std::vector<float> D, bias;
    extras ex;
    scan_inputs(const scan_shape& s, unsigned seed, extras e, double dlo = -2, double dhi = 1, double alo = -3,
                double ahi = -0.05)
        : u(random_tensor<T, 3>({s.Bt, s.N, s.Din}, seed)),
          delta(random_tensor<T, 3>({s.Bt, s.N, s.Din}, seed + 1, e.softplus ? dlo : 0.0, e.softplus ? dhi : 0.3)),
          z(random_tensor<T, 3>({s.Bt, s.N, s.Din}, seed + 2, -3, 3)),
          init(random_tensor<T, 3>({s.Bt, s.Din, s.S}, seed + 3, -0.5, 0.5)),
          A(random_tensor<T, 2>({s.Din, s.S}, seed + 4, alo, ahi)),
          B(random_tensor<T, 4>({s.Bt, s.N, s.G, s.S}, seed + 5)),
          C(random_tensor<T, 4>({s.Bt, s.N, s.G, s.S}, seed + 6)),
          D(random_params(s.Din, seed + 7, -1, 1)),
          bias(random_params(s.Din, seed + 8, 0, 0.5)),
          ex(e) {}
    template <class U>
    selective_scan_options<U> options(const tensor<U, 3>& zv) const {
        selective_scan_options<U> o;
        o.delta_softplus = ex.softplus;
        if (ex.bias) o.delta_bias = bias.data();
        if (ex.skip) o.D = D.data();
        if (ex.gate) o.z = zv.view();
        return o;
    }
};

template <class T>
struct scan_result {
    tensor<T, 3> out, fin;
};

template <class T, class U>
scan_result<U> run_scan(const scan_inputs<T>& in, const scan_shape& s, bool reference, int threads = 1) {
    auto u = convert<U>(in.u);
    auto d = convert<U>(in.delta);
    auto z = convert<U>(in.z);
    auto init = convert<U>(in.init);
    auto A = convert<U>(in.A);
    auto B = convert<U>(in.B);
    auto C = convert<U>(in.C);
    scan_result<U> r{tensor<U, 3>({s.Bt, s.N, s.Din}), tensor<U, 3>({s.Bt, s.Din, s.S})};
    auto o = in.options(z);
    o.num_threads = threads;
    if (reference)
        seqmix::reference::selective_scan(u.view(), d.view(), A.view(), B.view(), C.view(), r.out.view(), o,
                                          init.view(), r.fin.view());
    else selective_scan(u.view(), d.view(), A.view(), B.view(), C.view(), r.out.view(), o, init.view(), r.fin.view());
    return r;
}

TEST_CASE("selective_scan: fp32 and double against the double reference at awkward sizes, every option") {
    const scan_shape shapes[] = {{1, 1, 5, 16, 1},    {2, 3, 17, 1, 1},   {1, 1000, 37, 16, 1}, {2, 100, 24, 16, 2},
                                 {1, 77, 48, 128, 3}, {1, 200, 16, 7, 4}, {1, 130, 33, 20, 1}};
    for (const auto& s : shapes)
        for (const auto& e : all_extras) {
            scan_inputs<double> in(s, 11, e);
            const auto ref = run_scan<double, double>(in, s, true);
            const auto f32 = run_scan<double, float>(in, s, false);
            const auto f64 = run_scan<double, double>(in, s, false);
            INFO("Bt " << s.Bt << " N " << s.N << " Din " << s.Din << " S " << s.S << " G " << s.G << " softplus "
                       << e.softplus << " z " << e.gate);
            CHECK(max_rel_error(f32.out, ref.out) < recurrent_accuracy);
            CHECK(max_rel_error(f32.fin, ref.fin) < recurrent_accuracy);
            CHECK(max_rel_error(f64.out, ref.out) < 1e-12);
            CHECK(max_rel_error(f64.fin, ref.fin) < 1e-12);
        }
}

TEST_CASE("selective_scan: large |delta A| underflows to 0 without NaN; delta 0 keeps the state") {
    const scan_shape s{1, 300, 20, 16, 1};
    scan_inputs<double> in(s, 21, {false, false, true, true});
    for (index_t i = 0; i < in.delta.size(); ++i)
        in.delta.data()[i] = (i / 20) % 7 == 3 ? 1e3 : (i % 5 == 0 ? 0.0 : 0.1);
    for (index_t i = 0; i < in.A.size(); ++i) in.A.data()[i] = i % 3 == 0 ? -80.0 : in.A.data()[i];
    const auto ref = run_scan<double, double>(in, s, true);
    const auto got = run_scan<double, float>(in, s, false);
    for (index_t i = 0; i < got.out.size(); ++i) REQUIRE(std::isfinite(got.out.data()[i]));
    CHECK(max_rel_error(got.out, ref.out) < recurrent_accuracy);
    CHECK(max_rel_error(got.fin, ref.fin) < recurrent_accuracy);
}

TEST_CASE("selective_scan: Mamba's channel-major [B, Din, L] views give the token-major bits") {
    for (const scan_shape& s : {scan_shape{2, 150, 37, 16, 1}, scan_shape{1, 70, 32, 5, 2}}) {
        scan_inputs<float> in(s, 31, {});
        const auto base = run_scan<float, float>(in, s, false);
        // u, delta, z, out as [Bt, Din, N]; B, C as [Bt, G, S, N]; states as [seqs, S, Din].
        relaid<float, 3> u(in.u, {0, 2, 1}), d(in.delta, {0, 2, 1}), z(in.z, {0, 2, 1});
        relaid<float, 4> B(in.B, {0, 3, 1, 2}), C(in.C, {0, 3, 1, 2});
        relaid<float, 3> init(in.init, {0, 2, 1}), out(base.out, {0, 2, 1}), fin(base.fin, {0, 2, 1});
        auto o = in.options(in.z);
        o.z = tensor_view<const float, 3>(z.view);
        for (int threads : {1, 2}) {
            o.num_threads = threads;
            selective_scan(tensor_view<const float, 3>(u.view), tensor_view<const float, 3>(d.view), in.A.view(),
                           tensor_view<const float, 4>(B.view), tensor_view<const float, 4>(C.view), out.view, o,
                           tensor_view<const float, 3>(init.view), fin.view);
            CHECK(bitwise_equal(out.gather(), base.out));
            CHECK(bitwise_equal(fin.gather(), base.fin));
        }
    }
}

TEST_CASE("selective_scan: whole == pieces (in place) == decode steps in a pool; varlen == separate calls") {
    const scan_shape s{2, 97, 37, 16, 1};
    scan_inputs<float> in(s, 41, {});
    const auto whole = run_scan<float, float>(in, s, false);
    // Pieces of 30, 1 and 66 tokens, the state carried in place.
    tensor<float, 3> out({s.Bt, s.N, s.Din}), state = convert<float>(in.init);
    auto o = in.options(in.z);
    index_t t0 = 0;
    for (index_t len : {30, 1, 66}) {
        auto piece = [&](auto& t) { return slice(t.view(), 1, t0, len); };
        auto zp = slice(in.z.view(), 1, t0, len);
        o.z = zp;
        selective_scan(piece(in.u), piece(in.delta), in.A.view(), piece(in.B), piece(in.C),
                       slice(out.view(), 1, t0, len), o, tensor_view<const float, 3>(state.view()), state.view());
        t0 += len;
    }
    CHECK(bitwise_equal(out, whole.out));  // the same recurrence per token, tiles or not
    CHECK(bitwise_equal(state, whole.fin));
    // Decode steps: batch row b in slot 3 - b of a pool of 4.
    tensor<float, 3> pool({4, s.Din, s.S}, 0.0f);
    const std::int32_t slots[] = {3, 2};
    for (index_t b = 0; b < s.Bt; ++b)
        for (index_t i = 0; i < s.Din * s.S; ++i)
            pool.data()[(3 - b) * s.Din * s.S + i] = in.init.data()[b * s.Din * s.S + i];
    tensor<float, 3> steps({s.Bt, s.N, s.Din});
    selective_scan_step_options<float> so;
    so.D = in.D.data();
    so.delta_bias = in.bias.data();
    so.delta_softplus = true;
    so.state_indices = slots;
    for (index_t t = 0; t < s.N; ++t) {
        so.z = at_token(in.z, t);
        selective_scan_step(at_token(in.u, t), at_token(in.delta, t), in.A.view(), at_token(in.B, t), at_token(in.C, t),
                            at_token_out(steps, t), pool.view(), so);
    }
    CHECK(max_rel_error(steps, whole.out) < 1e-5);
    for (index_t b = 0; b < s.Bt; ++b)
        for (index_t i = 0; i < s.Din * s.S; ++i)
            REQUIRE(std::abs(pool.data()[(3 - b) * s.Din * s.S + i] - whole.fin.data()[b * s.Din * s.S + i]) < 1e-4);
    // Varlen: the two batch rows packed as sequences of 97 and 97 tokens, plus an empty one.
    const std::int32_t cu[] = {0, 97, 97, 194};
    tensor<float, 3> pu({1, 194, s.Din}), pd({1, 194, s.Din}), pz({1, 194, s.Din}), pout({1, 194, s.Din});
    tensor<float, 4> pB({1, 194, 1, s.S}), pC({1, 194, 1, s.S});
    tensor<float, 3> pinit({3, s.Din, s.S}, 0.0f), pfin({3, s.Din, s.S});
    std::copy(in.u.data(), in.u.data() + in.u.size(), pu.data());
    std::copy(in.delta.data(), in.delta.data() + in.delta.size(), pd.data());
    std::copy(in.z.data(), in.z.data() + in.z.size(), pz.data());
    std::copy(in.B.data(), in.B.data() + in.B.size(), pB.data());
    std::copy(in.C.data(), in.C.data() + in.C.size(), pC.data());
    std::copy(in.init.data(), in.init.data() + s.Din * s.S, pinit.data());
    std::copy(in.init.data() + s.Din * s.S, in.init.data() + 2 * s.Din * s.S, pinit.data() + 2 * s.Din * s.S);
    auto vo = in.options(pz);
    vo.cu_seqlens = cu;
    vo.num_seqs = 3;
    for (int threads : {1, 3}) {
        vo.num_threads = threads;
        selective_scan(pu.view(), pd.view(), in.A.view(), pB.view(), pC.view(), pout.view(), vo, pinit.view(),
                       pfin.view());
        CHECK(std::memcmp(pout.data(), whole.out.data(), sizeof(float) * std::size_t(whole.out.size())) == 0);
        CHECK(std::memcmp(pfin.data(), whole.fin.data(), sizeof(float) * std::size_t(s.Din * s.S)) == 0);
        CHECK(std::memcmp(pfin.data() + 2 * s.Din * s.S, whole.fin.data() + s.Din * s.S,
                          sizeof(float) * std::size_t(s.Din * s.S)) == 0);
        for (index_t i = 0; i < s.Din * s.S; ++i) REQUIRE(pfin.data()[s.Din * s.S + i] == 0.0f);  // empty: zero state
    }
}

TEST_CASE("selective_scan: bitwise identical for 1, 2, 3 and 5 threads") {
    for (const scan_shape& s : {scan_shape{1, 300, 40, 16, 2}, scan_shape{3, 50, 16, 4, 1}}) {
        scan_inputs<float> in(s, 51, {});
        const auto base = run_scan<float, float>(in, s, false, 1);
        for (int threads : {2, 3, 5}) {
            const auto r = run_scan<float, float>(in, s, false, threads);
            CHECK(bitwise_equal(r.out, base.out));
            CHECK(bitwise_equal(r.fin, base.fin));
        }
    }
}

TEST_CASE("selective_scan over N = 32768: fp32 within 1e-5 of the double reference") {
    const scan_shape s{1, 32768, 20, 16, 1};
    scan_inputs<double> in(s, 61, {true, true, true, false});
    const auto ref = run_scan<double, double>(in, s, true);
    const auto got = run_scan<double, float>(in, s, false);
    const double e = std::max(max_rel_error(got.out, ref.out), max_rel_error(got.fin, ref.fin));
    WARN("selective_scan N = 32768: fp32 error " << e);
    CHECK(e < 1e-5);
}

// ---------------------------------------------------------------- ssd_scan

struct ssd_shape {
    index_t Bt, N, H, P, S, G;
};

template <class T>
struct ssd_inputs {
    tensor<T, 4> x, z, B, C, init;
    tensor<T, 3> dt;
    tensor<T, 1> A;
    std::vector<float> D, bias;
    extras ex;
    ssd_inputs(const ssd_shape& s, unsigned seed, extras e)
        : x(random_tensor<T, 4>({s.Bt, s.N, s.H, s.P}, seed)),
          z(random_tensor<T, 4>({s.Bt, s.N, s.H, s.P}, seed + 1, -3, 3)),
          B(random_tensor<T, 4>({s.Bt, s.N, s.G, s.S}, seed + 2)),
          C(random_tensor<T, 4>({s.Bt, s.N, s.G, s.S}, seed + 3)),
          init(random_tensor<T, 4>({s.Bt, s.H, s.P, s.S}, seed + 4, -0.5, 0.5)),
          dt(random_tensor<T, 3>({s.Bt, s.N, s.H}, seed + 5, e.softplus ? -4 : 0, e.softplus ? 1 : 0.3)),
          A(random_tensor<T, 1>({s.H}, seed + 6, -3, -0.05)),
          D(random_params(s.H, seed + 7, -1, 1)),
          bias(random_params(s.H, seed + 8, 0, 0.5)),
          ex(e) {}
    template <class U>
    ssd_options<U> options(const tensor<U, 4>& zv) const {
        ssd_options<U> o;
        o.dt_softplus = ex.softplus;
        if (ex.bias) o.dt_bias = bias.data();
        if (ex.skip) o.D = D.data();
        if (ex.gate) o.z = zv.view();
        return o;
    }
};

template <class T>
struct ssd_result {
    tensor<T, 4> out, fin;
};

template <class T, class U>
ssd_result<U> run_ssd(const ssd_inputs<T>& in, const ssd_shape& s, bool reference, int threads = 1, int chunk = 0) {
    auto x = convert<U>(in.x);
    auto z = convert<U>(in.z);
    auto B = convert<U>(in.B);
    auto C = convert<U>(in.C);
    auto init = convert<U>(in.init);
    auto dt = convert<U>(in.dt);
    auto A = convert<U>(in.A);
    ssd_result<U> r{tensor<U, 4>({s.Bt, s.N, s.H, s.P}), tensor<U, 4>({s.Bt, s.H, s.P, s.S})};
    auto o = in.options(z);
    o.num_threads = threads;
    o.chunk_size = chunk;
    if (reference)
        seqmix::reference::ssd_scan(x.view(), dt.view(), A.view(), B.view(), C.view(), r.out.view(), o, init.view(),
                                    r.fin.view());
    else ssd_scan(x.view(), dt.view(), A.view(), B.view(), C.view(), r.out.view(), o, init.view(), r.fin.view());
    return r;
}

TEST_CASE("ssd_scan: fp32 and double against the double reference at awkward sizes, every option") {
    const ssd_shape shapes[] = {{1, 1, 2, 8, 16, 1},    {2, 3, 3, 5, 1, 1},     {1, 1000, 2, 16, 16, 2},
                                {2, 100, 4, 19, 32, 2}, {1, 77, 2, 64, 128, 1}, {1, 130, 6, 7, 20, 3}};
    for (const auto& s : shapes)
        for (const auto& e : all_extras) {
            ssd_inputs<double> in(s, 71, e);
            const auto ref = run_ssd<double, double>(in, s, true);
            const auto f32 = run_ssd<double, float>(in, s, false);
            const auto f64 = run_ssd<double, double>(in, s, false);
            INFO("Bt " << s.Bt << " N " << s.N << " H " << s.H << " P " << s.P << " S " << s.S << " G " << s.G
                       << " softplus " << e.softplus << " z " << e.gate);
            CHECK(max_rel_error(f32.out, ref.out) < recurrent_accuracy);
            CHECK(max_rel_error(f32.fin, ref.fin) < recurrent_accuracy);
            CHECK(max_rel_error(f64.out, ref.out) < 1e-12);
            CHECK(max_rel_error(f64.fin, ref.fin) < 1e-12);
        }
}

TEST_CASE("ssd_scan: any chunk_size, and large |dt A| (underflow to 0, no NaN)") {
    const ssd_shape s{1, 200, 2, 16, 24, 1};
    ssd_inputs<double> in(s, 81, {false, false, true, true});
    for (index_t i = 0; i < in.dt.size(); ++i) in.dt.data()[i] = (i / 2) % 9 == 4 ? 1e3 : (i % 7 == 0 ? 0.0 : 0.2);
    in.A.data()[0] = -80;
    const auto ref = run_ssd<double, double>(in, s, true);
    for (int chunk : {1, 2, 7, 16, 64, 256}) {
        const auto got = run_ssd<double, float>(in, s, false, 1, chunk);
        INFO("chunk " << chunk);
        for (index_t i = 0; i < got.out.size(); ++i) REQUIRE(std::isfinite(got.out.data()[i]));
        CHECK(max_rel_error(got.out, ref.out) < recurrent_accuracy);
        CHECK(max_rel_error(got.fin, ref.fin) < recurrent_accuracy);
    }
}

TEST_CASE("ssd_scan: whole == pieces (in place) == decode steps; varlen == separate calls; threads bitwise") {
    const ssd_shape s{2, 90, 4, 24, 32, 2};
    ssd_inputs<float> in(s, 91, {});
    const auto whole = run_ssd<float, float>(in, s, false);
    tensor<float, 4> out({s.Bt, s.N, s.H, s.P}), state = convert<float>(in.init);
    auto o = in.options(in.z);
    index_t t0 = 0;
    for (index_t len : {30, 1, 59}) {
        auto piece = [&](auto& t) { return slice(t.view(), 1, t0, len); };
        o.z = slice(in.z.view(), 1, t0, len);
        ssd_scan(piece(in.x), slice(in.dt.view(), 1, t0, len), in.A.view(), piece(in.B), piece(in.C),
                 slice(out.view(), 1, t0, len), o, tensor_view<const float, 4>(state.view()), state.view());
        t0 += len;
    }
    CHECK(max_rel_error(out, whole.out) < 1e-5);
    CHECK(max_rel_error(state, whole.fin) < 1e-5);
    // Decode steps into a pool: row b uses slot 2b + 1 of 5.
    const index_t per = s.H * s.P * s.S;
    tensor<float, 4> pool({5, s.H, s.P, s.S}, 0.0f);
    const std::int32_t slots[] = {1, 3};
    for (index_t b = 0; b < s.Bt; ++b)
        std::copy(in.init.data() + b * per, in.init.data() + (b + 1) * per, pool.data() + slots[b] * per);
    tensor<float, 4> steps({s.Bt, s.N, s.H, s.P});
    ssd_step_options<float> so;
    so.D = in.D.data();
    so.dt_bias = in.bias.data();
    so.dt_softplus = true;
    so.state_indices = slots;
    for (index_t t = 0; t < s.N; ++t) {
        so.z = at_token(in.z, t);
        ssd_step(at_token(in.x, t), at_token(in.dt, t), in.A.view(), at_token(in.B, t), at_token(in.C, t),
                 at_token_out(steps, t), pool.view(), so);
    }
    CHECK(max_rel_error(steps, whole.out) < 1e-5);
    for (index_t b = 0; b < s.Bt; ++b)
        for (index_t i = 0; i < per; ++i)
            REQUIRE(std::abs(pool.data()[slots[b] * per + i] - whole.fin.data()[b * per + i]) < 1e-4);
    // Varlen.
    const std::int32_t cu[] = {0, 90, 180};
    tensor<float, 4> px({1, 180, s.H, s.P}), pz({1, 180, s.H, s.P}), pB({1, 180, s.G, s.S}), pC({1, 180, s.G, s.S});
    tensor<float, 3> pdt({1, 180, s.H});
    tensor<float, 4> pout({1, 180, s.H, s.P}), pfin({2, s.H, s.P, s.S});
    std::copy(in.x.data(), in.x.data() + in.x.size(), px.data());
    std::copy(in.z.data(), in.z.data() + in.z.size(), pz.data());
    std::copy(in.B.data(), in.B.data() + in.B.size(), pB.data());
    std::copy(in.C.data(), in.C.data() + in.C.size(), pC.data());
    std::copy(in.dt.data(), in.dt.data() + in.dt.size(), pdt.data());
    auto vo = in.options(pz);
    vo.cu_seqlens = cu;
    vo.num_seqs = 2;
    for (int threads : {1, 2, 3, 5}) {
        vo.num_threads = threads;
        ssd_scan(px.view(), pdt.view(), in.A.view(), pB.view(), pC.view(), pout.view(), vo, in.init.view(),
                 pfin.view());
        CHECK(std::memcmp(pout.data(), whole.out.data(), sizeof(float) * std::size_t(whole.out.size())) == 0);
        CHECK(bitwise_equal(pfin, whole.fin));
        const auto r = run_ssd<float, float>(in, s, false, threads);
        CHECK(bitwise_equal(r.out, whole.out));
        CHECK(bitwise_equal(r.fin, whole.fin));
    }
    // One sequence, one head: the value split and the segments schedules.
    const ssd_shape one{1, 700, 1, 64, 32, 1};
    ssd_inputs<float> in1(one, 92, {});
    const auto base = run_ssd<float, float>(in1, one, false, 1);
    for (int threads : {2, 3, 5}) {
        const auto r = run_ssd<float, float>(in1, one, false, threads);
        CHECK(bitwise_equal(r.out, base.out));
        CHECK(bitwise_equal(r.fin, base.fin));
    }
}

TEST_CASE("ssd_scan over N = 32768: fp32 within 1e-5 of the double reference") {
    const ssd_shape s{1, 32768, 2, 16, 32, 1};
    ssd_inputs<double> in(s, 101, {true, true, true, false});
    const auto ref = run_ssd<double, double>(in, s, true);
    const auto got = run_ssd<double, float>(in, s, false);
    const double e = std::max(max_rel_error(got.out, ref.out), max_rel_error(got.fin, ref.fin));
    WARN("ssd_scan N = 32768: fp32 error " << e);
    CHECK(e < 1e-5);
}

// ---------------------------------------------------------------- causal_conv1d

template <class T>
struct conv_inputs {
    tensor<T, 3> x, init;
    tensor<T, 2> w;
    std::vector<float> bias;
    conv_inputs(index_t Bt, index_t N, index_t C, index_t W, unsigned seed)
        : x(random_tensor<T, 3>({Bt, N, C}, seed)),
          init(random_tensor<T, 3>({Bt, C, W - 1}, seed + 1)),
          w(random_tensor<T, 2>({C, W}, seed + 2)),
          bias(random_params(C, seed + 3, -1, 1)) {}
};

TEST_CASE("causal_conv1d: against the double reference, widths 1 to 8, states, bias and silu") {
    for (index_t W : {1, 2, 3, 4, 5, 8})
        for (index_t N : {1, 2, 3, 70, 1000})
            for (index_t C : {1, 17, 64, 100}) {
                conv_inputs<double> in(2, N, C, W, unsigned(W * 100 + N + C));
                for (int variant = 0; variant < 3; ++variant) {
                    conv1d_options o;
                    if (variant != 1) o.bias = in.bias.data();
                    o.activation = variant == 2 ? activation::none : activation::silu;
                    const bool with_state = variant != 2;
                    tensor<double, 3> ref({2, N, C}), ref_fin({2, C, W - 1}), f64({2, N, C}), fin64({2, C, W - 1});
                    tensor<float, 3> f32({2, N, C}), fin32({2, C, W - 1});
                    auto x32 = convert<float>(in.x);
                    auto i32 = convert<float>(in.init);
                    auto w32 = convert<float>(in.w);
                    auto init =
                        with_state ? tensor_view<const double, 3>(in.init.view()) : tensor_view<const double, 3>();
                    auto init32 = with_state ? tensor_view<const float, 3>(i32.view()) : tensor_view<const float, 3>();
                    seqmix::reference::causal_conv1d(in.x.view(), in.w.view(), ref.view(), o, init, ref_fin.view());
                    causal_conv1d(in.x.view(), in.w.view(), f64.view(), o, init, fin64.view());
                    causal_conv1d(x32.view(), w32.view(), f32.view(), o, init32, fin32.view());
                    INFO("W " << W << " N " << N << " C " << C << " variant " << variant);
                    CHECK(max_rel_error(f64, ref) < 1e-14);
                    CHECK(max_rel_error(f32, ref) < 1e-6);
                    CHECK(bitwise_equal(fin64, ref_fin));  // the state is the inputs, copied
                }
            }
}

TEST_CASE("causal_conv1d: pieces == whole == steps; varlen; channel-major; threads bitwise") {
    const index_t Bt = 2, N = 150, C = 100, W = 4;
    conv_inputs<float> in(Bt, N, C, W, 111);
    conv1d_options o;
    o.bias = in.bias.data();
    o.activation = activation::silu;
    tensor<float, 3> whole({Bt, N, C}), fin({Bt, C, W - 1});
    causal_conv1d(in.x.view(), in.w.view(), whole.view(), o, in.init.view(), fin.view());
    // Pieces of 2, 1, 147 tokens with the state in place (shorter than the window, too).
    tensor<float, 3> out({Bt, N, C}), state = convert<float>(in.init);
    index_t t0 = 0;
    for (index_t len : {2, 1, 147}) {
        causal_conv1d(slice(in.x.view(), 1, t0, len), in.w.view(), slice(out.view(), 1, t0, len), o,
                      tensor_view<const float, 3>(state.view()), state.view());
        t0 += len;
    }
    CHECK(bitwise_equal(out, whole));
    CHECK(bitwise_equal(state, fin));
    // Steps: a pool of 4 slots, rows in slots 2 and 0.
    tensor<float, 3> pool({4, C, W - 1}, 0.0f), steps({Bt, N, C});
    const std::int32_t slots[] = {2, 0};
    for (index_t b = 0; b < Bt; ++b)
        std::copy(in.init.data() + b * C * (W - 1), in.init.data() + (b + 1) * C * (W - 1),
                  pool.data() + slots[b] * C * (W - 1));
    conv1d_step_options so;
    so.bias = in.bias.data();
    so.activation = activation::silu;
    so.state_indices = slots;
    for (index_t t = 0; t < N; ++t) {
        causal_conv1d_step(at_token(in.x, t), in.w.view(), at_token_out(steps, t), pool.view(), so);
    }
    CHECK(bitwise_equal(steps, whole));  // the same sum in the same order, the same silu
    for (index_t b = 0; b < Bt; ++b)
        for (index_t i = 0; i < C * (W - 1); ++i)
            REQUIRE(pool.data()[slots[b] * C * (W - 1) + i] == fin.data()[b * C * (W - 1) + i]);
    // Varlen: both rows packed, each from its own state row.
    const std::int32_t cu[] = {0, 150, 300};
    tensor<float, 3> px({1, 300, C}), pout({1, 300, C}), pfin({2, C, W - 1});
    std::copy(in.x.data(), in.x.data() + in.x.size(), px.data());
    conv1d_options vo = o;
    vo.cu_seqlens = cu;
    vo.num_seqs = 2;
    causal_conv1d(px.view(), in.w.view(), pout.view(), vo, in.init.view(), pfin.view());
    CHECK(std::memcmp(pout.data(), whole.data(), sizeof(float) * std::size_t(whole.size())) == 0);
    CHECK(bitwise_equal(pfin, fin));
    // Channels two apart (neither axis unit-stride): the packed path, the same bits.
    tensor<float, 3> wide({Bt, N, 2 * C}), wide_out({Bt, N, 2 * C}, 0.0f);
    for (index_t i = 0; i < in.x.size(); ++i) wide.data()[2 * i] = in.x.data()[i];
    const tensor_view<const float, 3> xs(wide.data(), {Bt, N, C}, {N * 2 * C, 2 * C, 2});
    const tensor_view<float, 3> ys(wide_out.data(), {Bt, N, C}, {N * 2 * C, 2 * C, 2});
    tensor<float, 3> fin2({Bt, C, W - 1});
    causal_conv1d(xs, in.w.view(), ys, o, in.init.view(), fin2.view());
    for (index_t i = 0; i < whole.size(); ++i) REQUIRE(wide_out.data()[2 * i] == whole.data()[i]);
    CHECK(bitwise_equal(fin2, fin));
    // Channel-major x and out ([B, C, L], causal-conv1d's own layout) and threads.
    relaid<float, 3> xc(in.x, {0, 2, 1}), oc(whole, {0, 2, 1});
    for (int threads : {1, 2, 3, 5}) {
        o.num_threads = threads;
        causal_conv1d(tensor_view<const float, 3>(xc.view), in.w.view(), oc.view, o, in.init.view(), fin.view());
        CHECK(bitwise_equal(oc.gather(), whole));
        tensor<float, 3> again({Bt, N, C});
        causal_conv1d(in.x.view(), in.w.view(), again.view(), o, in.init.view(), fin.view());
        CHECK(bitwise_equal(again, whole));
    }
}

// ---------------------------------------------------------------- bad inputs

TEST_CASE("state-space scans: bad inputs give seqmix::error naming the argument, nothing written") {
    const scan_shape s{1, 20, 8, 4, 2};
    scan_inputs<float> in(s, 121, {});
    tensor<float, 3> out({1, 20, 8}, 5.0f), fin({1, 8, 4}, 5.0f);
    auto o = in.options(in.z);
    auto untouched = [&] {
        for (index_t i = 0; i < out.size(); ++i) REQUIRE(out.data()[i] == 5.0f);
        for (index_t i = 0; i < fin.size(); ++i) REQUIRE(fin.data()[i] == 5.0f);
    };
    auto scan = [&](auto&&... a) { return [&] { selective_scan(a...); }; };
    tensor<float, 2> A_bad({8, 5});
    expect_error(scan(in.u.view(), in.delta.view(), A_bad.view(), in.B.view(), in.C.view(), out.view(), o,
                      in.init.view(), fin.view()),
                 "'B'");
    tensor<float, 4> B3({1, 20, 3, 4});
    expect_error(scan(in.u.view(), in.delta.view(), in.A.view(), B3.view(), in.C.view(), out.view(), o, in.init.view(),
                      fin.view()),
                 "divides the 8 channels");
    auto A_nan = convert<float>(in.A);
    A_nan.data()[5] = std::nanf("");
    expect_error(scan(in.u.view(), in.delta.view(), A_nan.view(), in.B.view(), in.C.view(), out.view(), o,
                      in.init.view(), fin.view()),
                 "'A'");
    std::vector<float> D_inf(8, 1.0f);
    D_inf[3] = INFINITY;
    auto o2 = o;
    o2.D = D_inf.data();
    expect_error(scan(in.u.view(), in.delta.view(), in.A.view(), in.B.view(), in.C.view(), out.view(), o2,
                      in.init.view(), fin.view()),
                 "D[3]");
    tensor<float, 3> z_bad({1, 19, 8});
    o2 = o;
    o2.z = z_bad.view();
    expect_error(scan(in.u.view(), in.delta.view(), in.A.view(), in.B.view(), in.C.view(), out.view(), o2,
                      in.init.view(), fin.view()),
                 "'z'");
    tensor<float, 3> st_bad({1, 8, 5});
    expect_error(scan(in.u.view(), in.delta.view(), in.A.view(), in.B.view(), in.C.view(), out.view(), o, st_bad.view(),
                      fin.view()),
                 "'initial_state'");
    expect_error(
        scan(in.u.view(), in.delta.view(), in.A.view(), in.B.view(), in.C.view(),
             tensor_view<float, 3>(const_cast<float*>(in.u.data()), {1, 20, 8}), o, in.init.view(), fin.view()),
        "'out'");
    const std::int32_t cu_bad[] = {0, 12, 10};
    o2 = o;
    o2.cu_seqlens = cu_bad;
    o2.num_seqs = 2;
    expect_error(scan(in.u.view(), in.delta.view(), in.A.view(), in.B.view(), in.C.view(), out.view(), o2,
                      tensor_view<const float, 3>(), tensor_view<float, 3>()),
                 "'cu_seqlens'");
    untouched();

    // ssd_scan: A > 0, negative steps without softplus, NaN steps.
    const ssd_shape ss{1, 20, 2, 8, 4, 1};
    ssd_inputs<float> si(ss, 122, {false, false, false, false});
    tensor<float, 4> sout({1, 20, 2, 8}, 5.0f);
    auto so = si.options(si.z);
    auto ssd = [&](auto&&... a) { return [&] { ssd_scan(a...); }; };
    auto A_pos = convert<float>(si.A);
    A_pos.data()[1] = 0.5f;
    expect_error(ssd(si.x.view(), si.dt.view(), A_pos.view(), si.B.view(), si.C.view(), sout.view(), so),
                 "A = -exp(A_log)");
    auto dt_neg = convert<float>(si.dt);
    dt_neg.data()[7] = -0.5f;
    expect_error(ssd(si.x.view(), dt_neg.view(), si.A.view(), si.B.view(), si.C.view(), sout.view(), so),
                 "dt + dt_bias >= 0");
    so.dt_softplus = true;  // with softplus a negative dt is fine, NaN is not
    CHECK_NOTHROW(ssd_scan(si.x.view(), dt_neg.view(), si.A.view(), si.B.view(), si.C.view(), sout.view(), so));
    dt_neg.data()[3] = std::nanf("");
    tensor<float, 4> sout2({1, 20, 2, 8}, 5.0f);
    expect_error(ssd(si.x.view(), dt_neg.view(), si.A.view(), si.B.view(), si.C.view(), sout2.view(), so), "'dt'");
    for (index_t i = 0; i < sout2.size(); ++i) REQUIRE(sout2.data()[i] == 5.0f);
    tensor<float, 4> C_bad({1, 20, 1, 5});
    expect_error(ssd(si.x.view(), si.dt.view(), si.A.view(), si.B.view(), C_bad.view(), sout2.view(), so), "'C'");
    so.chunk_size = 5000;
    expect_error(ssd(si.x.view(), si.dt.view(), si.A.view(), si.B.view(), si.C.view(), sout2.view(), so),
                 "'chunk_size'");

    // causal_conv1d: weight shape, state shape, activation, x aliasing out.
    conv_inputs<float> ci(1, 10, 6, 4, 123);
    tensor<float, 3> cout({1, 10, 6}, 5.0f);
    auto conv = [&](auto&&... a) { return [&] { causal_conv1d(a...); }; };
    tensor<float, 2> w_bad({5, 4});
    expect_error(conv(ci.x.view(), w_bad.view(), cout.view()), "'weight'");
    tensor<float, 3> cst_bad({1, 6, 4});
    expect_error(conv(ci.x.view(), ci.w.view(), cout.view(), conv1d_options{}, cst_bad.view()), "'initial_state'");
    conv1d_options co;
    co.activation = static_cast<activation>(7);
    expect_error(conv(ci.x.view(), ci.w.view(), cout.view(), co), "'activation'");
    expect_error(conv(ci.x.view(), ci.w.view(), tensor_view<float, 3>(const_cast<float*>(ci.x.data()), {1, 10, 6})),
                 "'out'");
    for (index_t i = 0; i < cout.size(); ++i) REQUIRE(cout.data()[i] == 5.0f);

    // Steps: a pool with a duplicate slot, a wrong pool shape.
    tensor<float, 3> pool({3, 8, 4}, 1.0f);
    tensor<float, 2> u1({2, 8}, 0.1f), d1({2, 8}, 0.1f), y1({2, 8}, 5.0f);
    tensor<float, 3> B1({2, 2, 4}, 0.1f), C1({2, 2, 4}, 0.1f);
    selective_scan_step_options<float> sso;
    const std::int32_t dup[] = {1, 1};
    sso.state_indices = dup;
    expect_error(
        [&] {
            selective_scan_step(u1.view(), d1.view(), in.A.view(), B1.view(), C1.view(), y1.view(), pool.view(), sso);
        },
        "distinct slots");
    tensor<float, 3> pool_bad({3, 8, 5});
    sso.state_indices = nullptr;
    expect_error(
        [&] {
            selective_scan_step(u1.view(), d1.view(), in.A.view(), B1.view(), C1.view(), y1.view(), pool_bad.view(),
                                sso);
        },
        "'state'");
    for (index_t i = 0; i < y1.size(); ++i) REQUIRE(y1.data()[i] == 5.0f);
    for (index_t i = 0; i < pool.size(); ++i) REQUIRE(pool.data()[i] == 1.0f);
}

}  // namespace

// ---------------------------------------------------------------- 16-bit storage

namespace {

// selective_scan with u, delta, z, B, C stored as In (A float, as Mamba keeps it), out as O,
// states as S: the float operator's bits on the same values, rounded once (3 threads against 1,
// token-major and channel-major); decode steps on an S pool: the float step with its state
// rounded into S after every token.
template <class In, class O, class S>
void check_stored_scan(const char* name) {
    INFO(name);
    const scan_shape s{2, 70, 40, 16, 2};  // Din not a multiple of the vector width
    const scan_inputs<float> in0(s, 91, {});
    const auto u = convert<In>(in0.u);
    const auto d = convert<In>(in0.delta);
    const auto z = convert<In>(in0.z);
    const auto B = convert<In>(in0.B);
    const auto C = convert<In>(in0.C);
    const auto init = convert<S>(in0.init);
    const auto uf = convert<float>(u);
    const auto df = convert<float>(d);
    const auto zf = convert<float>(z);
    const auto Bf = convert<float>(B);
    const auto Cf = convert<float>(C);
    const auto initf = convert<float>(init);
    auto of = in0.options(zf);
    of.num_threads = 1;
    tensor<float, 3> yf({s.Bt, s.N, s.Din}), ff({s.Bt, s.Din, s.S});
    selective_scan(uf.view(), df.view(), in0.A.view(), Bf.view(), Cf.view(), yf.view(), of, initf.view(), ff.view());
    auto os = in0.options(z);
    os.num_threads = 3;
    tensor<O, 3> ys({s.Bt, s.N, s.Din});
    tensor<S, 3> fs({s.Bt, s.Din, s.S});
    selective_scan(u.view(), d.view(), in0.A.view(), B.view(), C.view(), ys.view(), os, init.view(), fs.view());
    CHECK(stores_rounded(ys, yf));
    CHECK(stores_rounded(fs, ff));
    // Channel-major u and out (Mamba's [B, Din, L]): the same bits.
    const relaid<In, 3> uc(u, {0, 2, 1});
    relaid<O, 3> yc(tensor<O, 3>({s.Bt, s.N, s.Din}), {0, 2, 1});
    selective_scan(tensor_view<const In, 3>(uc.view), d.view(), in0.A.view(), B.view(), C.view(), yc.view, os,
                   init.view(), fs.view());
    CHECK(bitwise_equal(yc.gather(), ys));
    // Decode steps, rows in slots 1 and 0 of a pool of 2.
    tensor<S, 3> pool({2, s.Din, s.S});
    tensor<float, 3> poolf({2, s.Din, s.S});
    for (index_t b = 0; b < s.Bt; ++b)
        for (index_t i = 0; i < s.Din * s.S; ++i) {
            pool.data()[(1 - b) * s.Din * s.S + i] = init.data()[b * s.Din * s.S + i];
            poolf.data()[(1 - b) * s.Din * s.S + i] = initf.data()[b * s.Din * s.S + i];
        }
    const std::int32_t slots[] = {1, 0};
    for (index_t t = 0; t < 6; ++t) {
        selective_scan_step_options<In> so;
        so.D = in0.D.data();
        so.delta_bias = in0.bias.data();
        so.delta_softplus = true;
        so.state_indices = slots;
        so.z = at_token(z, t);
        selective_scan_step_options<float> sf;
        sf.D = so.D;
        sf.delta_bias = so.delta_bias;
        sf.delta_softplus = true;
        sf.state_indices = slots;
        sf.z = at_token(zf, t);
        tensor<O, 2> o_s({s.Bt, s.Din});
        tensor<float, 2> o_f({s.Bt, s.Din});
        selective_scan_step(at_token(u, t), at_token(d, t), in0.A.view(), at_token(B, t), at_token(C, t), o_s.view(),
                            pool.view(), so);
        selective_scan_step(at_token(uf, t), at_token(df, t), in0.A.view(), at_token(Bf, t), at_token(Cf, t),
                            o_f.view(), poolf.view(), sf);
        CHECK(stores_rounded(o_s, o_f));
        CHECK(stores_rounded(pool, poolf));
        poolf = convert<float>(convert<S>(poolf));
    }
}

// ssd_scan with x, z, B, C stored as In (dt, A float), out as O, states as S: as above.
template <class In, class O, class S>
void check_stored_ssd(const char* name) {
    INFO(name);
    const ssd_shape s{2, 70, 4, 24, 32, 2};  // P not a multiple of the vector width
    const ssd_inputs<float> in0(s, 93, {});
    const auto x = convert<In>(in0.x);
    const auto z = convert<In>(in0.z);
    const auto B = convert<In>(in0.B);
    const auto C = convert<In>(in0.C);
    const auto init = convert<S>(in0.init);
    const auto xf = convert<float>(x), zf = convert<float>(z), Bf = convert<float>(B), Cf = convert<float>(C),
               initf = convert<float>(init);
    auto of = in0.options(zf);
    of.num_threads = 1;
    tensor<float, 4> yf({s.Bt, s.N, s.H, s.P}), ff({s.Bt, s.H, s.P, s.S});
    ssd_scan(xf.view(), in0.dt.view(), in0.A.view(), Bf.view(), Cf.view(), yf.view(), of, initf.view(), ff.view());
    auto os = in0.options(z);
    os.num_threads = 3;
    tensor<O, 4> ys({s.Bt, s.N, s.H, s.P});
    tensor<S, 4> fs({s.Bt, s.H, s.P, s.S});
    ssd_scan(x.view(), in0.dt.view(), in0.A.view(), B.view(), C.view(), ys.view(), os, init.view(), fs.view());
    CHECK(stores_rounded(ys, yf));
    CHECK(stores_rounded(fs, ff));
    tensor<S, 4> pool = convert<S>(init);
    tensor<float, 4> poolf = convert<float>(initf);
    for (index_t t = 0; t < 6; ++t) {
        ssd_step_options<In> so;
        so.D = in0.D.data();
        so.dt_bias = in0.bias.data();
        so.dt_softplus = true;
        so.z = at_token(z, t);
        ssd_step_options<float> sf;
        sf.D = so.D;
        sf.dt_bias = so.dt_bias;
        sf.dt_softplus = true;
        sf.z = at_token(zf, t);
        tensor<O, 3> o_s({s.Bt, s.H, s.P});
        tensor<float, 3> o_f({s.Bt, s.H, s.P});
        ssd_step(at_token(x, t), at_token(in0.dt, t), in0.A.view(), at_token(B, t), at_token(C, t), o_s.view(),
                 pool.view(), so);
        ssd_step(at_token(xf, t), at_token(in0.dt, t), in0.A.view(), at_token(Bf, t), at_token(Cf, t), o_f.view(),
                 poolf.view(), sf);
        CHECK(stores_rounded(o_s, o_f));
        CHECK(stores_rounded(pool, poolf));
        poolf = convert<float>(convert<S>(poolf));
    }
}

// causal_conv1d with x and weight stored as In, out as O, states as S: as above, token-major
// and channel-major.
template <class In, class O, class S>
void check_stored_conv(const char* name) {
    INFO(name);
    const index_t Bt = 2, N = 70, Ch = 40, W = 4;
    const conv_inputs<float> in0(Bt, N, Ch, W, 95);
    const auto x = convert<In>(in0.x);
    const auto w = convert<In>(in0.w);
    const auto init = convert<S>(in0.init);
    const auto xf = convert<float>(x);
    const auto wf = convert<float>(w);
    const auto initf = convert<float>(init);
    conv1d_options o;
    o.bias = in0.bias.data();
    o.activation = activation::silu;
    o.num_threads = 1;
    tensor<float, 3> yf({Bt, N, Ch}), ff({Bt, Ch, W - 1});
    causal_conv1d(xf.view(), wf.view(), yf.view(), o, initf.view(), ff.view());
    o.num_threads = 3;
    tensor<O, 3> ys({Bt, N, Ch});
    tensor<S, 3> fs({Bt, Ch, W - 1});
    causal_conv1d(x.view(), w.view(), ys.view(), o, init.view(), fs.view());
    CHECK(stores_rounded(ys, yf));
    CHECK(stores_rounded(fs, ff));
    const relaid<In, 3> xc(x, {0, 2, 1});
    relaid<O, 3> yc(tensor<O, 3>({Bt, N, Ch}), {0, 2, 1});
    causal_conv1d(tensor_view<const In, 3>(xc.view), w.view(), yc.view, o, init.view());
    CHECK(bitwise_equal(yc.gather(), ys));
    tensor<S, 3> pool = convert<S>(init);
    tensor<float, 3> poolf = convert<float>(initf);
    conv1d_step_options so;
    so.bias = o.bias;
    so.activation = activation::silu;
    for (index_t t = 0; t < 6; ++t) {
        tensor<O, 2> o_s({Bt, Ch});
        tensor<float, 2> o_f({Bt, Ch});
        causal_conv1d_step(at_token(x, t), w.view(), o_s.view(), pool.view(), so);
        causal_conv1d_step(at_token(xf, t), wf.view(), o_f.view(), poolf.view(), so);
        CHECK(stores_rounded(o_s, o_f));
        CHECK(stores_rounded(pool, poolf));
        poolf = convert<float>(convert<S>(poolf));
    }
}

}  // namespace

TEST_CASE(
    "state-space scans in 16-bit storage: the float operator's bits on "
    "the same values rounded once; steps on 16-bit pools") {
    check_stored_scan<bf16, bf16, float>("selective_scan: bf16 inputs and out, float states");
    check_stored_scan<bf16, float, bf16>("selective_scan: bf16 inputs, float out, bf16 states (vLLM)");
    check_stored_scan<fp16, fp16, fp16>("selective_scan: fp16");
    check_stored_ssd<bf16, bf16, float>("ssd_scan: bf16 inputs and out, float states");
    check_stored_ssd<bf16, float, bf16>("ssd_scan: bf16 inputs, float out, bf16 states (vLLM)");
    check_stored_ssd<fp16, fp16, fp16>("ssd_scan: fp16");
    check_stored_conv<bf16, bf16, bf16>("causal_conv1d: bf16");
    check_stored_conv<float, float, bf16>("causal_conv1d: float x, bf16 state");
    check_stored_conv<fp16, float, fp16>("causal_conv1d: fp16 x and state, float out");
}

// ---------------------------------------------------------------- state pools

namespace {

// run(out, options, initial_state, final_state) of one operator with B = 3 sequences, dense
// states of shape `dense`: on a pool of 6 slots (rows in slots 4, pad_slot and 1, the third
// from zeros) the outputs and states equal gathering, the dense call and scattering, bitwise,
// for 1, 2, 3 and 5 threads; the pad row's outputs and the unnamed slots stay as they were.
template <std::size_t RS, std::size_t RO, class Options, class Run>
void check_pool(const std::array<index_t, RS>& dense, const std::array<index_t, RO>& out_shape, const Options& base,
                Run&& run) {
    const index_t B = dense[0], slots = 6;
    std::array<index_t, RS> pool_shape = dense;
    pool_shape[0] = slots;
    const auto pool0 = random_tensor<float, RS>(pool_shape, 97, -0.5, 0.5);
    const index_t per_slot = pool0.size() / slots;
    const std::int32_t idx[] = {4, pad_slot, 1};
    const std::uint8_t has[] = {1, 1, 0};
    for (int threads : {1, 2, 3, 5}) {
        INFO(threads << " threads");
        Options o = base;
        o.num_threads = threads;
        tensor<float, RS> init(dense), fin(dense);
        tensor<float, RO> want(out_shape);
        for (index_t b = 0; b < B; ++b)
            if (idx[b] != pad_slot && has[b])
                std::copy(pool0.data() + idx[b] * per_slot, pool0.data() + (idx[b] + 1) * per_slot,
                          init.data() + b * per_slot);
        run(want, o, tensor_view<const float, RS>(init.view()), fin.view());
        tensor<float, RS> pool = convert<float>(pool0);
        tensor<float, RO> out(out_shape, 7.0f);
        o.state_indices = idx;
        o.has_initial_state = has;
        run(out, o, tensor_view<const float, RS>(pool.view()), pool.view());
        const index_t per_row = out.size() / B;
        for (index_t b = 0; b < B; ++b)
            for (index_t i = 0; i < per_row; ++i)
                REQUIRE(
                    same_bits(out.data()[b * per_row + i], idx[b] == pad_slot ? 7.0f : want.data()[b * per_row + i]));
        for (index_t slot = 0; slot < slots; ++slot) {
            const index_t b = slot == 4 ? 0 : slot == 1 ? 2 : -1;
            for (index_t i = 0; i < per_slot; ++i)
                REQUIRE(same_bits(pool.data()[slot * per_slot + i],
                                  b >= 0 ? fin.data()[b * per_slot + i] : pool0.data()[slot * per_slot + i]));
        }
    }
}

}  // namespace

TEST_CASE(
    "state-space scans on a state pool: gathering, the dense call and scattering, bitwise; pad rows and other slots "
    "untouched") {
    {
        INFO("selective_scan");
        const scan_shape s{3, 50, 40, 16, 2};
        const scan_inputs<float> in(s, 101, {});
        check_pool(std::array<index_t, 3>{s.Bt, s.Din, s.S}, std::array<index_t, 3>{s.Bt, s.N, s.Din}, in.options(in.z),
                   [&](tensor<float, 3>& out, const auto& o, auto init, auto fin) {
                       selective_scan(in.u.view(), in.delta.view(), in.A.view(), in.B.view(), in.C.view(), out.view(),
                                      o, init, fin);
                   });
    }
    {
        INFO("ssd_scan");
        const ssd_shape s{3, 50, 4, 24, 32, 2};
        const ssd_inputs<float> in(s, 103, {});
        check_pool(std::array<index_t, 4>{s.Bt, s.H, s.P, s.S}, std::array<index_t, 4>{s.Bt, s.N, s.H, s.P},
                   in.options(in.z), [&](tensor<float, 4>& out, const auto& o, auto init, auto fin) {
                       ssd_scan(in.x.view(), in.dt.view(), in.A.view(), in.B.view(), in.C.view(), out.view(), o, init,
                                fin);
                   });
    }
    for (bool channel_major : {false, true}) {
        INFO("causal_conv1d, " << (channel_major ? "channel-major" : "token-major"));
        const index_t Bt = 3, N = 50, Ch = 40, W = 4;
        const conv_inputs<float> in(Bt, N, Ch, W, 105);
        const relaid<float, 3> xc(in.x, {0, 2, 1});
        conv1d_options base;
        base.bias = in.bias.data();
        base.activation = activation::silu;
        check_pool(std::array<index_t, 3>{Bt, Ch, W - 1}, std::array<index_t, 3>{Bt, N, Ch}, base,
                   [&](tensor<float, 3>& out, const auto& o, auto init, auto fin) {
                       if (channel_major) {
                           relaid<float, 3> yc(out, {0, 2, 1});
                           causal_conv1d(tensor_view<const float, 3>(xc.view), in.w.view(), yc.view, o, init, fin);
                           out = yc.gather();
                       } else {
                           causal_conv1d(in.x.view(), in.w.view(), out.view(), o, init, fin);
                       }
                   });
    }
}

// ---- Snapshots (snapshot_interval, snapshot_indices): speculative decoding, prefix caching ----

TEST_CASE(
    "state-space scans snapshots: equal the reference and a call that ends there; restarts give the rest; any "
    "threads") {
    // The scans' chunks (SSD: 8 tokens) and tiles are cut at every snapshot; conv1d's
    // snapshots reach back into the initial state for the first W - 2 tokens.
    const std::vector<index_t> intervals{1, 3, 20, 32};
    for (const auto& lens : {std::vector<index_t>{5, 9, 37, 2, 0, 70, 8}, std::vector<index_t>{77}}) {
        index_t N = 0;
        for (index_t n : lens) N += n;
        {
            INFO("selective_scan");
            const scan_shape s{1, N, 40, 16, 2};
            const scan_inputs<double> in(s, 111, {});
            check_snapshots<3, 3>(in.options(in.z), lens, {s.Din, s.S}, {s.Din}, intervals,
                                  [&](bool ref, selective_scan_options<double> o, index_t t0, index_t n,
                                      tensor_view<double, 3> pool, tensor_view<double, 3> out) {
                                      o.z = slice(in.z.view(), 1, t0, n);
                                      const auto u = slice(in.u.view(), 1, t0, n), d = slice(in.delta.view(), 1, t0, n);
                                      const auto B = slice(in.B.view(), 1, t0, n);
                                      const auto C = slice(in.C.view(), 1, t0, n);
                                      if (ref) reference::selective_scan(u, d, in.A.view(), B, C, out, o, pool, pool);
                                      else selective_scan(u, d, in.A.view(), B, C, out, o, pool, pool);
                                  });
        }
        {
            INFO("ssd_scan");
            const ssd_shape s{1, N, 4, 24, 16, 2};
            const ssd_inputs<double> in(s, 113, {});
            auto base = in.options(in.z);
            base.chunk_size = 8;
            check_snapshots<4, 4>(base, lens, {s.H, s.P, s.S}, {s.H, s.P}, intervals,
                                  [&](bool ref, ssd_options<double> o, index_t t0, index_t n,
                                      tensor_view<double, 4> pool, tensor_view<double, 4> out) {
                                      o.z = slice(in.z.view(), 1, t0, n);
                                      const auto x = slice(in.x.view(), 1, t0, n);
                                      const auto dt = slice(in.dt.view(), 1, t0, n);
                                      const auto B = slice(in.B.view(), 1, t0, n), C = slice(in.C.view(), 1, t0, n);
                                      if (ref) reference::ssd_scan(x, dt, in.A.view(), B, C, out, o, pool, pool);
                                      else ssd_scan(x, dt, in.A.view(), B, C, out, o, pool, pool);
                                  });
        }
        for (index_t W : {2, 4}) {
            INFO("causal_conv1d, width " << W);
            const index_t Ch = 40;
            const conv_inputs<double> in(1, N, Ch, W, 115);
            conv1d_options base;
            base.bias = in.bias.data();
            base.activation = activation::silu;
            check_snapshots<3, 3>(base, lens, {Ch, W - 1}, {Ch}, intervals,
                                  [&](bool ref, const conv1d_options& o, index_t t0, index_t n,
                                      tensor_view<double, 3> pool, tensor_view<double, 3> out) {
                                      const auto x = slice(in.x.view(), 1, t0, n);
                                      if (ref) reference::causal_conv1d(x, in.w.view(), out, o, pool, pool);
                                      else causal_conv1d(x, in.w.view(), out, o, pool, pool);
                                  });
        }
    }
}
