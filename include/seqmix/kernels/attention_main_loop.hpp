#pragma once
// The attention main loop: for every key tile of a schedule, scores, then the logits
// transform, mask and online-softmax update, then P V into the unit's softmax state.
// Every softmax_attention path runs it: whole key ranges (prefill) and split-KV chunks
// (decode, or too few units for the threads), rows in lanes or keys in lanes, contiguous,
// paged or gathered keys. What a variant changes is its schedule (which keys, which rows see
// them) and its logits transform (kernels/attention_policies.hpp); tile layouts are engines
// (kernels/attention_tiles.hpp), key storage is the engine's keys_type (a kv_rows,
// kernels/kv_rows.hpp, or a neighbourhood's packed windows), and the
// planning, split-KV and merge around it are the attention run (kernels/attention_run.hpp).
#include <algorithm>

#include "../core/abi.hpp"
#include "attention_policies.hpp"
#include "kv_rows.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

// An engine scores Engine::score_tiles tiles at once (keys read in one pass), then runs the
// softmax update and P V tile by tile; the tiles, and so the bits, do not depend on it.
// The schedule's blocks [b0, b0 + bn) are cut into tiles from b0; a masked tile asks the
// schedule, row by row, which of its keys each row sees.
template <class Engine, class Schedule, class Logits>
inline void attention_main_loop(Engine& engine, const Schedule& keys, const typename Engine::keys_type& kv,
                                const Logits& logits) {
    constexpr index_t tile = Engine::key_tile;
    index_t ahead = keys.size();  // keys of the schedule after the current block (prefetching)
    keys.for_each_block(tile * Engine::score_tiles, [&](index_t b0, index_t bn) {
        ahead -= bn;
        engine.scores(kv, b0, bn, ahead);
        for (index_t j0 = b0; j0 < b0 + bn; j0 += tile) {
            const index_t n = std::min(tile, b0 + bn - j0);
            const bool masked = keys.masked(j0, n);
            engine.softmax(j0, n, masked, keys, logits);
            engine.accumulate(kv, j0, n, masked);
        }
    });
}

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
