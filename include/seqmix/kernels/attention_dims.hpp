#pragma once
// The shape of an attention work unit as its tile engine sees it.
#include "../core/abi.hpp"
#include "../core/tensor_view.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

// Shape of a unit: query rows, head dims, and the KV heads the rows belong to (rows / heads
// consecutive rows per head; only keys_in_lanes takes more than one).
struct attention_dims {
    index_t rows = 0, dk = 0, dv = 0;
    index_t heads = 1;
    bool round_probabilities = false;  // bf16 dot products: P V with P rounded to bf16 (opt-in)
};

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
