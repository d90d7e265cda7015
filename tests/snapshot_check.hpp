#pragma once
// The snapshot check every full recurrent operator runs (state pools with snapshot_interval):
// packed sequences on one pool, a snapshot every `interval` tokens, against the double
// reference, bit for bit for 1, 2, 3 and 5 threads, and as an engine uses them (speculative
// decoding with rollback, prefix caching): each snapshot is bit for bit the final state of a
// call over the tokens before it, and a call restarted from it gives the rest of the outputs
// and the same final state.
#include <seqmix/contract/recurrent.hpp>
#include <seqmix/core/tensor.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "catch.hpp"
#include "test_util.hpp"

namespace seqmix_test {

// run(reference, opt, t0, n, pool, out): the family's operator (reference: its double
// reference) over tokens [t0, t0 + n) of its packed inputs (batch 1), the pool given as both
// initial_state and final_state, the outputs of those tokens into out ([1, n, ...]).
// lens: the sequences (the second one is padding when there are three or more, the third
// starts from zeros); state: one slot's shape; out_rest: the output shape after [1, n].
template <std::size_t RS, std::size_t RO, class Options, class Run>
void check_snapshots(const Options& base, const std::vector<index_t>& lens, const std::array<index_t, RS - 1>& state,
                     const std::array<index_t, RO - 2>& out_rest, const std::vector<index_t>& intervals, Run&& run) {
    using seqmix::tensor;
    using seqmix::tensor_view;
    const index_t S = index_t(lens.size());
    std::vector<std::int32_t> cu{0};
    for (index_t n : lens) cu.push_back(cu.back() + std::int32_t(n));
    const index_t N = cu.back(), pad = S >= 3 ? 1 : -1, cold = S >= 3 ? 2 : -1;
    auto out_shape = [&](index_t n) {
        std::array<index_t, RO> shape{1, n};
        std::copy(out_rest.begin(), out_rest.end(), shape.begin() + 2);
        return shape;
    };
    auto slot_of = [](const tensor<double, RS>& pool, index_t slot) { return slice(pool.view(), 0, slot, 1); };
    for (index_t every : intervals) {
        INFO("snapshot_interval " << every << ", " << S << " sequences");
        index_t per = 1;
        for (index_t n : lens) per = std::max(per, n / every);
        const index_t slots = S + S * per + 1;  // state slots, snapshot slots, one nobody names
        std::array<index_t, RS> pool_shape{slots};
        std::copy(state.begin(), state.end(), pool_shape.begin() + 1);
        const auto pool0 = random_tensor<double, RS>(pool_shape, 7, -0.5, 0.5);
        std::vector<std::int32_t> idx(static_cast<std::size_t>(S)), snaps(static_cast<std::size_t>(S * per)),
            none(static_cast<std::size_t>(per), -1);
        std::vector<std::uint8_t> has(static_cast<std::size_t>(S), 1);
        for (index_t s = 0; s < S; ++s) idx[std::size_t(s)] = s == pad ? seqmix::pad_slot : std::int32_t(s);
        if (cold >= 0) has[std::size_t(cold)] = 0;
        for (index_t i = 0; i < S * per; ++i) snaps[std::size_t(i)] = std::int32_t(S + i);
        snaps[0] = -1;  // sequence 0 skips its first snapshot
        Options o = base;
        o.cu_seqlens = cu.data();
        o.num_seqs = int(S);
        o.state_indices = idx.data();
        o.has_initial_state = has.data();
        o.snapshot_interval = int(every);
        o.snapshot_indices = snaps.data();
        o.max_snapshots = int(per);
        o.num_threads = 1;
        auto pool = convert<double>(pool0), ref_pool = convert<double>(pool0);
        tensor<double, RO> out(out_shape(N), 7.0), ref_out(out_shape(N), 7.0);
        run(false, o, 0, N, pool.view(), out.view());
        run(true, o, 0, N, ref_pool.view(), ref_out.view());
        CHECK(max_rel_error(out, ref_out) < 1e-9);
        CHECK(max_rel_error(pool, ref_pool) < 1e-9);
        // Slots nobody names, or named by a skipped snapshot or a padding sequence, untouched.
        std::vector<index_t> unnamed{slots - 1, S};
        for (index_t k = 0; pad >= 0 && k < per; ++k) unnamed.push_back(S + pad * per + k);
        for (index_t slot : unnamed) REQUIRE(bitwise_equal(slot_of(pool, slot), slot_of(pool0, slot)));
        for (int threads : {2, 3, 5}) {
            INFO(threads << " threads");
            auto pool_t = convert<double>(pool0);
            tensor<double, RO> out_t(out_shape(N), 7.0);
            o.num_threads = threads;
            run(false, o, 0, N, pool_t.view(), out_t.view());
            REQUIRE(bitwise_equal(out_t, out));
            REQUIRE(bitwise_equal(pool_t, pool));
        }
        for (index_t s = 0; s < S; ++s) {
            if (s == pad) continue;
            const index_t len = lens[std::size_t(s)];
            for (index_t k = 0; k < len / every; ++k) {
                const std::int32_t snap = snaps[std::size_t(s * per + k)];
                if (snap < 0) continue;
                const index_t j = (k + 1) * every;
                INFO("sequence " << s << ", snapshot after token " << j);
                Options one = base;
                one.snapshot_interval = int(every);
                one.snapshot_indices = none.data();
                one.max_snapshots = int(per);
                // The first j tokens alone: their final state is the snapshot.
                auto prefix_pool = convert<double>(pool0);
                tensor<double, RO> prefix_out(out_shape(j));
                one.state_indices = &idx[std::size_t(s)];
                one.has_initial_state = &has[std::size_t(s)];
                run(false, one, cu[std::size_t(s)], j, prefix_pool.view(), prefix_out.view());
                REQUIRE(bitwise_equal(slot_of(prefix_pool, idx[std::size_t(s)]), slot_of(pool, snap)));
                REQUIRE(bitwise_equal(prefix_out.view(), slice(out.view(), 1, cu[std::size_t(s)], j)));
                if (j == len) continue;
                // Restarted from the snapshot (rolled back to token j): the rest, the same final state.
                auto rest_pool = convert<double>(pool);
                tensor<double, RO> rest_out(out_shape(len - j));
                one.state_indices = &snap;
                one.has_initial_state = nullptr;
                run(false, one, cu[std::size_t(s)] + j, len - j, rest_pool.view(), rest_out.view());
                REQUIRE(bitwise_equal(rest_out.view(), slice(out.view(), 1, cu[std::size_t(s)] + j, len - j)));
                REQUIRE(bitwise_equal(slot_of(rest_pool, snap), slot_of(pool, idx[std::size_t(s)])));
            }
        }
    }
}

}  // namespace seqmix_test
