// Hostile inputs, one table-driven test per class, over every operator in the catalog
// (hostile_catalog.hpp). Each case ends in a seqmix::error with nothing written, or in the
// reference's answer.
#include <seqmix/core/parallel.hpp>
#include <seqmix/core/scratch.hpp>
#include <seqmix/core/tensor.hpp>

#include <atomic>
#include <cmath>
#include <limits>
#include <string>
#include <thread>

#include "catch.hpp"
#include "hostile_catalog.hpp"

using namespace hostile;
using seqmix::index_t;

namespace {

const double inf = std::numeric_limits<double>::infinity();

bool op_has(const op_spec& op, const std::string& name) {
    for (const auto& d : op.args)
        if (d.name == name) return true;
    return false;
}

// Runs op on args expecting a seqmix::error that contains every needle; no buffer changes.
void expect_rejected(const op_spec& op, const arg_set<float>& args, const std::vector<std::string>& needles) {
    const auto before = snapshot(args);
    std::string what;
    try {
        op.run(args);
    } catch (const seqmix::error& e) {
        what = e.what();
    }
    INFO(op.name << ": " << (what.empty() ? std::string("no error") : what));
    REQUIRE(!what.empty());
    for (const auto& n : needles) CHECK(what.find(n) != std::string::npos);
    const auto after = snapshot(args);
    for (std::size_t i = 0; i < before.size(); ++i) {
        INFO("argument " << args.args[i].name << " was written");
        CHECK(same_bits(before[i], after[i]));
    }
}

// Makes `writer` overlap `reader`: one buffer holds reader's values, writer starts halfway in.
template <class T>
void overlap(arg_set<T>& s, const std::string& writer, const std::string& reader) {
    auto& r = s.get(reader);
    auto& w = s.get(writer);
    const index_t nr = count(r.shape), nw = count(w.shape);
    auto buf = std::make_shared<std::vector<T>>(std::size_t(nr + nw), T(-7.25));
    std::copy(r.data, r.data + nr, buf->data());
    r.storage = buf;
    r.strides = contiguous_strides(r.shape);
    r.data = buf->data();
    w.storage = buf;
    w.strides = contiguous_strides(w.shape);
    w.data = buf->data() + nr / 2;
}

// The class of the double reference everywhere (see same_class), and close to it where it
// is finite.
void check_like_reference(const op_spec& op, const arg_set<float>& got, const arg_set<double>& ref, double tol,
                          bool exact_class = true) {
    for (std::size_t i = 0; i < got.args.size(); ++i) {
        const auto& a = got.args[i];
        if (!is_written(a.r)) continue;
        const auto& g = *a.storage;
        const auto& r = *ref.args[i].storage;
        const comparison c = compare_with(g, r, exact_class);
        INFO(op.name << ", " << a.name << ": " << c.mismatched
                     << " elements of another class than the reference's (first at " << c.first << ": " << g[c.first]
                     << " vs reference " << r[c.first] << ")");
        CHECK(c.mismatched == 0);
        INFO(op.name << ", " << a.name << ": error " << c.err << " relative to " << c.mag);
        CHECK(c.err <= tol * std::max(c.mag, 1e-30));
    }
}

// The fast operator in float and the reference in double on the same values.
void compare_with_reference(const op_spec& op, const arg_set<float>& args, double tol, bool exact_class = true) {
    auto ref = convert<double>(args);
    op.run(args);
    op.reference(ref);
    check_like_reference(op, args, ref, tol, exact_class);
}

// Flat index of element [0, t, 0, ..., 1] (a token's second channel) or a middle element.
template <class T>
index_t token_element(const op_spec& op, const arg<T>& a, index_t t) {
    if (op.seq_axis < 0 || a.shape.size() < 3 || a.r != role::input) return count(a.shape) / 2;
    return std::min(t, a.shape[1] - 1) * a.strides[1] + std::min<index_t>(1, a.shape.back() - 1);
}

// The sizes of the thread tests: every schedule of the chunk pipeline. Two batch rows of a
// short sequence (head groups); one long sequence (segments: more threads than heads, one
// vector per state row); one sequence with wide value rows (the value split, whose phases meet
// at barriers: the ThreadSanitizer build of tests/run.sh checks them).
std::vector<catalog_sizes> threaded_sizes() {
    catalog_sizes short_batch, long_one, wide_one;
    long_one.N = 700;
    long_one.B = 1;
    wide_one.N = 300;
    wide_one.B = 1;
    wide_one.Dk = 8;
    wide_one.Dv = 40;
    wide_one.H = 2;
    wide_one.P = 40;
    return {short_batch, long_one, wide_one};
}

void for_each_state_op(const std::vector<op_spec>& ops, const std::function<void(const op_spec&)>& fn) {
    for (const auto& op : ops)
        if (!op.step && make_args<float>(op, 1).has("final_state")) fn(op);
}

}  // namespace

