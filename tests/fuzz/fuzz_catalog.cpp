// A libFuzzer harness over the hostile catalog (tests/hostile_catalog.hpp), one operator family
// per run (SEQMIX_FUZZ_FAMILY: attention, local, sparse, linear, delta, ssm). The bytes choose
// the operator, its sizes (tokens, batch, head dims, channels, states, groups, conv width), the
// thread count, the scale, a state pool, the options inside the entry, the input values and,
// now and then, one argument of a wrong shape. Both the fast operator (float) and seqmix::reference (double) run:
//   - both raise seqmix::error or neither does; a failing call writes nothing;
//   - otherwise every output has the reference's class (finite, NaN, +-Inf) and is within
//     1e-4 of it relative to the largest magnitude (at least 1: see below);
//   - any other exception, a crash or a sanitizer report is a finding.
// Build and run: tests/fuzz/run.sh (clang++ -fsanitize=fuzzer,address,undefined). Replay a
// finding: SEQMIX_FUZZ_FAMILY=<family> SEQMIX_FUZZ_VERBOSE=1 build/fuzz/tests/fuzz_catalog <file>
// (VERBOSE prints the sizes, and every argument when an output misses the tolerance).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "hostile_catalog.hpp"

using namespace hostile;
using seqmix::index_t;

namespace {

// The fuzzer's bytes, read front to back; zeros once they run out.
struct byte_source {
    const std::uint8_t* p;
    std::size_t n, at = 0;
    std::uint8_t next() { return at < n ? p[at++] : 0; }
    index_t pick(index_t lo, index_t hi) { return lo + index_t(next()) % (hi - lo + 1); }
    bool flag() { return next() & 1; }
};

const char* family = "";

bool in_family(const std::string& op) {
    static const std::vector<std::pair<std::string, std::vector<std::string>>> families = {
        {"attention", {"softmax_attention"}},          {"local", {"sliding_window", "neighborhood"}},
        {"sparse", {"topk", "block_sparse"}},          {"linear", {"linear_attention", "gated_linear_attention"}},
        {"delta", {"delta_rule", "gated_delta_rule"}}, {"ssm", {"selective_scan", "ssd_", "causal_conv1d"}},
    };
    if (*family == 0) return true;  // no family named: every operator
    for (const auto& f : families)
        if (f.first == family) {
            for (const auto& prefix : f.second)
                if (op.compare(0, prefix.size(), prefix) == 0) return true;
            return false;
        }
    std::fprintf(stderr, "SEQMIX_FUZZ_FAMILY: no family '%s'\n", family);
    std::abort();
}

[[noreturn]] void finding(const std::string& what) {
    std::fprintf(stderr, "seqmix fuzz finding: %s\n", what.c_str());
    std::abort();
}

// A value for an argument of role r from one byte (integers for the selection family, so
// that its ties are exact in float and double alike).
float value_of(role r, std::uint8_t b, bool integers) {
    const int s = int(std::int8_t(b));
    switch (r) {
        case role::input: return integers ? float(s % 4) : float(s) / 32;
        case role::gate: return b == 255 ? -INFINITY : -float(b) / 16;
        case role::rate: return float(b) / 255;
        case role::projection: return float(s) / 16;
        default: return float(s) / 256;  // states and options arrays
    }
}

// Makes arg a fresh contiguous buffer of `shape`, filled with v.
void reshape(arg<float>& a, std::vector<index_t> shape, float v) {
    a.shape = std::move(shape);
    a.strides = contiguous_strides(a.shape);
    a.storage = std::make_shared<std::vector<float>>(std::size_t(std::max<index_t>(count(a.shape), 1)), v);
    a.data = a.storage->data();
}

std::string run_caught(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const seqmix::error& e) {
        return std::string("seqmix::error: ") + e.what();
    } catch (const std::exception& e) {
        finding(std::string("an exception other than seqmix::error: ") + e.what());
    }
    return {};
}

