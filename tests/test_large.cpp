// Tensors of more than 2^31 elements: every offset is 64-bit (index_t) end to end.
// 1. Decode over a paged bf16 KV cache of 2^31 + 4096 elements per pool, reading pages at
//    both ends (4 GiB each, allocated but untouched except the pages used: a few MiB resident).
// 2. causal_conv1d writing a bf16 output of 2^31 + 512 elements (4 GiB written) from an input
//    broadcast along the tokens (stride 0).
#include <seqmix/ops/causal_conv1d.hpp>
#include <seqmix/ops/softmax_attention.hpp>
#include <seqmix/reference/softmax_attention.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "catch.hpp"
#include "test_util.hpp"

using namespace seqmix;
using namespace seqmix_test;

namespace {
// n elements of T, allocated and not touched (the kernel maps pages only where written).
template <class T>
std::unique_ptr<T, decltype(&std::free)> untouched(std::size_t n) {
    void* p = std::malloc(n * sizeof(T));
    if (!p) FAIL("could not reserve " << n * sizeof(T) << " bytes");
    return {static_cast<T*>(p), &std::free};
}
}  // namespace

TEST_CASE("decode over a paged cache of more than 2^31 elements per pool reads its far pages") {
    const index_t page = 16, hkv = 2, hq = 8, d = 64, pages = (index_t(1) << 31) / (page * hkv * d) + 2;
    const index_t per_page = page * hkv * d;
    REQUIRE(pages * per_page > (index_t(1) << 31));
    auto k_pool = untouched<bf16>(std::size_t(pages * per_page));
    auto v_pool = untouched<bf16>(std::size_t(pages * per_page));
    // One sequence of 60 keys on pages at both ends of the pools.
    const std::int32_t table[] = {std::int32_t(pages - 1), 0, std::int32_t(pages - 2), 12345};
    const std::int32_t len[] = {60};
    std::mt19937 gen(7);
    std::uniform_real_distribution<float> dist(-1, 1);
    tensor<double, 4> kd({1, 60, hkv, d}), vd({1, 60, hkv, d});
    for (index_t j = 0; j < 60; ++j)
        for (index_t i = 0; i < hkv * d; ++i) {
            const std::size_t at = std::size_t(table[j / page] * per_page + (j % page) * hkv * d + i);
            k_pool.get()[at] = bf16(dist(gen));
            v_pool.get()[at] = bf16(dist(gen));
            kd.data()[j * hkv * d + i] = double(float(k_pool.get()[at]));
            vd.data()[j * hkv * d + i] = double(float(v_pool.get()[at]));
        }
    auto q = random_tensor<float, 4>({1, 1, hq, d}, 3);
    tensor<float, 4> out({1, 1, hq, d});
    attention_options o;
    o.block_table = table;
    o.max_blocks_per_seq = 4;
    o.seqlens_k = len;
    const tensor_view<const bf16, 4> kv_k(k_pool.get(), {pages, page, hkv, d}),
        kv_v(v_pool.get(), {pages, page, hkv, d});
    softmax_attention(q.view(), kv_k, kv_v, out.view(), o);
    auto qd = convert<double>(q);
    tensor<double, 4> ref({1, 1, hq, d});
    reference::softmax_attention(qd.view(), kd.view(), vd.view(), ref.view());
    CHECK(max_rel_error(out, ref) < attention_accuracy);
}

TEST_CASE("causal_conv1d writes an output of more than 2^31 elements") {
    const index_t channels = 64, width = 4, tokens = (index_t(1) << 31) / channels + 8;
    REQUIRE(tokens * channels > (index_t(1) << 31));
    std::vector<float> x(static_cast<std::size_t>(channels)), weight(static_cast<std::size_t>(channels * width));
    for (index_t c = 0; c < channels; ++c) {
        x[std::size_t(c)] = float(c % 7) - 3;
        for (index_t w = 0; w < width; ++w) weight[std::size_t(c * width + w)] = float(w + 1) / 8;
    }
    // Every token is the same row x (stride 0 on the token axis).
    const tensor_view<const float, 3> xs(x.data(), {1, tokens, channels}, {0, 0, 1});
    auto out = untouched<bf16>(std::size_t(tokens * channels));
    causal_conv1d(xs, tensor_view<const float, 2>(weight.data(), {channels, width}),
                  tensor_view<bf16, 3>(out.get(), {1, tokens, channels}));
    // Token t sees min(t + 1, W) copies of x: the weights' last min(t + 1, W) taps.
    index_t wrong = 0, first_wrong = -1;
    for (index_t t = 0; t < tokens; ++t) {
        const index_t seen = std::min(t + 1, width);
        double taps = 0;
        for (index_t w = width - seen; w < width; ++w) taps += double(w + 1) / 8;
        for (index_t c = 0; c < channels; ++c) {
            const float want = float(bf16(float(taps * double(x[std::size_t(c)]))));
            if (float(out.get()[std::size_t(t * channels + c)]) != want && wrong++ == 0) first_wrong = t * channels + c;
        }
    }
    INFO(wrong << " outputs wrong, the first at element " << first_wrong);
    CHECK(wrong == 0);
}