TEST_CASE("class 1, states in place: final_state == initial_state is correct for every schedule") {
    for_each_state_op(catalog(600, 1), [](const op_spec& op) {
        auto base = make_args<float>(op, 11);
        op.run(base);  // separate buffers, one thread
        for (int threads : {1, 2, 3, 5, 8}) {
            auto args = make_args<float>(op, 11);
            args.num_threads = threads;
            auto& fin = args.get("final_state");
            const auto& init = args.get("initial_state");
            fin.storage = init.storage;
            fin.data = init.data;
            op.run(args);
            INFO(op.name << ", " << threads << " threads");
            CHECK(same_bits(*args.get("out").storage, *base.get("out").storage));
            CHECK(same_bits(*args.get("initial_state").storage, *base.get("final_state").storage));
        }
        // Partial overlaps: final_state one element past initial_state, out over initial_state.
        auto args = make_args<float>(op, 12);
        auto& init = args.get("initial_state");
        auto buf = std::make_shared<std::vector<float>>(init.storage->size() + 1);
        std::copy(init.storage->begin(), init.storage->end(), buf->begin());
        init.storage = buf;
        init.data = buf->data();
        args.get("final_state").storage = buf;
        args.get("final_state").data = buf->data() + 1;
        expect_rejected(op, args, {"'final_state'", "in-place", "partly overlapping"});
        auto args2 = make_args<float>(op, 13);
        overlap(args2, "out", "initial_state");
        expect_rejected(op, args2, {"'out'", "'initial_state'", "disjoint"});
    });
}

TEST_CASE("class 2, aliasing: every written argument against every other argument is an error") {
    for (const auto& op : catalog()) {
        const auto proto = make_args<float>(op, 1);
        for (const auto& w : proto.args) {
            if (!is_written(w.r)) continue;
            for (const auto& other : proto.args) {
                if (other.name == w.name || other.name == "log_decay" || is_param(other.r)) continue;  // options arrays
                auto args = make_args<float>(op, 21);
                overlap(args, w.name, other.name);
                // The pair is reported by whichever of the two the rules check first.
                INFO(op.name << ": '" << w.name << "' over '" << other.name << "'");
                expect_rejected(op, args, {"'" + w.name + "'", "'" + other.name + "'"});
            }
        }
    }
}

TEST_CASE("class 3, state pools: duplicate slots are an error; pad_slot skips its row") {
    for (const auto& op : catalog()) {
        if (!op.step) continue;
        auto dup = make_args<float>(op, 31);
        dup.state_indices = {4, 4};
        expect_rejected(op, dup, {"'state_indices'", "distinct slots", "slot 4 at rows 0 and 1"});
        auto bad = make_args<float>(op, 32);
        bad.state_indices = {-2, 1};
        expect_rejected(op, bad, {"'state_indices'", "given -2"});
        for (int threads : {1, 2}) {
            auto pad = make_args<float>(op, 33);
            pad.num_threads = threads;
            pad.state_indices = {seqmix::pad_slot, 2};
            const auto before = *pad.get("state").storage;
            const auto out_before = *pad.get("out").storage;
            auto ref = convert<double>(pad);
            op.run(pad);
            op.reference(ref);
            check_like_reference(op, pad, ref, 1e-5);
            // Row 0: output untouched; only slot 2 of the pool changed.
            const auto& out = *pad.get("out").storage;
            const index_t row = count(pad.get("out").shape) / 2;
            for (index_t i = 0; i < row; ++i) REQUIRE(out[std::size_t(i)] == out_before[std::size_t(i)]);
            const auto& st = *pad.get("state").storage;
            const index_t slot = count(pad.get("state").shape) / pad.get("state").shape[0];
            for (index_t i = 0; i < count(pad.get("state").shape); ++i)
                if (i / slot != 2) REQUIRE(st[std::size_t(i)] == before[std::size_t(i)]);
        }
    }
}

