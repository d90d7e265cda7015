#pragma once
// Where the keys and values of one KV head of one attention problem are. A problem's key j
// (its logical index) is a physical key of the cache: first + j * step (step > 1: the keys of
// one residue of a dilated window), or gather[j] (a list of chosen keys: top-k, given
// indices). A physical key is a row at a fixed stride (token-major [B,N,H,D], head-major
// [B,H,N,D] as a permuted view, packed varlen) or a row of a block of a paged cache
// ([num_blocks, block_size, H, D] with a block table, vLLM's and flash_attn_with_kvcache's
// layout). Tile engines ask for runs of keys stored at one stride (k_row, v_row); a tile is
// cut into runs only at block edges (and at every key of a gather list), and its arithmetic
// is the same for any cut, so a paged cache gives the bits of the same keys in one piece.
#include <algorithm>
#include <cstdint>

#include "../core/abi.hpp"
#include "../core/tensor_view.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

// K, V: the element types the keys and values are stored in (a storage type such as bf16,
// or the compute type itself).
template <class K, class V = K>
struct kv_rows {
    using key_type = K;
    using value_type = V;
    const K* k;  // contiguous: logical key 0; paged or gathered: physical key 0 (row 0 of block 0)
    const V* v;
    index_t k_row = 0, v_row = 0;                   // from one logical key to the next within a run
    index_t k_elem = 0, v_elem = 0;                 // along the head dim
    const std::int32_t* pages = nullptr;            // block ids of the sequence; nullptr: not paged
    index_t page_size = 0, k_page = 0, v_page = 0;  // keys per block, block strides
    index_t k_head = 0, v_head = 0;                 // to the next KV head (engines that take several heads)
    index_t count = 0;                              // logical keys: j < count may be read (or prefetched)
    index_t first = 0, step = 1;                    // paged: logical j is physical first + j * step
    const std::int32_t* gather = nullptr;           // logical j is physical gather[j] (runs of one key)

    const K* key(index_t j) const { return k + offset(j, k_row, k_page); }
    const V* value(index_t j) const { return v + offset(j, v_row, v_page); }

    // fn(j, n, first key, first value) for the runs that make up keys [j0, j0 + n_keys).
    template <class Fn>
    void runs(index_t j0, index_t n_keys, Fn&& fn) const {
        for (index_t j = j0, end = j0 + n_keys; j < end;) {
            index_t n = end - j;
            if (gather) {
                n = 1;
            } else if (pages) {
                const index_t p = first + j * step;
                n = std::min(n, (page_size - p % page_size + step - 1) / step);
            }
            fn(j, n, key(j), value(j));
            j += n;
        }
    }

private:
    // row: the stride of one logical step (step physical rows when paged).
    index_t offset(index_t j, index_t row, index_t page) const {
        if (!pages) return gather ? index_t(gather[j]) * row : j * row;
        const index_t p = gather ? index_t(gather[j]) : first + j * step;
        return index_t(pages[p / page_size]) * page + (p % page_size) * (row / step);
    }
};

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
