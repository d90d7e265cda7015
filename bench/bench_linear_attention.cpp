// linear_attention and gated_linear_attention at the BENCH.md shapes: B=1, H=4,
// Dk=Dv in {64, 128}, N in {512, 2048, 8192, 32768}; the chunkwise kernel and the same
// sequence run token by token with the decode step; decode steps at B=16, H=16, D=128.
#include <seqmix/core/tensor.hpp>
#include <seqmix/ops/gated_linear_attention.hpp>
#include <seqmix/ops/linear_attention.hpp>

#include <benchmark/benchmark.h>

#include <string>

#include "bench_inputs.hpp"
#include "bench_registry.hpp"
#include "counters.hpp"

namespace {

using namespace seqmix;
using namespace seqmix_bench;

enum class kind { linear, gla_scalar, gla_vector };
const char* kind_name(kind k) { return k == kind::linear ? "linear_attention" : "gated_linear_attention"; }

// `offset` elements past a 64-byte boundary for every input and output (a std::vector or
// malloc buffer is only 16-byte aligned): 0 or 4. E: the storage type of every input and the
// output (float, or bf16 with float arithmetic).
template <class E = float>
void chunked(benchmark::State& state, kind k, index_t h, index_t n, index_t d, int threads, int chunk, index_t offset) {
    tensor<E, 1> buf({5 * (n * h * d + 32)});
    auto at = [&](int i) { return buf.data() + i * (n * h * d + 32) + offset; };
    tensor_view<E, 4> q(at(0), {1, n, h, d}), kk(at(1), {1, n, h, d}), v(at(2), {1, n, h, d}), out(at(3), {1, n, h, d}),
        g4(at(4), {1, n, h, d});
    tensor_view<E, 3> g3(at(4), {1, n, h});
    fill_uniform(q, -1, 1, 1);
    fill_uniform(kk, -1, 1, 2);
    fill_uniform(v, -1, 1, 3);
    fill_uniform(g4, -0.1f, 0, 4);
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : state) {
        if (k == kind::linear) {
            linear_attention_options o;
            o.num_threads = threads;
            o.chunk_size = chunk;
            linear_attention(tensor_view<const E, 4>(q), kk, v, out, o);
        } else {
            gla_options o;
            o.num_threads = threads;
            o.chunk_size = chunk;
            if (k == kind::gla_scalar) gated_linear_attention(tensor_view<const E, 4>(q), kk, v, g3, out, o);
            else gated_linear_attention(tensor_view<const E, 4>(q), kk, v, g4, out, o);
        }
        benchmark::ClobberMemory();
    }
    report_recurrent(state, double(h), double(n), double(d), threads, seconds_since(t0));
}

// The same sequence, one decode step per token (the recurrent form).
void stepwise(benchmark::State& state, kind k, index_t h, index_t n, index_t d) {
    tensor<float, 4> q({n, 1, h, d}), kk({n, 1, h, d}), v({n, 1, h, d}), out({n, 1, h, d}), g4({n, 1, h, d});
    tensor<float, 3> g3({n, 1, h});
    fill_uniform(q, -1, 1, 1);
    fill_uniform(kk, -1, 1, 2);
    fill_uniform(v, -1, 1, 3);
    fill_uniform(g4, -0.1f, 0, 4);
    fill_uniform(g3, -0.1f, 0, 5);
    tensor<float, 4> S({1, h, d, d});
    auto tok = [](tensor<float, 4>& t, index_t i) {
        return tensor_view<float, 3>(t.view().ptr(i), {1, t.extent(2), t.extent(3)});
    };
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : state) {
        for (index_t i = 0; i < n; ++i) {
            if (k == kind::linear) {
                linear_attention_step_options o;
                o.num_threads = 1;
                linear_attention_step(tok(q, i), tok(kk, i), tok(v, i), tok(out, i), S.view(), o);
            } else {
                gla_step_options o;
                o.num_threads = 1;
                if (k == kind::gla_scalar)
                    gated_linear_attention_step(tok(q, i), tok(kk, i), tok(v, i),
                                                tensor_view<float, 2>(g3.view().ptr(i), {1, h}), tok(out, i), S.view(),
                                                o);
                else
                    gated_linear_attention_step(tok(q, i), tok(kk, i), tok(v, i), tok(g4, i), tok(out, i), S.view(), o);
            }
        }
        benchmark::ClobberMemory();
    }
    report_recurrent(state, double(h), double(n), double(d), 1, seconds_since(t0));
}