TEST_CASE(
    "class 3b, serving: full operators on a state pool with snapshots equal the reference; bad tables are errors") {
    for (const auto& op : catalog()) {
        if (op.step || !op_has(op, "final_state")) continue;
        index_t B = 0, N = 0;
        for (const auto& d : op.args)
            if (d.name == "out") B = d.shape[0], N = d.shape[1];
        for (index_t every : {1, 29}) {
            // The pool: final_state with room for every row's state and snapshots, read and written.
            const index_t per = N / every, slots = B * (per + 1) + 1;
            op_spec pooled = op;
            for (auto& d : pooled.args)
                if (d.name == "final_state") d.shape[0] = slots, d.r = role::state_inout;
            auto served = [&](unsigned seed) {
                auto a = make_args<float>(pooled, seed);
                for (index_t b = 0; b < B; ++b) a.pool_indices.push_back(std::int32_t(slots - 1 - b));
                for (index_t i = 0; i < B * per; ++i) a.snapshot_indices.push_back(std::int32_t(i));
                a.snapshot_indices[1] = -1;  // skipped
                a.snapshot_interval = int(every);
                a.max_snapshots = int(per);
                return a;
            };
            for (int threads : {1, 2}) {
                INFO(op.name << ", snapshot_interval " << every << ", " << threads << " threads");
                auto args = served(51);
                args.num_threads = threads;
                auto ref = convert<double>(args);
                op.run(args);
                op.reference(ref);
                check_like_reference(op, args, ref, 1e-5);
            }
            INFO(op.name << ", snapshot_interval " << every);
            auto dup = served(52);
            dup.snapshot_indices[2] = dup.snapshot_indices[3];
            expect_rejected(pooled, dup,
                            {"'snapshot_indices'", "used once", "snapshot_indices[2] and snapshot_indices[3]"});
            auto clash = served(53);
            clash.snapshot_indices[0] = clash.pool_indices[1];
            expect_rejected(pooled, clash,
                            {"'snapshot_indices'", "used once", "state_indices[1] and snapshot_indices[0]"});
            auto far = served(54);
            far.snapshot_indices[3] = std::int32_t(slots);
            expect_rejected(pooled, far,
                            {"'snapshot_indices'", "snapshot_indices[3]", "given " + std::to_string(slots)});
            auto few = served(55);
            few.max_snapshots = int(per - 1);
            expect_rejected(pooled, few, {"'max_snapshots'", "expected at least " + std::to_string(per)});
            auto negative = served(56);
            negative.snapshot_interval = -every;
            expect_rejected(pooled, negative, {"'snapshot_interval'", ">= 0"});
            auto table = served(57);
            table.snapshot_indices.clear();
            expect_rejected(pooled, table, {"'snapshot_indices'", "nullptr"});
            auto dense = make_args<float>(op, 58);
            dense.snapshot_interval = int(every);
            dense.max_snapshots = int(per);
            dense.snapshot_indices = served(58).snapshot_indices;
            expect_rejected(op, dense, {"'snapshot_interval'", "without state_indices"});
        }
    }
}

TEST_CASE("class 4, gates at the extremes: -inf, huge then mild, mixed; within 1e-5 of the reference") {
    // Patterns for the log gate of token t, channel c (per-head decays use t = 0, c = head).
    const std::vector<std::pair<const char*, std::function<double(index_t, index_t)>>> patterns = {
        {"-inf at some tokens",
         [](index_t t, index_t c) { return (t % 23 == 3 || (c == 1 && t % 9 == 0)) ? -inf : -0.1; }},
        {"-1e30 then -1", [](index_t t, index_t) { return t % 32 == 0 ? -1e30 : -1.0; }},
        {"-1e4 then -1e-2", [](index_t t, index_t) { return t % 32 == 0 ? -1e4 : -1e-2; }},
        {"-40 then -1e-3", [](index_t t, index_t) { return t % 8 == 0 ? -40.0 : -1e-3; }},
        {"0 to -20", [](index_t t, index_t c) { return -20.0 * double((t * 7 + c * 3) % 11) / 10.0; }},
        {"0 and -inf mixed", [](index_t t, index_t c) { return (t + c) % 3 == 0 ? -inf : 0.0; }},
    };
    for (const auto& op : catalog()) {
        auto proto = make_args<float>(op, 1);
        const std::string gname = proto.has("g") ? "g" : proto.has("log_decay") ? "log_decay" : "";
        if (gname.empty()) continue;
        for (const auto& [name, pattern] : patterns) {
            for (int threads : {1, 2}) {
                auto args = make_args<float>(op, 41);
                args.num_threads = threads;
                auto& g = args.get(gname);
                const auto& sh = g.shape;
                for (index_t i = 0; i < count(sh); ++i) {
                    // token = index along the seq axis (full ops), channel = last axis
                    const index_t t = (op.seq_axis >= 0 && sh.size() >= 3) ? (i / g.strides[1]) % sh[1] : i / sh.back();
                    const index_t c = i % sh.back();
                    (*g.storage)[std::size_t(i)] =
                        float(std::max(pattern(t, c), -double(std::numeric_limits<float>::infinity())));
                }
                INFO(op.name << ", gates " << name << ", " << threads << " threads");
                compare_with_reference(op, args, 1e-5);
            }
        }
    }
}