std::string number(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", x);
    return buf;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    if (const char* f = std::getenv("SEQMIX_FUZZ_FAMILY")) family = f;
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    byte_source in{data, size};
    catalog_sizes sz;
    sz.N = in.pick(1, 72);
    sz.B = in.pick(1, 3);
    sz.Dk = in.pick(1, 19);
    sz.Dv = in.pick(1, 19);
    sz.G = in.pick(1, 3);
    sz.Din = sz.G * in.pick(1, 5);
    sz.S = in.pick(1, 9);
    sz.H = in.pick(1, 4);
    sz.P = in.pick(1, 9);
    sz.W = in.pick(1, 5);
    std::vector<op_spec> ops;
    for (auto& op : catalog(sz))
        if (in_family(op.name)) ops.push_back(std::move(op));
    if (ops.empty()) return 0;
    const op_spec& op = ops[std::size_t(in.pick(0, index_t(ops.size()) - 1))];
    if (std::getenv("SEQMIX_FUZZ_VERBOSE"))
        std::fprintf(stderr, "N %ld B %ld Dk %ld Dv %ld Din %ld S %ld G %ld H %ld P %ld W %ld: %s\n", long(sz.N),
                     long(sz.B), long(sz.Dk), long(sz.Dv), long(sz.Din), long(sz.S), long(sz.G), long(sz.H), long(sz.P),
                     long(sz.W), op.name.c_str());
    const bool integers = op.name.compare(0, 4, "topk") == 0 || op.name.compare(0, 12, "block_sparse") == 0;

    arg_set<float> args = make_args<float>(op, in.next());
    args.num_threads = int(in.pick(1, 3));
    static seqmix::thread_pool pool(2);
    if (in.pick(0, 3) == 0) args.executor = &pool;  // an engine's threads now and then
    args.scale = in.flag() ? 0.0 : double(in.pick(1, 40)) / 10;
    // Half the time, the options inside the entry as well: chunk sizes, windows, dilations,
    // kernel sizes, causal axes, selection sizes, feature maps, softcap, softplus, activation
    // (hostile::entry_options; otherwise the entry's own). Out-of-range picks (an even kernel, a
    // kernel wider than the image) must be refused by the operator and the reference alike.
    if (in.flag()) {
        entry_options& e = args.options;
        const int n = int(sz.N);
        e.chunk_size = int(in.pick(0, 70));
        e.window = int(in.pick(-1, n + 2));
        e.causal = in.flag();
        e.softcap = in.flag() ? 0.0 : double(in.pick(1, 100)) / 10;
        e.window_left = int(in.pick(-1, n));
        e.window_right = int(in.pick(-1, n));
        e.dilation = int(in.pick(1, 4));
        e.kernel_size = int(in.pick(1, 5));
        e.dilation_h = int(in.pick(1, 2));
        e.dilation_w = int(in.pick(1, 3));
        e.causal_axes = int(in.pick(0, 3));
        e.top_k = int(in.pick(1, n + 3));
        e.block_size = int(in.pick(1, 16));
        e.top_blocks = int(in.pick(0, 4));
        e.local_blocks = int(in.pick(0, 2));
        e.keep_first = int(in.flag());
        e.feature_map = int(in.pick(0, 2));
        e.softplus = int(in.flag());
        e.activation = int(in.flag());
        if (std::getenv("SEQMIX_FUZZ_VERBOSE"))
            std::fprintf(stderr,
                         "options: chunk %d window %d causal %d softcap %g sliding %d %d /%d kernel %d /%d,%d axes %d "
                         "top_k %d blocks %d x%d local %d first %d map %d softplus %d activation %d\n",
                         e.chunk_size, e.window, int(e.causal), e.softcap, e.window_left, e.window_right, e.dilation,
                         e.kernel_size, e.dilation_h, e.dilation_w, e.causal_axes, e.top_k, e.block_size, e.top_blocks,
                         e.local_blocks, e.keep_first, e.feature_map, e.softplus, e.activation);
    }
    // The states as a pool: sequence b in slot B - 1 - b of B + 1 slots (slot B unused).
    if (!op.step && args.has("final_state") && in.flag()) {
        auto& fin = args.get("final_state");
        std::vector<index_t> pool_shape = fin.shape;
        pool_shape[0] += 1;
        reshape(fin, pool_shape, 0.25f);
        for (index_t b = 0; b < sz.B; ++b) args.pool_indices.push_back(std::int32_t(sz.B - 1 - b));
        args.get("final_state").r = role::state_inout;
    }
    for (auto& a : args.args)
        if (is_read(a.r))
            for (auto& x : *a.storage) x = value_of(a.r, in.next(), integers && a.r == role::input);
    // Without the softplus, the scans take their time steps as given: positive, as in use. A
    // negative step under a negative A grows the state by exp(|delta A|) a token, which overflows
    // float long before the double reference (found by this fuzzer: a state of Inf, then
    // Inf * silu(0) = NaN where the reference has 0).
    if (args.options.softplus == 0)
        for (const char* name : {"delta", "dt", "delta_bias", "dt_bias"})
            if (args.has(name))
                for (auto& x : *args.get(name).storage) x = std::fabs(x);
    // Now and then one argument (not an options array) one element longer on its last axis.
    bool tampered = false;
    if (in.pick(0, 15) == 0) {
        auto& a = args.args[std::size_t(in.pick(0, index_t(args.args.size()) - 1))];
        if (!is_param(a.r) && !a.shape.empty()) {
            auto shape = a.shape;
            shape.back() += 1;
            reshape(a, shape, 0.5f);
            tampered = true;
        }
    }

    auto ref = convert<double>(args);
    const auto before = snapshot(args);
    const std::string fast_error = run_caught([&] { op.run(args); });
    // A step's reference is the full operator's, token by token (hostile_catalog.hpp): it does
    // not check the step's own shapes, so a step refusing a tampered argument is taken as is.
    // Any other refusal must be the reference's too (bad values: a gate or A of -inf).
    const bool step_shape_error = op.step && tampered && !fast_error.empty();
    const std::string ref_error = step_shape_error ? fast_error : run_caught([&] { op.reference(ref); });
    if (fast_error.empty() != ref_error.empty())
        finding(op.name + ": the operator says '" + fast_error + "', the reference '" + ref_error + "'");
    if (!fast_error.empty()) {
        const auto after = snapshot(args);
        for (std::size_t i = 0; i < before.size(); ++i)
            if (!same_bits(before[i], after[i]))
                finding(op.name + ": a failing call wrote '" + args.args[i].name + "'");
        return 0;
    }
    for (std::size_t i = 0; i < args.args.size(); ++i) {
        const auto& a = args.args[i];
        if (!is_written(a.r)) continue;
        const auto& g = *a.storage;
        const auto& r = *ref.args[i].storage;
        const comparison c = compare_with(g, r, true);
        // Relative to the largest magnitude, but never below 1 (so at least 1e-4 absolute): a
        // smaller output can be the sum of terms up to about 20 that cancel (inputs up to 4,
        // times a feature map's or a gate's factor, over up to 72 tokens), and float's own error
        // is about 1e-7 of the terms. Found by this fuzzer: 1.3e-9 on an output of 1.8e-8 and
        // 1.7e-7 on a state of 3.9e-4 (1 - beta k.k in the delta rule for unit keys), and 1.8e-6
        // on a state of 3.0e-3 (linear attention with elu + 1, 35 tokens of products up to 13).
        const double scale = std::max(c.mag, 1.0);
        if ((c.mismatched || c.err > 1e-4 * scale) && std::getenv("SEQMIX_FUZZ_VERBOSE")) {
            for (const auto& b : args.args) {
                std::fprintf(stderr, "%s:", b.name.c_str());
                for (float x : *b.storage) std::fprintf(stderr, " %.9g", x);
                std::fprintf(stderr, "\n");
            }
            std::fprintf(stderr, "reference %s:", a.name.c_str());
            for (double x : r) std::fprintf(stderr, " %.9g", x);
            std::fprintf(stderr, "\n");
        }
        if (c.mismatched)
            finding(op.name + ", " + a.name + "[" + std::to_string(c.first) + "]: " + number(g[c.first]) +
                    ", the reference " + number(r[c.first]));
        if (c.err > 1e-4 * scale)
            finding(op.name + ", " + a.name + ": error " + number(c.err) + " relative to " + number(c.mag));
    }
    return 0;
}
