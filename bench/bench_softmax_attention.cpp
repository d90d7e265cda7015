// softmax_attention at the BENCH.md shapes: prefill (B=1, H=8, D 64/128, N 512/2048/8192,
// causal or not, plus GQA 32/8) and decode (Nq=1, Nk 4096/32768, Hq=32, Hkv=8, D=128) over
// token-major, head-major and paged caches, plus multi-query decode (Hkv=1), a group of 8 at
// D=64, and MLA-shaped decode (one KV head, Dk=576, Dv=512).
#include <seqmix/core/tensor.hpp>
#include <seqmix/ops/softmax_attention.hpp>

#include <benchmark/benchmark.h>

#include <array>
#include <type_traits>
#include <cstdint>
#include <string>
#include <vector>

#include "bench_registry.hpp"
#include "counters.hpp"

namespace {

using namespace seqmix;
using namespace seqmix_bench;

// S: the storage type of q, k, v and out (float, or bf16 / fp16 with float arithmetic).
// products: how bf16 inputs are multiplied (attention_options::products); round: with bf16 dot
// products, P rounded to bf16 (attention_options::round_probabilities).
template <class S = float>
void prefill(benchmark::State& state, index_t hq, index_t hkv, index_t n, index_t d, bool causal, int threads,
             bf16_products products = bf16_products::automatic, bool round = false) {
    tensor<S, 4> q({1, n, hq, d}), k({1, n, hkv, d}), v({1, n, hkv, d}, S(0.5f)), out({1, n, hq, d});
    for (index_t i = 0; i < q.size(); ++i) q.data()[i] = S(float((i * 7919) % 1000) * 1e-3f - 0.5f);
    for (index_t i = 0; i < k.size(); ++i) k.data()[i] = S(float((i * 104729) % 1000) * 1e-3f - 0.5f);
    attention_options opt;
    opt.causal = causal;
    opt.num_threads = threads;
    opt.products = products;
    opt.round_probabilities = round;
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : state) {
        softmax_attention(q.view(), k.view(), v.view(), out.view(), opt);
        benchmark::ClobberMemory();
    }
    const double secs = seconds_since(t0);
    const double flops = 4.0 * double(hq) * double(n) * double(n) * double(d) * (causal ? 0.5 : 1.0);
    // Fractions of the ceilings measured in this run: FMA peak and an Eigen GEMM of equal FLOPs.
    report_rate(state, flops, secs, "GFLOPs", measured().fma[threads], "fma_peak_GFLOPs", "of_fma_peak");
    report_rate(state, flops, secs, "GFLOPs", gemm_gflops(flops, threads), "gemm_GFLOPs", "of_gemm");
    const bool bf16_dot = SEQMIX_HAS_BF16_DOT && std::is_same_v<S, bf16> &&
                          (products == bf16_products::bf16_dot ||
                           (products == bf16_products::automatic && kernels::bf16_dot_products_pay()));
    if (bf16_dot && measured().bf16[threads] > 0)
        report_rate(state, flops, secs, "GFLOPs", measured().bf16[threads], "bf16_peak_GFLOPs", "of_bf16_peak");
    state.counters["threads"] = threads;
}

enum class kv_layout { token_major, head_major, paged };
const char* name_of(kv_layout l) {
    return l == kv_layout::token_major ? "token_major" : l == kv_layout::head_major ? "head_major" : "paged16";
}

