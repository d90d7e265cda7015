// delta_rule and gated_delta_rule (scalar gate: Gated DeltaNet; per key channel: KDA) at the
// BENCH.md shapes: B=1, H=4, Dk=Dv in {64, 128}, N in {512, 2048, 8192, 32768}, q and k
// l2-normalized in the kernel (as the models run it); the chunkwise kernel, the same
// sequence token by token with the decode step, and decode steps with state pools.
#include <seqmix/core/tensor.hpp>
#include <seqmix/ops/delta_rule.hpp>

#include <benchmark/benchmark.h>

#include <array>
#include <string>
#include <type_traits>
#include <vector>

#include "bench_inputs.hpp"
#include "bench_registry.hpp"
#include "counters.hpp"

namespace {

using namespace seqmix;
using namespace seqmix_bench;

enum class kind { delta, gated_scalar, gated_vector };
std::string kind_name(kind k) { return k == kind::delta ? "delta_rule" : "gated_delta_rule"; }
std::string gate_suffix(kind k) {
    return k == kind::delta ? "" : k == kind::gated_scalar ? "/scalar_gate" : "/vector_gate";
}

// `offset` elements past a 64-byte boundary for every input and output: 0 or 4. E: the
// storage type of every input and the output (float, or bf16 with float arithmetic).
template <class E = float>
void chunked(benchmark::State& state, kind k, index_t h, index_t n, index_t d, int threads, int chunk, index_t offset,
             delta_form form) {
    const index_t big = n * h * d + 32;
    tensor<E, 1> buf({6 * big});
    auto at = [&](int i) { return buf.data() + i * big + offset; };
    tensor_view<E, 4> q(at(0), {1, n, h, d}), kk(at(1), {1, n, h, d}), v(at(2), {1, n, h, d}), out(at(3), {1, n, h, d}),
        g4(at(4), {1, n, h, d});
    tensor_view<E, 3> g3(at(4), {1, n, h}), beta(at(5), {1, n, h});
    fill_uniform(q, -1, 1, 1);
    fill_uniform(kk, -1, 1, 2);
    fill_uniform(v, -1, 1, 3);
    fill_uniform(g4, -0.1f, 0, 4);
    fill_uniform(beta, 0.1f, 0.9f, 5);
    delta_options o;
    o.num_threads = threads;
    o.chunk_size = chunk;
    o.qk_l2norm = true;
    o.form = form;
    const tensor_view<const E, 4> qc(q);
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : state) {
        if (k == kind::delta) delta_rule(qc, kk, v, beta, out, o);
        else if (k == kind::gated_scalar) gated_delta_rule(qc, kk, v, g3, beta, out, o);
        else gated_delta_rule(qc, kk, v, g4, beta, out, o);
        benchmark::ClobberMemory();
    }
    report_recurrent(state, double(h), double(n), double(d), threads, seconds_since(t0));
}

// A prefill of 4 sequences of 2048 tokens (H4, D128, Gated DeltaNet) with states: dense
// [4, H, D, D] initial and final states (every = -1), or one pool of 64 slots updated in place
// (state_pool_options, slots 60, 3, 17, 42; every = 0), or the pool plus a snapshot every
// `every` tokens into slots of their own (prefix caching): the cost of serving from a pool.
void prefill_states(benchmark::State& state, index_t every, int threads) {
    const index_t B = 4, n = 2048, h = 4, d = 128, per = every > 0 ? n / every : 0, slots = 64 + B * per;
    const bool pool = every >= 0;
    tensor<float, 4> q({B, n, h, d}), kk({B, n, h, d}), v({B, n, h, d}), out({B, n, h, d});
    tensor<float, 3> g({B, n, h}), beta({B, n, h});
    fill_uniform(q, -1, 1, 1);
    fill_uniform(kk, -1, 1, 2);
    fill_uniform(v, -1, 1, 3);
    fill_uniform(g, -0.1f, 0, 4);
    fill_uniform(beta, 0.1f, 0.9f, 5);
    tensor<float, 4> init({pool ? slots : B, h, d, d}), fin({B, h, d, d});
    fill_uniform(init, -0.1f, 0.1f, 6);
    const std::int32_t indices[] = {60, 3, 17, 42};
    std::vector<std::int32_t> snapshots;
    for (index_t i = 0; i < B * per; ++i) snapshots.push_back(std::int32_t(64 + i));
    delta_options o;
    o.num_threads = threads;
    o.qk_l2norm = true;
    if (pool) o.state_indices = indices;
    if (every > 0) {
        o.snapshot_interval = int(every);
        o.snapshot_indices = snapshots.data();
        o.max_snapshots = int(per);
    }
    const double sec = time_loop(state, [&] {
        if (pool)
            gated_delta_rule(q.view(), kk.view(), v.view(), g.view(), beta.view(), out.view(), o, init.view(),
                             init.view());
        else
            gated_delta_rule(q.view(), kk.view(), v.view(), g.view(), beta.view(), out.view(), o, init.view(),
                             fin.view());
    });
    report_recurrent(state, double(h * B), double(n), double(d), threads, sec);
    state.counters["tokens_per_s"].value *= double(B);  // every sequence's tokens
}

