#pragma once
// The contract of the sparse attention operators: topk_attention (each query attends to its
// top_k best-scoring keys, or to the keys a caller lists) and block_sparse_attention (MoBA's
// selection of key blocks by mean key, or the caller's key-block lists). Their options, and
// how they are validated: as the softmax_attention call with their band (contract/attention.hpp),
// plus their own options and lists.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "../core/abi.hpp"
#include "../core/tensor_view.hpp"
#include "../core/validate.hpp"
#include "attention.hpp"

namespace seqmix {

struct topk_options : attention_inputs {
    double scale = 0;              // 0 = 1/sqrt(Dk)
    bool causal = false;           // selection among keys at or before the diagonal (selecting form)
    int top_k = 64;                // keys per query (fewer when it sees fewer)
    const float* sinks = nullptr;  // [Hq]; a logit joining every row's denominator
    // Given: no selection; query i of KV head h attends to exactly the keys listed in
    // indices[b, i, h, :] (-1 = no key; any order; no duplicates), every query head of the group.
    tensor_view<const std::int32_t, 4> indices;  // [B, Nq, Hkv, k]
    tensor_view<std::int32_t, 4> indices_out;    // [B, Nq, Hq, top_k], optional: the selection, ascending, -1 padded
};

struct block_sparse_options : attention_inputs {
    double scale = 0;              // 0 = 1/sqrt(Dk)
    bool causal = false;           // key blocks at or before the query's; the diagonal block masked inside
    int block_size = 64;           // keys per block; queries are grouped by the block of their diagonal
    int top_blocks = 8;            // best-scoring blocks by mean query . mean key, besides the forced ones
    int local_blocks = 1;          // the query's own block and local_blocks - 1 before it (and after it, not causal)
    bool keep_first = false;       // block 0 always
    const float* sinks = nullptr;  // [Hq]
    // Given: no scoring; query block qb of KV head h attends to the key blocks listed in
    // block_indices[b, h, qb, :] (-1 ends the list; any order; no duplicates).
    tensor_view<const std::int32_t, 4> block_indices;  // [B or num_seqs, Hkv, query blocks, max_blocks]
};

SEQMIX_ABI_BEGIN
namespace detail {

// The softmax_attention options a sparse operator is validated as (its band and inputs).
template <class O>
attention_options sparse_band_options(const O& s) {
    attention_options o;
    static_cast<attention_inputs&>(o) = static_cast<const attention_inputs&>(s);
    o.scale = s.scale;
    o.causal = s.causal;
    o.sinks = s.sinks;
    return o;
}

// Query i of a sequence of q_len queries and k_len keys is in the query block of its
// diagonal i + k_len - q_len (clamped to the key blocks): a block's queries share its lists.
inline index_t query_block_of(index_t i, index_t q_len, index_t k_len, index_t block_size) {
    const index_t blocks = (k_len + block_size - 1) / block_size;
    const index_t d = i + k_len - q_len;
    return std::clamp<index_t>(d < 0 ? 0 : d / block_size, 0, std::max<index_t>(blocks - 1, 0));
}

// Every entry -1 or a key below `limit`, no key twice (`seen` is scratch of limit flags);
// `ends` (-1 ends the list) or not (-1 entries anywhere).
inline void check_key_list(const std::int32_t* list, index_t count, index_t stride, index_t limit, bool ends,
                           std::vector<char>& seen, const char* op, const char* arg, const char* where) {
    seen.assign(std::size_t(std::max<index_t>(limit, 0)), 0);
    for (index_t t = 0; t < count; ++t) {
        const index_t x = list[t * stride];
        if (x == -1) {
            if (ends) break;
            continue;
        }
        if (x < 0 || x >= limit)
            raise(concat(op, ": argument '", arg, "': expected -1 or an index in [0, ", limit, ") at ", where,
                         " entry ", t, ", given ", x));
        if (seen[std::size_t(x)])
            raise(concat(op, ": argument '", arg, "': expected no index twice in a list, given ", x, " twice at ",
                         where));
        seen[std::size_t(x)] = 1;
    }
}

template <class A>  // attention_args
void validate_topk(const A& a, const topk_options& o, const char* op) {
    const auto& p = a.problem;
    check_view(o.indices, op, "indices");
    check_view(o.indices_out, op, "indices_out");
    if (o.indices.empty()) {
        check(o.top_k >= 1, op, "top_k", ">= 1", o.top_k);
    } else {
        check(o.indices_out.empty(), op, "indices_out", "not given with 'indices' (nothing is selected)", "a view");
        check_shape(o.indices, {a.q.extent(0), a.q.extent(1), p.hkv, o.indices.extent(3)}, op, "indices");
        std::vector<char> seen;
        for (index_t s = 0; s < p.num_seqs; ++s) {
            const auto sq = p.sequence(s);
            for (index_t i = 0; i < sq.q_len; ++i)
                for (index_t h = 0; h < p.hkv; ++h)
                    check_key_list(o.indices.ptr(sq.batch, sq.q_begin + i, h), o.indices.extent(3), o.indices.stride(3),
                                   sq.k_len, false, seen, op, "indices",
                                   concat("[", sq.batch, ", ", sq.q_begin + i, ", ", h, "]").c_str());
        }
    }
    if (!o.indices_out.empty()) {
        check_shape(o.indices_out, {a.q.extent(0), a.q.extent(1), p.hq, index_t(o.top_k)}, op, "indices_out");
        check_output_layout(o.indices_out, op, "indices_out");
        check_disjoint(op, {memory_of("indices_out", o.indices_out)},
                       {memory_of("q", a.q), memory_of("k", a.k), memory_of("v", a.v), memory_of("out", a.out),
                        memory_of("lse", a.lse)});
    }
}

template <class A>  // attention_args
void validate_block_sparse(const A& a, const block_sparse_options& o, const char* op) {
    const auto& p = a.problem;
    check(o.block_size >= 1, op, "block_size", ">= 1", o.block_size);
    check(o.top_blocks >= 0, op, "top_blocks", ">= 0", o.top_blocks);
    check(o.local_blocks >= 0, op, "local_blocks", ">= 0", o.local_blocks);
    const auto& bi = o.block_indices;
    check_view(bi, op, "block_indices");
    if (bi.empty()) return;
    check_extent(bi, 0, p.num_seqs, op, "block_indices", "a list set per sequence");
    check_extent(bi, 1, p.hkv, op, "block_indices", "KV heads like k");
    std::vector<char> seen;
    for (index_t s = 0; s < p.num_seqs; ++s) {
        const auto sq = p.sequence(s);
        const index_t blocks = (sq.k_len + o.block_size - 1) / o.block_size;
        if (sq.q_len > 0 && bi.extent(2) < blocks)
            raise(concat(op, ": argument 'block_indices': expected at least ", blocks,
                         " query blocks (axis 2: the key blocks of sequence ", s, "), given shape ", shape_string(bi)));
        for (index_t h = 0; h < p.hkv; ++h)
            for (index_t qb = 0; qb < blocks && sq.q_len > 0; ++qb)
                check_key_list(bi.ptr(s, h, qb), bi.extent(3), bi.stride(3), blocks, true, seen, op, "block_indices",
                               concat("[", s, ", ", h, ", ", qb, "]").c_str());
    }
}

}  // namespace detail
SEQMIX_ABI_END
}  // namespace seqmix