// One query per head against an Nk-key cache, in the layouts engines keep: token-major
// [B,N,Hkv,D]; head-major [B,Hkv,N,D] passed permuted; paged, blocks of 16 keys in shuffled
// order (vLLM's default block size). Rate: bytes of K and V read per second.
// latent: V is the first dv columns of K's rows (MLA's absorbed form reads one latent cache).
// S: the cache's storage type (float, bf16, fp16, fp8_e4m3 with scales); q and out are float.
template <class S = float>
void decode(benchmark::State& state, index_t hq, index_t hkv, index_t nk, kv_layout layout, int threads, index_t d,
            index_t dv, bool latent) {
    const index_t block = 16, blocks = (nk + block - 1) / block;
    tensor<float, 4> q({1, 1, hq, d}), out({1, 1, hq, dv});
    for (index_t i = 0; i < q.size(); ++i) q.data()[i] = float((i * 7919) % 1000) * 1e-3f - 0.5f;
    // Storage: [B,N,H,D], [B,H,N,D] or [blocks,16,H,D]; the same element count each.
    const index_t rows = layout == kv_layout::paged ? blocks * block : nk;
    tensor<S, 4> ks({1, rows, hkv, d}), vs({1, rows, hkv, dv}, S(0.5f));
    for (index_t i = 0; i < ks.size(); ++i) ks.data()[i] = S(float((i * 104729) % 1000) * 1e-3f - 0.5f);
    tensor_view<const S, 4> k = ks.view(), v = vs.view();
    const std::vector<float> scales(std::size_t(hkv), 0.5f);
    std::vector<std::int32_t> table(static_cast<std::size_t>(blocks));
    const std::int32_t seqlen = std::int32_t(nk);
    attention_options opt;
    opt.num_threads = threads;
    if (std::is_same_v<S, fp8_e4m3>) opt.k_scale = opt.v_scale = scales.data();
    if (layout == kv_layout::head_major) {
        k = tensor_view<const S, 4>(ks.data(), {1, nk, hkv, d}, {hkv * nk * d, d, nk * d, 1});
        v = tensor_view<const S, 4>(vs.data(), {1, nk, hkv, dv}, {hkv * nk * dv, dv, nk * dv, 1});
    } else if (layout == kv_layout::paged) {
        for (index_t b = 0; b < blocks; ++b)
            table[std::size_t(b)] = std::int32_t((b * 7919) % blocks);  // a permutation
        k = tensor_view<const S, 4>(ks.data(), {blocks, block, hkv, d});
        v = tensor_view<const S, 4>(vs.data(), {blocks, block, hkv, dv});
        opt.block_table = table.data();
        opt.max_blocks_per_seq = int(blocks);
        opt.seqlens_k = &seqlen;
    }
    if (latent)
        v = tensor_view<const S, 4>(k.data(), {k.extent(0), k.extent(1), hkv, dv},
                                    {k.stride(0), k.stride(1), k.stride(2), 1});
    const double sec = time_loop(state, [&] { softmax_attention(q.view(), k, v, out.view(), opt); });
    const double bytes = double(nk) * double(hkv) * double(latent ? d : d + dv) * sizeof(S);
    state.counters["tokens_per_s"] = benchmark::Counter(double(state.iterations()) / sec);
    report_rate(state, bytes, sec, "GBs", measured().triad[threads], "triad_GBs", "of_triad");
    report_rate(state, 2.0 * double(hq) * double(nk) * double(d + dv), sec, "GFLOPs", measured().fma[threads],
                "fma_peak_GFLOPs", "of_fma_peak");
    state.counters["threads"] = threads;
}

}  // namespace