// Speculative decoding: B sequences verify `drafts` draft tokens each (H16, D128, Gated
// DeltaNet) in one call with a snapshot after every token (the engine keeps the state of the
// last accepted one), against the same tokens as `drafts` decode steps over the B rows.
void verify_drafts(benchmark::State& state, bool snapshots, index_t B, index_t drafts, int threads) {
    const index_t h = 16, d = 128, per_seq = drafts + 1, slots = B * per_seq;
    tensor<float, 4> q({B, drafts, h, d}), kk({B, drafts, h, d}), v({B, drafts, h, d}), out({B, drafts, h, d});
    tensor<float, 3> g({B, drafts, h}), beta({B, drafts, h});
    fill_uniform(q, -1, 1, 1);
    fill_uniform(kk, -1, 1, 2);
    fill_uniform(v, -1, 1, 3);
    fill_uniform(g, -0.1f, 0, 4);
    fill_uniform(beta, 0.1f, 0.9f, 5);
    tensor<float, 4> pool({slots, h, d, d});
    fill_uniform(pool, -0.1f, 0.1f, 6);
    std::vector<std::int32_t> indices, snaps;
    for (index_t b = 0; b < B; ++b) {
        indices.push_back(std::int32_t(b * per_seq));  // each sequence's state, then its drafts' snapshots
        for (index_t j = 1; j <= drafts; ++j) snaps.push_back(std::int32_t(b * per_seq + j));
    }
    delta_options o;
    o.num_threads = threads;
    o.qk_l2norm = true;
    o.state_indices = indices.data();
    o.snapshot_interval = 1;
    o.snapshot_indices = snaps.data();
    o.max_snapshots = int(drafts);
    delta_step_options so;
    so.num_threads = threads;
    so.qk_l2norm = true;
    so.state_indices = indices.data();
    auto token = [&](auto& t, index_t j) {  // draft j of every sequence as a decode step's rows
        const auto view = t.view();
        using V = decltype(view);
        constexpr std::size_t R = V::rank;
        std::array<index_t, R - 1> shape{}, strides{};
        shape[0] = view.extent(0), strides[0] = view.stride(0);
        for (std::size_t i = 2; i < R; ++i) shape[i - 1] = view.extent(i), strides[i - 1] = view.stride(i);
        return tensor_view<typename V::value_type, R - 1>(view.ptr(0, j), shape, strides);
    };
    const double sec = time_loop(state, [&] {
        if (snapshots) {
            gated_delta_rule(q.view(), kk.view(), v.view(), g.view(), beta.view(), out.view(), o, pool.view(),
                             pool.view());
        } else {
            for (index_t j = 0; j < drafts; ++j)
                gated_delta_rule_step(token(q, j), token(kk, j), token(v, j), token(g, j), token(beta, j),
                                      token(out, j), pool.view(), so);
        }
    });
    report_recurrent(state, double(h * B), double(drafts), double(d), threads, sec);
    state.counters["tokens_per_s"].value *= double(B);  // every sequence's drafts
}