TEST_CASE(
    "class 5, NaN and Inf: NaN exactly where the reference has NaN; Inf non-finite where it is, never leaking to other "
    "tokens") {
    for (const auto& op : catalog()) {
        const auto proto = make_args<float>(op, 1);
        for (const auto& a : proto.args) {
            if (!(a.r == role::input || a.r == role::state_in || a.r == role::state_inout)) continue;
            for (double bad : {inf, -inf, std::nan("")}) {
                for (index_t t : {index_t(5), index_t(40)}) {
                    auto args = make_args<float>(op, 51);
                    auto& x = args.get(a.name);
                    (*x.storage)[std::size_t(token_element(op, x, t))] = float(bad);
                    INFO(op.name << ": " << bad << " in '" << a.name << "' at token " << t);
                    compare_with_reference(op, args, 1e-4, std::isnan(bad));
                }
            }
        }
    }
}

TEST_CASE("class 6, options are validated in the element type") {
    for (const auto& op : catalog()) {
        // Options arrays (D, biases): finite, checked before anything is written.
        for (const auto& a : make_args<float>(op, 60).args) {
            if (!is_param(a.r)) continue;
            auto bad = make_args<float>(op, 60);
            (*bad.get(a.name).storage)[1] = std::nanf("");
            expect_rejected(op, bad, {"'" + a.name + "'", "finite", a.name + "[1]"});
        }
        if (!op.has_scale) continue;
        auto args = make_args<float>(op, 61);
        args.scale = 1e300;  // finite as a double, infinite as a float
        expect_rejected(op, args, {"'scale'", "finite as float"});
        args.scale = std::nan("");
        expect_rejected(op, args, {"'scale'"});
        auto d = convert<double>(make_args<float>(op, 61));
        d.scale = 1e-300;
        CHECK_NOTHROW(op.run_double(d));
    }
    // ALiBi slopes and softcap (softmax attention): read and checked before anything is written.
    seqmix::tensor<float, 4> q({1, 8, 2, 4}, 0.5f), k({1, 8, 2, 4}, 0.5f), v({1, 8, 2, 4}, 0.5f),
        out({1, 8, 2, 4}, 3.0f);
    seqmix::attention_options o;
    const float slopes[] = {0.5f, std::nanf("")};
    o.alibi_slopes = slopes;
    CHECK_THROWS_WITH(seqmix::softmax_attention(q.view(), k.view(), v.view(), out.view(), o),
                      Catch::Contains("'alibi_slopes'") && Catch::Contains("alibi_slopes[1]"));
    const float huge[] = {0.5f, 3e37f};
    o.alibi_slopes = huge;
    CHECK_THROWS_WITH(seqmix::softmax_attention(q.view(), k.view(), v.view(), out.view(), o),
                      Catch::Contains("alibi_slopes[1]"));
    o.alibi_slopes = nullptr;
    o.softcap = 1e-300;  // its inverse is not finite as a float
    CHECK_THROWS_WITH(seqmix::softmax_attention(q.view(), k.view(), v.view(), out.view(), o),
                      Catch::Contains("'softcap"));
    for (index_t i = 0; i < out.size(); ++i) REQUIRE(out.data()[i] == 3.0f);
}