namespace {
void register_softmax_attention_benchmarks() {
    for (int threads : {1, 2}) {
        for (index_t d : {64, 128})
            for (index_t n : {512, 2048, 8192})
                for (bool causal : {false, true}) {
                    const std::string name = "softmax_attention/prefill/H8/D" + std::to_string(d) + "/N" +
                                             std::to_string(n) + (causal ? "/causal" : "/full") +
                                             "/threads:" + std::to_string(threads);
                    benchmark::RegisterBenchmark(name.c_str(), prefill<float>, 8, 8, n, d, causal, threads,
                                                 bf16_products::automatic, false)
                        ->Unit(benchmark::kMillisecond)
                        ->UseRealTime()
                        ->MinTime(0.3);
                }
        for (bool causal : {false, true}) {
            const std::string name = std::string("softmax_attention/prefill/GQA32x8/D128/N2048") +
                                     (causal ? "/causal" : "/full") + "/threads:" + std::to_string(threads);
            benchmark::RegisterBenchmark(name.c_str(), prefill<float>, 32, 8, 2048, 128, causal, threads,
                                         bf16_products::automatic, false)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime()
                ->MinTime(0.3);
        }
        for (index_t nk : {4096, 32768})
            for (kv_layout layout : {kv_layout::token_major, kv_layout::head_major, kv_layout::paged}) {
                if (nk == 4096 && layout != kv_layout::token_major) continue;
                const std::string name = "softmax_attention/decode/Hq32/Hkv8/D128/Nk" + std::to_string(nk) + "/" +
                                         name_of(layout) + "/threads:" + std::to_string(threads);
                benchmark::RegisterBenchmark(name.c_str(), decode<float>, 32, 8, nk, layout, threads, 128, 128, false)
                    ->Unit(benchmark::kMicrosecond)
                    ->UseRealTime()
                    ->MinTime(0.3);
            }
        // GQA 8 at D = 64 (a group of 8 per KV head), and MLA's absorbed decode: one latent KV
        // head of Dk = 576 (512 + 64 rope) read as keys, its first 512 as values, for 16 heads.
        for (kv_layout layout : {kv_layout::token_major, kv_layout::head_major, kv_layout::paged}) {
            const std::string name = std::string("softmax_attention/decode/Hq32/Hkv4/D64/Nk32768/") + name_of(layout) +
                                     "/threads:" + std::to_string(threads);
            benchmark::RegisterBenchmark(name.c_str(), decode<float>, 32, 4, 32768, layout, threads, 64, 64, false)
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime()
                ->MinTime(0.3);
        }
        for (kv_layout layout : {kv_layout::token_major, kv_layout::paged}) {
            const std::string name = std::string("softmax_attention/decode/mla/Hq16/Hkv1/Dk576/Dv512/Nk32768/") +
                                     name_of(layout) + "/threads:" + std::to_string(threads);
            benchmark::RegisterBenchmark(name.c_str(), decode<float>, 16, 1, 32768, layout, threads, 576, 512, true)
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime()
                ->MinTime(0.3);
        }
        // The same decode over 16- and 8-bit caches (q and out float; fp8 with per-head scales).
        for (kv_layout layout : {kv_layout::token_major, kv_layout::head_major, kv_layout::paged}) {
            const std::string tail = std::string("/Nk32768/") + name_of(layout) + "/threads:" + std::to_string(threads);
            benchmark::RegisterBenchmark(("softmax_attention/decode/Hq32/Hkv8/D128/kv_bf16" + tail).c_str(),
                                         decode<bf16>, 32, 8, 32768, layout, threads, 128, 128, false)
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime()
                ->MinTime(0.3);
            benchmark::RegisterBenchmark(("softmax_attention/decode/Hq32/Hkv8/D128/kv_fp16" + tail).c_str(),
                                         decode<fp16>, 32, 8, 32768, layout, threads, 128, 128, false)
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime()
                ->MinTime(0.3);
            benchmark::RegisterBenchmark(("softmax_attention/decode/Hq32/Hkv8/D128/kv_fp8" + tail).c_str(),
                                         decode<fp8_e4m3>, 32, 8, 32768, layout, threads, 128, 128, false)
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime()
                ->MinTime(0.3);
        }
        // Prefill with q, k, v and out in bf16 (the automatic products; bf16 dot products forced;
        // those with P rounded to bf16), and in fp16.
        for (bool causal : {false, true}) {
            const std::string base =
                std::string("softmax_attention/prefill/H8/D128/N2048") + (causal ? "/causal" : "/full");
            const std::string tail = "/threads:" + std::to_string(threads);
            benchmark::RegisterBenchmark((base + "/bf16" + tail).c_str(), prefill<bf16>, 8, 8, 2048, 128, causal,
                                         threads, bf16_products::automatic, false)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime()
                ->MinTime(0.3);
            benchmark::RegisterBenchmark((base + "/fp16" + tail).c_str(), prefill<fp16>, 8, 8, 2048, 128, causal,
                                         threads, bf16_products::automatic, false)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime()
                ->MinTime(0.3);
            if (!SEQMIX_HAS_BF16_DOT) continue;
            benchmark::RegisterBenchmark((base + "/bf16_dot" + tail).c_str(), prefill<bf16>, 8, 8, 2048, 128, causal,
                                         threads, bf16_products::bf16_dot, false)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime()
                ->MinTime(0.3);
            benchmark::RegisterBenchmark((base + "/bf16_round_p" + tail).c_str(), prefill<bf16>, 8, 8, 2048, 128,
                                         causal, threads, bf16_products::bf16_dot, true)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime()
                ->MinTime(0.3);
        }
        // Multi-query decode (one KV head for 32 query heads) at batch 1: split-KV occupies the threads.
        const std::string mqa =
            "softmax_attention/decode/Hq32/Hkv1/D128/Nk32768/token_major/threads:" + std::to_string(threads);
        benchmark::RegisterBenchmark(mqa.c_str(), decode<float>, 32, 1, 32768, kv_layout::token_major, threads, 128,
                                     128, false)
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime()
            ->MinTime(0.3);
    }
}
const seqmix_bench::registration registered(10, register_softmax_attention_benchmarks);
}  // namespace