// One decode step per row (B rows of H heads): token by token when the rows are the tokens
// of one sequence (stepwise), or a serving batch over a state pool (decode_step).
struct step_inputs {
    tensor<float, 3> q, kk, v, out, g3;
    tensor<float, 2> g2, beta;
    step_inputs(index_t B, index_t H, index_t D)
        : q({B, H, D}), kk({B, H, D}), v({B, H, D}), out({B, H, D}), g3({B, H, D}), g2({B, H}), beta({B, H}) {
        fill_uniform(q.view(), -1, 1, 1);
        fill_uniform(kk.view(), -1, 1, 2);
        fill_uniform(v.view(), -1, 1, 3);
        fill_uniform(g3.view(), -0.1f, 0, 4);
        fill_uniform(g2.view(), -0.1f, 0, 5);
        fill_uniform(beta.view(), 0.1f, 0.9f, 6);
    }
    // Rows [r, r + rows) as a batch.
    template <class T, std::size_t R>
    static tensor_view<T, R> rows_of(tensor<T, R>& t, index_t r, index_t rows) {
        auto shape = t.shape();
        shape[0] = rows;
        return tensor_view<T, R>(t.view().ptr(r), shape);
    }
    template <class St>
    void step(kind k, index_t r, index_t rows, const tensor_view<St, 4>& S, int threads) {
        delta_step_options o;
        o.num_threads = threads;
        o.qk_l2norm = true;
        const auto qv = rows_of(q, r, rows), kv = rows_of(kk, r, rows), vv = rows_of(v, r, rows),
                   ov = rows_of(out, r, rows);
        const auto bv = rows_of(beta, r, rows);
        if (k == kind::delta) delta_rule_step(qv, kv, vv, bv, ov, S, o);
        else if (k == kind::gated_scalar) gated_delta_rule_step(qv, kv, vv, rows_of(g2, r, rows), bv, ov, S, o);
        else gated_delta_rule_step(qv, kv, vv, rows_of(g3, r, rows), bv, ov, S, o);
    }
};

void stepwise(benchmark::State& state, kind k, index_t h, index_t n, index_t d) {
    step_inputs in(n, h, d);
    tensor<float, 4> S({1, h, d, d});
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : state) {
        for (index_t i = 0; i < n; ++i) in.step(k, i, 1, S.view(), 1);
        benchmark::ClobberMemory();
    }
    report_recurrent(state, double(h), double(n), double(d), 1, seconds_since(t0));
}

// B=16 (BENCH.md) and B=64 (a state pool beyond the L3), H=16, Dk=Dv=128: memory-bound on
// the state. Counted traffic: the state read and written once. St: the pool's storage type
// (float, or bf16 as vLLM keeps it).
template <class St = float>
void decode_step(benchmark::State& state, kind k, index_t B, index_t H, index_t D, int threads) {
    step_inputs in(B, H, D);
    tensor<St, 4> S({B, H, D, D});
    fill_uniform(S.view(), -0.1f, 0.1f, 7);
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : state) {
        in.step(k, 0, B, S.view(), threads);
        benchmark::ClobberMemory();
    }
    const double bytes = 2.0 * double(S.size()) * sizeof(St);
    report_rate(state, bytes, seconds_since(t0), "GBs", measured().triad[threads], "triad_GBs", "of_triad");
    state.counters["threads"] = threads;
}