// Decode step at B (16: BENCH.md; 64: a state pool larger than the L3), H=16, D=128:
// memory-bound on the state (read + write once). St: the pool's storage type (float, bf16).
template <class St = float>
void decode_step(benchmark::State& state, kind k, index_t B, index_t H, index_t D, int threads) {
    tensor<float, 3> q({B, H, D}), kk({B, H, D}), v({B, H, D}), out({B, H, D}), g3({B, H, D});
    tensor<float, 2> g2({B, H});
    fill_uniform(q, -1, 1, 1);
    fill_uniform(kk, -1, 1, 2);
    fill_uniform(v, -1, 1, 3);
    fill_uniform(g3, -0.1f, 0, 4);
    fill_uniform(g2, -0.1f, 0, 5);
    tensor<St, 4> S({B, H, D, D});
    fill_uniform(S, -0.1f, 0.1f, 7);
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : state) {
        if (k == kind::linear) {
            linear_attention_step_options o;
            o.num_threads = threads;
            linear_attention_step(q.view(), kk.view(), v.view(), out.view(), S.view(), o);
        } else {
            gla_step_options o;
            o.num_threads = threads;
            if (k == kind::gla_scalar)
                gated_linear_attention_step(q.view(), kk.view(), v.view(), g2.view(), out.view(), S.view(), o);
            else gated_linear_attention_step(q.view(), kk.view(), v.view(), g3.view(), out.view(), S.view(), o);
        }
        benchmark::ClobberMemory();
    }
    const double bytes = 2.0 * double(S.size()) * sizeof(St);  // state read and written
    report_rate(state, bytes, seconds_since(t0), "GBs", measured().triad[threads], "triad_GBs", "of_triad");
    state.counters["threads"] = threads;
}

// The argument validation of one GLA decode step alone (B=1, H=4, D=64: the smallest
// step, where it weighs most), to compare with the whole step of the same shape.
void decode_step_validation(benchmark::State& state) {
    const index_t B = 1, H = 4, D = 64;
    tensor<float, 3> q({B, H, D}), kk({B, H, D}), v({B, H, D}), out({B, H, D}), g({B, H, D}, -0.1f);
    tensor<float, 4> S({B, H, D, D});
    const gla_step_options o;
    for (auto _ : state) {
        const auto s = detail::prepare_gla_step(q.view(), kk.view(), v.view(), g.view(), out.view(), S.view(), o,
                                                "gated_linear_attention_step");
        benchmark::DoNotOptimize(s.batch);
    }
}

std::string gate_suffix(kind k) {
    return k == kind::linear ? "" : k == kind::gla_scalar ? "/scalar_gate" : "/vector_gate";
}

}  // namespace