TEST_CASE("class 7, shapes: negative extents, overflowing counts or reaches, stride-0 outputs, empty dims") {
    for (const auto& op : catalog()) {
        const auto proto = make_args<float>(op, 1);
        for (const auto& a : proto.args) {
            if (a.name == "log_decay" || is_param(a.r)) continue;  // an options array, not a view
            INFO(op.name << ", argument " << a.name);
            auto neg = make_args<float>(op, 71);
            neg.get(a.name).shape[0] = -1;
            expect_rejected(op, neg, {"'" + a.name + "'", "extents >= 0"});
            auto big = make_args<float>(op, 72);
            auto& big_shape = big.get(a.name).shape;
            big_shape[0] = index_t(1) << 62;
            if (big_shape.size() > 1) big_shape[1] = 64;  // the count overflows; rank 1: its reach in bytes
            expect_rejected(op, big,
                            {"'" + a.name + "'", big_shape.size() > 1 ? "fits in 64 bits" : "fits in 63 bits"});
            auto reach = make_args<float>(op, 73);
            reach.get(a.name).strides[0] = std::numeric_limits<index_t>::max() / 2;
            expect_rejected(op, reach, {"'" + a.name + "'", "reach fits in 63 bits"});
            if (is_written(a.r)) {
                auto zero = make_args<float>(op, 74);
                auto& w = zero.get(a.name);
                std::size_t axis = 0;
                while (w.shape[axis] <= 1) ++axis;
                w.strides[axis] = 0;
                expect_rejected(op, zero, {"'" + a.name + "'", "elements are distinct"});
            }
        }
        // A value dim (or channel count) of 0 names its argument.
        auto args = make_args<float>(op, 75);
        args.get(op.channel_arg).shape.back() = 0;
        expect_rejected(op, args, {"'" + op.channel_arg + "'", op.channel_message});
    }
    CHECK_THROWS_WITH((seqmix::tensor<float, 4>({-1, 2, 2, 2})), Catch::Contains("extents >= 0"));
    CHECK_THROWS_WITH((seqmix::tensor<float, 2>({index_t(1) << 40, index_t(1) << 40})),
                      Catch::Contains("element count"));
}

TEST_CASE("class 9, threads: bitwise equal for 1, 2, 3, 5, 8 threads, 1000 threads, and inside a parallel region",
          "[threads]") {
    for (const catalog_sizes& sizes : threaded_sizes()) {
        const index_t N = sizes.N;
        for (const auto& op : catalog(sizes)) {
            auto base = make_args<float>(op, 91);
            op.run(base);
            for (int threads : {2, 3, 5, 8, 1000}) {
                auto args = make_args<float>(op, 91);
                args.num_threads = threads;
                op.run(args);
                INFO(op.name << ", N " << N << " B " << sizes.B << " Dv " << sizes.Dv << ", " << threads << " threads");
                for (std::size_t i = 0; i < args.args.size(); ++i)
                    CHECK(same_bits(*args.args[i].storage, *base.args[i].storage));
            }
#if defined(_OPENMP)
            // Called from inside a user's parallel region: each thread runs its own problem.
            std::vector<arg_set<float>> per_thread;
            for (int t = 0; t < 2; ++t) {
                per_thread.push_back(make_args<float>(op, 91));
                per_thread.back().num_threads = 0;
            }
            bool failed = false;
#pragma omp parallel num_threads(2)
            {
                try {
                    op.run(per_thread[std::size_t(omp_get_thread_num())]);
                } catch (...) {
#pragma omp critical
                    failed = true;
                }
            }
            CHECK_FALSE(failed);
            for (const auto& args : per_thread)
                for (std::size_t i = 0; i < args.args.size(); ++i)
                    CHECK(same_bits(*args.args[i].storage, *base.args[i].storage));
#endif
        }
    }
}

namespace {
// A thread_pool that counts its teams: proves a call ran on it.
class counting_pool final : public seqmix::executor {
public:
    explicit counting_pool(int threads) : pool_(threads) {}
    int concurrency() const override { return pool_.concurrency(); }
    void run(int team, const seqmix::team_task& task) override {
        ++teams;
        pool_.run(team, task);
    }
    std::atomic<int> teams{0};

private:
    seqmix::thread_pool pool_;
};
}  // namespace

