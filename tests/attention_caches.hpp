#pragma once
// KV caches for the attention tests: a [B, Nk, Hkv, D] cache copied into a paged cache (blocks
// of all sequences shuffled together) or into a head-major [B, Hkv, Nk, D] buffer.
#include <seqmix/core/tensor.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "test_util.hpp"

namespace seqmix_test {

// A [B, Nk, Hkv, D] cache copied into a paged cache [num_blocks, block_size, Hkv, D]: the
// blocks of all sequences shuffled together, plus unused blocks, with the block table.
struct paged_copy {
    seqmix::tensor<float, 4> k, v;
    std::vector<std::int32_t> table;
    int max_blocks;
};

inline paged_copy page(const seqmix::tensor<float, 4>& k, const seqmix::tensor<float, 4>& v, index_t block_size,
                       unsigned seed) {
    const index_t B = k.shape()[0], Nk = k.shape()[1], H = k.shape()[2], Dk = k.shape()[3], Dv = v.shape()[3];
    const index_t per_seq = (Nk + block_size - 1) / block_size, blocks = B * per_seq + 3;
    std::vector<std::int32_t> ids(static_cast<std::size_t>(blocks));
    for (index_t i = 0; i < blocks; ++i) ids[std::size_t(i)] = std::int32_t(i);
    std::shuffle(ids.begin(), ids.end(), std::mt19937(seed));
    paged_copy p{random_tensor<float, 4>({blocks, block_size, H, Dk}, seed + 1),
                 random_tensor<float, 4>({blocks, block_size, H, Dv}, seed + 2),
                 {},
                 int(per_seq + 1)};
    p.table.assign(std::size_t(B * p.max_blocks), -7);  // entries past a sequence's blocks are never read
    for (index_t b = 0; b < B; ++b)
        for (index_t j = 0; j < Nk; ++j) {
            const std::int32_t id = ids[std::size_t(b * per_seq + j / block_size)];
            p.table[std::size_t(b * p.max_blocks + j / block_size)] = id;
            for (index_t h = 0; h < H; ++h) {
                for (index_t d = 0; d < Dk; ++d) p.k(id, j % block_size, h, d) = k(b, j, h, d);
                for (index_t d = 0; d < Dv; ++d) p.v(id, j % block_size, h, d) = v(b, j, h, d);
            }
        }
    return p;
}

// [B, Nk, H, D] -> a [B, H, Nk, D] buffer, to be passed as permute(view, {0, 2, 1, 3}).
inline seqmix::tensor<float, 4> head_major(const seqmix::tensor<float, 4>& t) {
    const index_t B = t.shape()[0], N = t.shape()[1], H = t.shape()[2], D = t.shape()[3];
    seqmix::tensor<float, 4> out({B, H, N, D});
    for (index_t b = 0; b < B; ++b)
        for (index_t j = 0; j < N; ++j)
            for (index_t h = 0; h < H; ++h)
                for (index_t d = 0; d < D; ++d) out(b, h, j, d) = t(b, j, h, d);
    return out;
}

}  // namespace seqmix_test
