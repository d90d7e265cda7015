#pragma once
// What every demo's main does: parse the command line, load the model and the input, run
// prefill (and decode), print the configuration, the throughput and a checksum, write the
// output. A recurrent block (a whole model or one layer) provides
//   Block(weights&, const demo_options&)      names, shapes and config from the checkpoint
//   std::string describe() const              one line of configuration
//   std::int64_t input_width() const          vocabulary size (token ids) or hidden size
//   std::int64_t hidden_size() const          width of the output rows
//   state make_state(std::int64_t slots) const             a state pool (conv + recurrent)
//   matrix prefill(const sequence_batch&, state* pool, const std::int32_t* slots, timing&) const
//   matrix decode(const sequence_batch& one_token, state& pool, const std::int32_t* slots, timing&) const
// prefill leaves each sequence's final states in pool slot slots[b] (when pool is given);
// decode reads and updates them in place.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(_OPENMP)
#include <omp.h>
#endif

#include "cli.hpp"

namespace seqmix_examples {

class stopwatch {
public:
    double ms() const { return std::chrono::duration<double, std::milli>(clock::now() - start_).count(); }

private:
    using clock = std::chrono::steady_clock;
    clock::time_point start_ = clock::now();
};

// Time spent inside seqmix operators; the rest of a block's time is projections and norms.
struct timing {
    double mixer_ms = 0;
};
template <class F>
void timed(timing& t, F&& f) {
    const stopwatch s;
    f();
    t.mixer_ms += s.ms();
}

// Where a prefill leaves its final states: straight in the pool's slots (state_indices, the
// pool given as both states, has_initial_state 0 so that every sequence starts from zeros),
// or nowhere without a pool.
class prefill_states {
public:
    prefill_states(bool pooled, const std::int32_t* slots, std::int64_t batch)
        : pooled_(pooled), slots_(slots), fresh_(static_cast<std::size_t>(batch), 0) {}
    // o with this prefill's pool options.
    template <class Options>
    Options into(Options o) const {
        if (pooled_) {
            o.state_indices = slots_;
            o.has_initial_state = fresh_.data();
        }
        return o;
    }
    template <std::size_t R>
    seqmix::tensor_view<const float, R> initial(seqmix::tensor<float, R>* pool) const {
        return pool ? seqmix::tensor_view<const float, R>(pool->view()) : seqmix::tensor_view<const float, R>{};
    }
    template <std::size_t R>
    seqmix::tensor_view<float, R> final(seqmix::tensor<float, R>* pool) const {
        return pool ? pool->view() : seqmix::tensor_view<float, R>{};
    }

private:
    bool pooled_;
    const std::int32_t* slots_;
    std::vector<std::uint8_t> fresh_;
};

struct run_result {
    matrix output;  // [B * N, hidden]
    double prefill_ms = 0, decode_ms = 0, prefill_mixer_ms = 0, decode_mixer_ms = 0;
    std::int64_t prefill_tokens = 0, decode_tokens = 0;
};

// Prefill N - decode tokens of every sequence, then decode the rest one token at a time. The
// pool has B + 1 slots and sequence b lives in slot B - b: slot 0 is never touched, as a
// serving engine's padding slot, and the slots are not the batch rows.
template <class Block>
run_result run_recurrent(const Block& block, const sequence_batch& in, int decode) {
    if (decode >= in.tokens) throw load_error("--decode " + std::to_string(decode) + " leaves no token to prefill");
    run_result r;
    r.output.resize(in.batch * in.tokens, block.hidden_size());
    const std::int64_t prompt = in.tokens - decode;
    std::vector<std::int32_t> slots;
    for (std::int64_t b = 0; b < in.batch; ++b) slots.push_back(std::int32_t(in.batch - b));
    auto pool = block.make_state(in.batch + 1);
    auto place = [&](const matrix& y, std::int64_t t0, std::int64_t n) {
        for (std::int64_t b = 0; b < in.batch; ++b) r.output.middleRows(b * in.tokens + t0, n) = y.middleRows(b * n, n);
    };
    timing prefill_time;
    const stopwatch p;
    const matrix y =
        block.prefill(decode ? in.slice(0, prompt) : in, decode ? &pool : nullptr, slots.data(), prefill_time);
    r.prefill_ms = p.ms();
    r.prefill_mixer_ms = prefill_time.mixer_ms;
    r.prefill_tokens = in.batch * prompt;
    place(y, 0, prompt);
    timing decode_time;
    const stopwatch d;
    for (std::int64_t t = prompt; t < in.tokens; ++t)
        place(block.decode(in.slice(t, t + 1), pool, slots.data(), decode_time), t, 1);
    r.decode_ms = d.ms();
    r.decode_mixer_ms = decode_time.mixer_ms;
    r.decode_tokens = in.batch * decode;
    return r;
}

inline void print_throughput(const run_result& r, std::int64_t batch) {
    std::printf(
        "  prefill: %lld tokens in %.2f ms = %.0f tokens/s (seqmix operators %.2f ms = %.0f%%, projections and norms "
        "%.0f%%)\n",
        (long long)r.prefill_tokens, r.prefill_ms, r.prefill_tokens / r.prefill_ms * 1e3, r.prefill_mixer_ms,
        100 * r.prefill_mixer_ms / r.prefill_ms, 100 * (1 - r.prefill_mixer_ms / r.prefill_ms));
    if (r.decode_tokens)
        std::printf(
            "  decode:  %lld steps of %lld sequences in %.2f ms = %.3f ms/step, %.0f tokens/s (seqmix operators %.3f "
            "ms/step = %.0f%%)\n",
            (long long)(r.decode_tokens / batch), (long long)batch, r.decode_ms,
            r.decode_ms / double(r.decode_tokens / batch), r.decode_tokens / r.decode_ms * 1e3,
            r.decode_mixer_ms / double(r.decode_tokens / batch), 100 * r.decode_mixer_ms / r.decode_ms);
}

inline void print_checksum(const matrix& y) {
    std::printf("  output [%lld x %lld]: sum %.6e, mean |y| %.6e, y[0][0..2] = %+.5f %+.5f %+.5f\n",
                (long long)y.rows(), (long long)y.cols(), double(y.sum()), double(y.cwiseAbs().mean()), double(y(0, 0)),
                double(y(0, std::min<Eigen::Index>(1, y.cols() - 1))),
                double(y(0, std::min<Eigen::Index>(2, y.cols() - 1))));
}

inline void write_output(const std::string& path, const matrix& y, std::int64_t batch) {
    if (path.empty()) return;
    write_npy(path, std::vector<float>(y.data(), y.data() + y.size()), {batch, y.rows() / batch, y.cols()});
}

// --threads for Eigen, the operators and the norms (their num_threads 0 is OpenMP's default).
// Freed blocks stay with the allocator: each call allocates its activations afresh, and
// returning them to the kernel made page faults a tenth of a prefill.
inline void use_threads(int threads) {
    if (threads > 0) {
        Eigen::setNbThreads(threads);
#if defined(_OPENMP)
        omp_set_num_threads(threads);
#endif
    }
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

// main() of a demo: errors are printed, not thrown.
template <class F>
int demo_main(const demo_description& d, int argc, char** argv, F&& body) {
    try {
        body(parse_command_line(argc, argv, d));
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: error: %s\n", d.name, e.what());
        return 2;
    }
}

// The whole main of a recurrent demo.
template <class Block>
int recurrent_demo_main(const demo_description& d, int argc, char** argv) {
    return demo_main(d, argc, argv, [&](const demo_options& o) {
        use_threads(o.threads);
        weights w = demo_weights(o);
        const Block block(w, o);
        const sequence_batch in = demo_input(o, d, block.input_width());
        std::printf("%s: %s\n  %s\n  input: %lld sequences x %lld tokens%s\n", d.name,
                    o.checkpoint.empty() ? "random model (seeded)" : o.checkpoint.c_str(), block.describe().c_str(),
                    (long long)in.batch, (long long)in.tokens,
                    o.decode ? (", the last " + std::to_string(o.decode) + " decoded one at a time").c_str() : "");
        run_result r = run_recurrent(block, in, o.decode);
        for (int i = 1; i < o.repeat; ++i) {  // the fastest prefill and the fastest decode, each with its split
            run_result again = run_recurrent(block, in, o.decode);
            if (again.prefill_ms < r.prefill_ms)
                r.prefill_ms = again.prefill_ms, r.prefill_mixer_ms = again.prefill_mixer_ms;
            if (again.decode_ms < r.decode_ms) r.decode_ms = again.decode_ms, r.decode_mixer_ms = again.decode_mixer_ms;
        }
        print_throughput(r, in.batch);
        print_checksum(r.output);
        write_output(o.output, r.output, in.batch);
    });
}

}  // namespace seqmix_examples
