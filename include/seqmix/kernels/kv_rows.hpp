#pragma once
// Where the keys and values of one KV head of one sequence are: rows at a fixed stride
// (token-major [B,N,H,D], head-major [B,H,N,D] as a permuted view, packed varlen), or
// spread over the blocks of a paged cache ([num_blocks, block_size, H, D] with a block
// table, vLLM's and flash_attn_with_kvcache's layout). Tile engines ask for runs of keys
// stored at one stride; a tile is cut into runs only at block edges, and its arithmetic is
// the same for any cut, so a paged cache gives the bits of the same keys stored in one piece.
#include <algorithm>
#include <cstdint>

#include "../core/abi.hpp"
#include "../core/tensor_view.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

template <class T>
struct kv_rows {
    const T* k;  // key 0 of the head (paged: row 0 of block 0)
    const T* v;
    index_t k_row, v_row;    // from one key to the next (within a block)
    index_t k_elem, v_elem;  // along the head dim
    const std::int32_t* pages = nullptr;  // block ids of the sequence; nullptr: one run
    index_t page_size = 0, k_page = 0, v_page = 0;  // keys per block, block strides
    index_t k_head = 0, v_head = 0;  // to the next KV head (engines that take several heads)
    index_t count = 0;               // valid keys: j < count may be read (or prefetched)

    const T* key(index_t j) const { return k + offset(j, k_row, k_page); }
    const T* value(index_t j) const { return v + offset(j, v_row, v_page); }

    // fn(j, n, first key, first value) for the runs that make up keys [j0, j0 + count).
    template <class Fn>
    void runs(index_t j0, index_t count, Fn&& fn) const {
        for (index_t j = j0, end = j0 + count; j < end;) {
            const index_t n = pages ? std::min(end - j, page_size - j % page_size) : end - j;
            fn(j, n, key(j), value(j));
            j += n;
        }
    }

private:
    index_t offset(index_t j, index_t row, index_t page) const {
        return pages ? index_t(pages[j / page_size]) * page + (j % page_size) * row : j * row;
    }
};

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