void register_delta_rule_benchmarks() {
    auto chunk_row = [](kind k, index_t h, index_t d, index_t n, int threads, int chunk, index_t offset,
                        const std::string& tag, delta_form form = delta_form::automatic) {
        const std::string name = kind_name(k) + "/chunk" + gate_suffix(k) + "/H" + std::to_string(h) + "/D" +
                                 std::to_string(d) + "/N" + std::to_string(n) + tag +
                                 "/threads:" + std::to_string(threads);
        benchmark::RegisterBenchmark(name.c_str(), chunked<float>, k, h, n, d, threads, chunk, offset, form)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->MinTime(0.2);
    };
    for (kind k : {kind::delta, kind::gated_scalar, kind::gated_vector}) {
        for (int threads : {1, 2})
            for (index_t d : {64, 128})
                for (index_t n : {512, 2048, 8192, 32768}) chunk_row(k, 4, d, n, threads, 0, 0, "");
        for (index_t d : {64, 128}) chunk_row(k, 4, d, 8192, 1, 0, 4, "/offset4");
        for (int threads : {1, 2}) chunk_row(k, 1, 64, 32768, threads, 0, 0, "");  // value split
        // The two forms side by side (the automatic choice is the recurrent one).
        for (index_t d : {64, 128})
            for (auto [form, tag] : {std::pair{delta_form::chunkwise, "/form:chunkwise"},
                                     std::pair{delta_form::recurrent, "/form:recurrent"}})
                chunk_row(k, 4, d, 8192, 1, 0, 0, tag, form);
        for (index_t d : {64, 128}) {
            const std::string name =
                kind_name(k) + "/stepwise" + gate_suffix(k) + "/H4/D" + std::to_string(d) + "/N2048/threads:1";
            benchmark::RegisterBenchmark(name.c_str(), stepwise, k, 4, 2048, d)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime()
                ->MinTime(0.2);
        }
        for (index_t b : {16, 64})
            for (int threads : {1, 2}) {
                const std::string name = "decode_step/" + kind_name(k) + gate_suffix(k) + "/B" + std::to_string(b) +
                                         "/H16/D128/threads:" + std::to_string(threads);
                benchmark::RegisterBenchmark(name.c_str(), decode_step<float>, k, b, 16, 128, threads)
                    ->Unit(benchmark::kMicrosecond)
                    ->UseRealTime()
                    ->MinTime(0.2);
            }
        // 16-bit storage: every input and the output in bf16 (N = 8192, D = 128, beside the
        // float rows above), and decode steps on a bf16 state pool.
        for (int threads : {1, 2}) {
            const std::string name =
                kind_name(k) + "/chunk" + gate_suffix(k) + "/H4/D128/N8192/bf16/threads:" + std::to_string(threads);
            benchmark::RegisterBenchmark(name.c_str(), chunked<bf16>, k, 4, 8192, 128, threads, 0, 0,
                                         delta_form::automatic)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime()
                ->MinTime(0.2);
            const std::string step_name = "decode_step/" + kind_name(k) + gate_suffix(k) +
                                          "/B64/H16/D128/state_bf16/threads:" + std::to_string(threads);
            benchmark::RegisterBenchmark(step_name.c_str(), decode_step<bf16>, k, 64, 16, 128, threads)
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime()
                ->MinTime(0.2);
        }
    }
}

void register_pool_prefill_benchmarks() {
    for (int threads : {1, 2})
        for (index_t every : {-1, 0, 32, 512}) {
            const std::string mode = every < 0    ? "dense"
                                     : every == 0 ? "pool64"
                                                  : "pool64_snapshots_every" + std::to_string(every);
            const std::string name = "gated_delta_rule/prefill_with_states/scalar_gate/B4/H4/D128/N2048/" + mode +
                                     "/threads:" + std::to_string(threads);
            benchmark::RegisterBenchmark(name.c_str(), prefill_states, every, threads)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime()
                ->MinTime(0.2);
        }
    for (int threads : {1, 2})
        for (index_t b : {16, 64})
            for (bool snapshots : {false, true}) {
                const std::string name = "gated_delta_rule/verify_drafts/scalar_gate/B" + std::to_string(b) +
                                         "/H16/D128/drafts4/" + (snapshots ? "snapshots_every1" : "decode_steps") +
                                         "/threads:" + std::to_string(threads);
                benchmark::RegisterBenchmark(name.c_str(), verify_drafts, snapshots, b, index_t(4), threads)
                    ->Unit(benchmark::kMicrosecond)
                    ->UseRealTime()
                    ->MinTime(0.2);
            }
}

// Chunk-size sweep of the automatic form, only when asked for by filter.
void register_delta_chunk_sweep() {
    for (kind k : {kind::delta, kind::gated_scalar, kind::gated_vector})
        for (index_t d : {64, 128})
            for (int c : {16, 32, 64}) {
                const std::string name = "sweep/" + kind_name(k) + gate_suffix(k) + "/D" + std::to_string(d) +
                                         "/N8192/chunk" + std::to_string(c);
                benchmark::RegisterBenchmark(name.c_str(), chunked<float>, k, 4, 8192, d, 1, c, index_t(0),
                                             delta_form::automatic)
                    ->Unit(benchmark::kMillisecond)
                    ->UseRealTime()
                    ->MinTime(0.2);
            }
}

const seqmix_bench::registration registered(30, register_delta_rule_benchmarks);
const seqmix_bench::registration sweep(31, register_delta_chunk_sweep);
const seqmix_bench::registration pools(32, register_pool_prefill_benchmarks);
}  // namespace
