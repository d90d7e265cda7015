#pragma once
// The policies of the attention main loop (kernels/attention_main_loop.hpp):
//   - a mask: which keys a query row sees (band_mask: causal and sliding window, measured
//     from the bottom-right aligned diagonal);
//   - a logits transform applied to every visible score (logits_transform: softcap, ALiBi);
//   - a key schedule: the key tiles a work unit visits, and for each tile whether a mask
//     edge crosses it (interval_schedule). Tiles that no edge crosses run unmasked.
// A new variant is a new policy here, not a new loop (docs/design.md shows sliding window
// with dilation, a 2-D neighborhood and a block list as schedules).
#include <algorithm>
#include <limits>

#include "../core/abi.hpp"
#include "../core/tensor_view.hpp"
#include "../simd/vec.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

// Keys [lo, hi] of one row (lo > hi: none).
struct key_range {
    index_t lo, hi;
    bool empty() const { return lo > hi; }
};

// Query i of a sequence with q_len queries and k_len keys sees key j iff, with the
// diagonal d = i + k_len - q_len: j <= d (causal), d - window_left <= j (window_left >= 0),
// j <= d + window_right (window_right >= 0), 0 <= j < k_len.
struct band_mask {
    bool causal = false;
    index_t window_left = -1, window_right = -1;  // -1: unbounded

    key_range keys_of(index_t diag, index_t k_len) const {
        index_t lo = 0, hi = k_len - 1;
        if (window_left >= 0) lo = std::max(lo, diag - window_left);
        if (causal) hi = std::min(hi, diag);
        if (window_right >= 0) hi = std::min(hi, diag + window_right);
        return {lo, hi};
    }
    bool any() const { return causal || window_left >= 0 || window_right >= 0; }
};

// s -> softcap * tanh(s / softcap) (Gemma 2, Grok), then s -> s - slope * |d - j| (ALiBi,
// d the row's diagonal). Applied to one vector of scores: rel = d - j per lane, slope per
// lane (rows in lanes) or broadcast (keys in lanes).
template <class T>
struct logits_transform {
    T softcap = T(0);  // 0: off
    bool alibi = false;

    bool any() const { return softcap > T(0) || alibi; }
    simd::vec<T> operator()(simd::vec<T> s, const simd::vec<T>& rel, const simd::vec<T>& slope) const {
        if (softcap > T(0)) s = simd::vec<T>(softcap) * simd::tanh(s * simd::vec<T>(T(1) / softcap));
        if (alibi) s = simd::fma(-slope, simd::abs(rel), s);
        return s;
    }
};

// The keys a work unit visits and which of them each row sees. A schedule gives:
//   for_each_block(block, fn): fn(j0, n) for its keys in blocks of at most `block`, each a
//     run of consecutive keys (the engine scores a block at once, then cuts it into tiles);
//   masked(j0, n): whether some row of the unit does not see every key of a tile;
//   visible(r, j0): the keys row r sees, asked only for masked tiles (an interval; keys
//     outside the tile are ignored);
//   size() and slice(first, count): the split-KV chunks, in the schedule's key order.

// The split-KV slice of a schedule that visits its keys as runs (ranges of consecutive keys,
// in the schedule's order: a neighbourhood's lines, a list's blocks): the keys at positions
// [first, first + count) of that order, cut into blocks of at most `block` keys.
struct run_slice {
    index_t first = 0, count = std::numeric_limits<index_t>::max();

    // runs(visit) calls visit(j0, n) for each run; fn(j0, n) gets the sliced blocks.
    template <class Runs, class Fn>
    void blocks(index_t block, Runs&& runs, Fn&& fn) const {
        index_t pos = 0;  // keys of the schedule before this run
        const index_t end = count == std::numeric_limits<index_t>::max() ? count : first + count;
        runs([&](index_t j0, index_t n) {
            const index_t s = std::max(pos, first), e = std::min(pos + n, end);
            for (index_t x = s; x < e; x += block) fn(j0 + x - pos, std::min(block, e - x));
            pos += n;
        });
    }
    index_t size(index_t total) const { return std::max<index_t>(0, std::min(count, total - first)); }
    run_slice sub(index_t f, index_t c, index_t total) const { return {first + f, std::min(c, size(total) - f)}; }
};

// Each row sees the keys [lo[r], hi[r]]; the unit visits the union [begin, end), and keys
// [max_lo, min_hi] that every row sees run unmasked (causal, window, whole rows).
struct interval_schedule {
    index_t begin, end;      // keys this unit visits (a split-KV chunk of the rows' span)
    index_t max_lo, min_hi;  // keys every row of the unit sees
    const index_t* lo;       // per row: first and last key it sees
    const index_t* hi;

    template <class Fn>
    void for_each_block(index_t block, Fn&& fn) const {
        for (index_t j0 = begin; j0 < end; j0 += block) fn(j0, std::min(block, end - j0));
    }
    bool masked(index_t j0, index_t n) const { return !(j0 >= max_lo && j0 + n - 1 <= min_hi); }
    key_range visible(index_t r, index_t) const { return {lo[r], hi[r]}; }
    index_t size() const { return std::max<index_t>(0, end - begin); }
    interval_schedule slice(index_t first, index_t count) const {
        interval_schedule s = *this;
        s.begin = begin + first;
        s.end = std::min(end, s.begin + count);
        return s;
    }
};

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