namespace {
void register_linear_attention_benchmarks() {
    for (kind k : {kind::linear, kind::gla_scalar, kind::gla_vector}) {
        for (int threads : {1, 2})
            for (index_t d : {64, 128})
                for (index_t n : {512, 2048, 8192, 32768}) {
                    const std::string name = std::string(kind_name(k)) + "/chunk" + gate_suffix(k) + "/H4/D" +
                                             std::to_string(d) + "/N" + std::to_string(n) +
                                             "/threads:" + std::to_string(threads);
                    benchmark::RegisterBenchmark(name.c_str(), chunked<float>, k, 4, n, d, threads, 0, index_t(0))
                        ->Unit(benchmark::kMillisecond)
                        ->UseRealTime()
                        ->MinTime(0.2);
                }
        // Inputs and outputs 4 floats past a 64-byte boundary (std::vector / malloc buffers).
        for (index_t d : {64, 128}) {
            const std::string name = std::string(kind_name(k)) + "/chunk" + gate_suffix(k) + "/H4/D" +
                                     std::to_string(d) + "/N8192/offset4/threads:1";
            benchmark::RegisterBenchmark(name.c_str(), chunked<float>, k, 4, 8192, d, 1, 0, index_t(4))
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime()
                ->MinTime(0.2);
        }
        // One long sequence, one head: the sequence-parallel schedule on 2 threads.
        for (int threads : {1, 2}) {
            const std::string name = std::string(kind_name(k)) + "/chunk" + gate_suffix(k) +
                                     "/H1/D64/N32768/threads:" + std::to_string(threads);
            benchmark::RegisterBenchmark(name.c_str(), chunked<float>, k, 1, 32768, 64, threads, 0, index_t(0))
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime()
                ->MinTime(0.2);
        }
        for (index_t d : {64, 128}) {
            const std::string name = std::string(kind_name(k)) + "/stepwise" + gate_suffix(k) + "/H4/D" +
                                     std::to_string(d) + "/N2048/threads:1";
            benchmark::RegisterBenchmark(name.c_str(), stepwise, k, 4, 2048, d)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime()
                ->MinTime(0.2);
        }
        for (index_t b : {16, 64})
            for (int threads : {1, 2}) {
                const std::string name = std::string("decode_step/") + kind_name(k) + gate_suffix(k) + "/B" +
                                         std::to_string(b) + "/H16/D128/threads:" + std::to_string(threads);
                benchmark::RegisterBenchmark(name.c_str(), decode_step<float>, k, b, 16, 128, threads)
                    ->Unit(benchmark::kMicrosecond)
                    ->UseRealTime()
                    ->MinTime(0.2);
            }
        // 16-bit storage: every input and the output in bf16 (N = 8192, D = 128, beside the
        // float rows above), and decode steps on a bf16 state pool.
        for (int threads : {1, 2}) {
            const std::string name = std::string(kind_name(k)) + "/chunk" + gate_suffix(k) +
                                     "/H4/D128/N8192/bf16/threads:" + std::to_string(threads);
            benchmark::RegisterBenchmark(name.c_str(), chunked<bf16>, k, 4, 8192, 128, threads, 0, index_t(0))
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime()
                ->MinTime(0.2);
            const std::string step_name = std::string("decode_step/") + kind_name(k) + gate_suffix(k) +
                                          "/B64/H16/D128/state_bf16/threads:" + std::to_string(threads);
            benchmark::RegisterBenchmark(step_name.c_str(), decode_step<bf16>, k, 64, 16, 128, threads)
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime()
                ->MinTime(0.2);
        }
        const std::string small = std::string("decode_step/") + kind_name(k) + gate_suffix(k) + "/B1/H4/D64/threads:1";
        benchmark::RegisterBenchmark(small.c_str(), decode_step<float>, k, 1, 4, 64, 1)
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime()
            ->MinTime(0.2);
    }
}

void register_decode_validation_benchmark() {
    benchmark::RegisterBenchmark("decode_step_validation/gated_linear_attention/vector_gate/B1/H4/D64",
                                 decode_step_validation)
        ->Unit(benchmark::kNanosecond)
        ->MinTime(0.2);
}

// Chunk-size sweep (the measurement behind the defaults), only when asked for by filter.
void register_chunk_size_sweep() {
    for (kind k : {kind::linear, kind::gla_scalar, kind::gla_vector})
        for (index_t d : {64, 128})
            for (int c : {16, 32, 64, 128}) {
                const std::string name = std::string("sweep/") + kind_name(k) + gate_suffix(k) + "/D" +
                                         std::to_string(d) + "/N8192/chunk" + std::to_string(c);
                benchmark::RegisterBenchmark(name.c_str(), chunked<float>, k, 4, 8192, d, 1, c, index_t(0))
                    ->Unit(benchmark::kMillisecond)
                    ->UseRealTime()
                    ->MinTime(0.2);
            }
}
const seqmix_bench::registration registered(20, register_linear_attention_benchmarks);
const seqmix_bench::registration validation(21, register_decode_validation_benchmark);
const seqmix_bench::registration sweep(22, register_chunk_size_sweep);
}  // namespace