TEST_CASE("class 9b, engines' threads: an executor gives the OpenMP bits; calls from several std::threads at once",
          "[threads]") {
    for (const catalog_sizes& sizes : threaded_sizes()) {
        const index_t N = sizes.N;
        counting_pool pool(3);
        for (const auto& op : catalog(sizes)) {
            auto base = make_args<float>(op, 91);
            op.run(base);
            // On the engine's pool: all its threads (0), fewer (2), more than it has (5: capped).
            for (int threads : {0, 2, 5}) {
                auto args = make_args<float>(op, 91);
                args.num_threads = threads;
                args.executor = &pool;
                const int teams_before = pool.teams;
                op.run(args);
                INFO(op.name << ", N " << N << " B " << sizes.B << " Dv " << sizes.Dv << ", " << threads
                             << " threads on a pool of 3");
                // Each operator opened its team on the pool (at B = 1 the state-space steps have
                // one work item, which runs on the calling thread).
                if (N == 70) CHECK(pool.teams > teams_before);
                for (std::size_t i = 0; i < args.args.size(); ++i)
                    CHECK(same_bits(*args.args[i].storage, *base.args[i].storage));
            }
            // Three user threads calling at once, each on its own data: two share the pool (they
            // take turns on it), one runs on OpenMP with 2 threads.
            std::vector<arg_set<float>> per_thread;
            for (int t = 0; t < 3; ++t) {
                per_thread.push_back(make_args<float>(op, 91));
                per_thread.back().num_threads = t < 2 ? 0 : 2;
                per_thread.back().executor = t < 2 ? &pool : nullptr;
            }
            std::atomic<int> failures{0};
            std::vector<std::thread> users;
            for (auto& args : per_thread)
                users.emplace_back([&] {
                    try {
                        op.run(args);
                    } catch (...) {
                        ++failures;
                    }
                });
            for (auto& u : users) u.join();
            INFO(op.name << ", N " << N << " B " << sizes.B << " Dv " << sizes.Dv << ", concurrent calls");
            CHECK(failures == 0);
            for (const auto& args : per_thread)
                for (std::size_t i = 0; i < args.args.size(); ++i)
                    CHECK(same_bits(*args.args[i].storage, *base.args[i].storage));
            // The calling thread's scratch released, then the call again: the same bits.
            const std::size_t held = seqmix::thread_scratch_bytes();
            CHECK(seqmix::release_thread_scratch() == held);
            CHECK(seqmix::thread_scratch_bytes() == 0);
            auto again = make_args<float>(op, 91);
            op.run(again);
            for (std::size_t i = 0; i < again.args.size(); ++i)
                CHECK(same_bits(*again.args[i].storage, *base.args[i].storage));
        }
        INFO("N " << N);
        CHECK(pool.teams > 0);
    }
}

TEST_CASE(
    "an executor's team: parallel_for rethrows, parallel_team meets at barriers, thread counts resolve to its size",
    "[threads]") {
    counting_pool pool(3);
    const seqmix::executor_scope bind(&pool);
    CHECK(seqmix::available_threads(0) == 3);
    CHECK(seqmix::available_threads(2) == 2);
    CHECK(seqmix::available_threads(8) == 3);
    CHECK(seqmix::processor_count() == 3);
    // Each member adds its index in phase 1; after the barrier every member sees all three.
    // (Catch2's assertions are for the test's own thread: members only count.)
    std::atomic<int> sum{0}, saw_all{0}, team_of_three{0};
    seqmix::parallel_team(3, [&](int t, int nt, const seqmix::team_sync& sync) {
        if (nt == 3) ++team_of_three;
        sum += t + 1;
        sync.barrier();
        if (sum == 6) ++saw_all;
    });
    CHECK(team_of_three == 3);
    CHECK(saw_all == 3);
    CHECK_THROWS_WITH(seqmix::parallel_for(100, 3,
                                           [](std::int64_t i, int) {
                                               if (i == 37) throw seqmix::error("item 37 failed");
                                           }),
                      "item 37 failed");
    CHECK(pool.teams == 2);
}

TEST_CASE("parallel_for rethrows a body's exception after the region, for any thread count", "[threads]") {
    for (int threads : {1, 2, 3, 5}) {
        std::atomic<int> visited{0};
        CHECK_THROWS_WITH(seqmix::parallel_for(100, threads,
                                               [&](std::int64_t i, int) {
                                                   ++visited;
                                                   if (i == 37) throw std::runtime_error("body 37 failed");
                                               }),
                          "body 37 failed");
        CHECK(visited.load() >= 1);
    }
#if defined(_OPENMP)
    // Inside a region that cannot nest, the plan is one thread.
    int seen = -1;
#pragma omp parallel num_threads(2)
    {
#pragma omp single
        seen = seqmix::available_threads(8);
    }
    if (omp_get_max_active_levels() <= 1) CHECK(seen == 1);
#endif
}
