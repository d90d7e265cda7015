#pragma once
// Sparse attention, as variants of the attention run (kernels/attention_run.hpp):
//   - topk_attention: each query attends to its top_k best-scoring keys (exact; ties: lower
//     index). A selection pass (kernels/sparse_select.hpp) scores every visible key once and
//     keeps each row's list; the run then attends over each row's list of keys (a gather list:
//     keys in lanes, any cache layout). Given `indices` (DeepSeek sparse attention, sglang),
//     the caller's lists are attended to directly.
//   - block_sparse_attention (MoBA): key blocks chosen per query block by mean query . mean
//     key, plus the local blocks (and block 0); or the caller's key-block lists (NSA's
//     block_indices, flex attention's block mask). A problem per query block; its schedule
//     visits the listed blocks only, the causal diagonal masked inside.
#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <vector>

#include "../contract/sparse_attention.hpp"
#include "../core/abi.hpp"
#include "../core/parallel.hpp"
#include "../core/scratch.hpp"
#include "../kernels/attention_run.hpp"
#include "../kernels/sparse_select.hpp"
#include "softmax_attention.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace detail {

// Index lists [B, Nq, H, k] copied element by element (to or from a caller's strided view).
template <class From>
tensor_view<std::int32_t, 4> copy_lists(const From& from, const tensor_view<std::int32_t, 4>& to) {
    for (index_t b = 0; b < to.extent(0); ++b)
        for (index_t i = 0; i < to.extent(1); ++i)
            for (index_t h = 0; h < to.extent(2); ++h)
                for (index_t t = 0; t < to.extent(3); ++t) to(b, i, h, t) = from(b, i, h, t);
    return to;
}

// The positions [first, first + count) of a key list, skipping -1 entries: runs of listed
// keys, every row of the unit seeing all of them.
struct list_schedule {
    const std::int32_t* list;
    index_t first, count;

    template <class Fn>
    void for_each_block(index_t block, Fn&& fn) const {
        for (index_t j = first, end = first + count; j < end;) {
            if (list[j] < 0) {
                ++j;
                continue;
            }
            const index_t s = j;
            while (j < end && j - s < block && list[j] >= 0) ++j;
            fn(s, j - s);
        }
    }
    bool masked(index_t, index_t) const { return false; }
    kernels::key_range visible(index_t, index_t) const { return {first, first + count - 1}; }
    index_t size() const { return count; }
    list_schedule slice(index_t f, index_t c) const { return {list, first + f, std::min(c, count - f)}; }
};

// Rows of [B, Nq, H, ...] problems numbered query by query (packed varlen included).
struct query_numbering {
    std::vector<index_t> first;  // first problem of each sequence, and the total
    template <class A>
    explicit query_numbering(const A& a) {
        first.push_back(0);
        for (index_t s = 0; s < a.problem.num_seqs; ++s) first.push_back(first.back() + a.problem.sequence(s).q_len);
    }
    index_t total() const { return first.back(); }
    void locate(index_t p, index_t& s, index_t& i) const {
        s = index_t(std::upper_bound(first.begin(), first.end(), p) - first.begin()) - 1;
        i = p - first[std::size_t(s)];
    }
};

// A problem per query: its row attends to the keys of its list (per query head, or per KV
// head shared by the group), gathered from the cache.
template <class T, class A = attention_args<T>>
struct gather_variant : kernels::attention_variant_base {
    using value_type = T;
    const A& a;
    tensor_view<const std::int32_t, 4> lists;  // [B, Nq, heads of the lists, K], K contiguous
    bool per_query_head = false;
    query_numbering queries;
    kernels::logits_transform<T> none;

    gather_variant(const A& args, const tensor_view<const std::int32_t, 4>& l, bool per_head)
        : a(args), lists(l), per_query_head(per_head), queries(args) {}

    struct problem_type {
        const gather_variant& var;
        attention_sequence sq;
        index_t i = 0;
        kernels::problem_extent extent() const { return {1, var.lists.extent(3)}; }
        kernels::attention_row<T, typename A::query_type, typename A::output_type> row(index_t h, index_t) const {
            const auto& args = var.a;
            const auto* opt = args.problem.opt;
            const index_t hk = h / args.problem.group;
            return {args.q.ptr(sq.batch, sq.q_begin + i, h),
                    args.out.ptr(sq.batch, sq.q_begin + i, h),
                    args.lse.empty() ? nullptr : args.lse.ptr(sq.batch, h, sq.q_begin + i),
                    {0, var.lists.extent(3) - 1},
                    0,
                    T(0),
                    opt->sinks ? T(opt->sinks[h]) : -std::numeric_limits<T>::infinity(),
                    opt->k_scale ? T(opt->k_scale[hk]) : T(1),
                    opt->v_scale ? T(opt->v_scale[hk]) : T(1)};
        }
        auto keys(index_t hl) const {  // hl: a head of the lists
            auto kv = kv_of(var.a, sq, var.per_query_head ? hl / var.a.problem.group : hl);
            kv.gather = var.lists.ptr(sq.batch, sq.q_begin + i, hl);
            kv.count = var.lists.extent(3);
            return kv;
        }
        list_schedule schedule(const kernels::unit_span& u) const {
            return {var.lists.ptr(sq.batch, sq.q_begin + i, u.hk0), 0, var.lists.extent(3)};
        }
    };

    kernels::attention_heads heads() const {
        const auto& p = a.problem;
        return per_query_head ? kernels::attention_heads{p.hq, 1, p.dk, p.dv}
                              : kernels::attention_heads{p.hkv, p.group, p.dk, p.dv};
    }
    index_t problems() const { return queries.total(); }
    problem_type problem(index_t p) const {
        index_t s = 0, i = 0;
        queries.locate(p, s, i);
        return {*this, a.problem.sequence(s), i};
    }
    bool gathers() const { return true; }
    double scale() const { return a.problem.scale; }
    index_t q_elem() const { return a.q.stride(3); }
    index_t out_elem() const { return a.out.stride(3); }
    const kernels::logits_transform<T>& logits() const { return none; }
};

// Each row's top_k keys into lists [B, Nq, Hq, top_k] (ascending, -1 padded): every KV head's
// keys packed once as key panels, then units of the query rows of one KV head, every visible
// key scored once.
template <class A>
void select_topk(const A& a, const topk_options& o, const tensor_view<std::int32_t, 4>& lists) {
    using T = typename A::compute_type;
    const auto& p = a.problem;
    using select = kernels::topk_select<T>;
    index_t max_keys = 0;
    for (index_t s = 0; s < p.num_seqs; ++s) max_keys = std::max(max_keys, p.sequence(s).k_len);
    const index_t k = o.top_k;
    const index_t q_block = std::max<index_t>(1, select::rows_for(max_keys) / p.group), rows = p.group * q_block;
    using panels = kernels::key_panels<T>;
    std::vector<std::size_t> at{0};  // panels of (sequence, KV head)
    for (index_t s = 0; s < p.num_seqs; ++s)
        for (index_t hk = 0; hk < p.hkv; ++hk) at.push_back(at.back() + panels::size(p.sequence(s).k_len, p.dk));
    thread_scratch<T> panel_buffer(1, at.back());  // reused across calls: no fresh pages per call
    T* const packed = panel_buffer.get(0);
    parallel_for(p.num_seqs * p.hkv, available_threads(o.num_threads), [&](index_t item, int) {
        const attention_sequence sq = p.sequence(item / p.hkv);
        panels::pack(kv_of(a, sq, item % p.hkv), sq.k_len, p.dk, packed + at[std::size_t(item)]);
    });
    struct unit {
        index_t s, hk, i0;
    };
    std::vector<unit> units;
    for (index_t s = 0; s < p.num_seqs; ++s)
        for (index_t i0 = 0, n = p.sequence(s).q_len; i0 < n; i0 += q_block)
            for (index_t hk = 0; hk < p.hkv; ++hk) units.push_back({s, hk, i0});
    const int threads = resolve_threads(o.num_threads, index_t(units.size()));
    thread_scratch<T> scratch(threads, select::scratch_size(rows, p.dk, max_keys));
    thread_scratch<index_t> last(threads, std::size_t(rows));
    parallel_for(index_t(units.size()), threads, [&](index_t u, int t) {
        const unit un = units[std::size_t(u)];
        const attention_sequence sq = p.sequence(un.s);
        select sel(rows, p.dk, k, max_keys, scratch.get(t), last.get(t));
        index_t end = 0;
        for (index_t r = 0; r < rows; ++r) {
            const index_t g = r / q_block, i = un.i0 + r % q_block;
            if (i >= sq.q_len) {
                sel.clear_row(r);
                continue;
            }
            const index_t last_key = o.causal ? std::min(i + sq.k_len - sq.q_len, sq.k_len - 1) : sq.k_len - 1;
            sel.set_row(r, a.q.ptr(sq.batch, sq.q_begin + i, un.hk * p.group + g), a.q.stride(3), last_key);
            end = std::max(end, last_key + 1);
        }
        // The scores as attention has them (the reference's order of products).
        const T k_scale = p.opt->k_scale ? T(p.opt->k_scale[un.hk]) : T(1);
        sel.score(packed + at[std::size_t(un.s * p.hkv + un.hk)], end, T(p.scale) * k_scale);
        for (index_t r = 0; r < rows; ++r) {
            const index_t g = r / q_block, i = un.i0 + r % q_block;
            if (i < sq.q_len) sel.write(r, lists.ptr(sq.batch, sq.q_begin + i, un.hk * p.group + g), lists.stride(3));
        }
    });
}

// block_sparse_attention as a variant: a problem per (sequence, query block), its schedule the
// key blocks of its list, each clipped to the rows' keys (the causal diagonal masked inside).
template <class T, class A = attention_args<T>>
struct block_variant : softmax_variant<T, A> {
    index_t bs;
    bool per_query_head = false;  // lists per query head (selected) or per KV head (given)
    // [sequence, list head, query block, t], -1 ending a list: the caller's block_indices as
    // given, or MoBA's selection.
    tensor_view<const std::int32_t, 4> lists;
    std::vector<index_t> first;  // first problem of each sequence (query blocks), and the total

    struct block_schedule {
        const std::int32_t* list = nullptr;
        index_t stride = 0, max_blocks = 0, bs = 0, kmin = 0, kmax = 0, max_lo = 0, min_hi = 0;
        const index_t *lo = nullptr, *hi = nullptr;
        kernels::run_slice part;  // a split-KV slice

        template <class Fn>
        void each_run(Fn&& fn) const {  // fn(first key, keys) for the listed blocks' visible keys
            for (index_t t = 0; t < max_blocks && list[t * stride] >= 0; ++t) {
                const index_t kb = list[t * stride];
                const index_t j0 = std::max(kmin, kb * bs), j1 = std::min(kmax, kb * bs + bs - 1);
                if (j0 <= j1) fn(j0, j1 - j0 + 1);
            }
        }
        template <class Fn>
        void for_each_block(index_t block, Fn&& fn) const {
            part.blocks(
                block, [&](auto&& visit) { each_run(visit); }, fn);
        }
        bool masked(index_t j0, index_t n) const { return !(j0 >= max_lo && j0 + n - 1 <= min_hi); }
        kernels::key_range visible(index_t r, index_t) const { return {lo[r], hi[r]}; }
        index_t total() const {
            index_t n = 0;
            each_run([&](index_t, index_t c) { n += c; });
            return n;
        }
        index_t size() const { return part.size(total()); }
        block_schedule slice(index_t f, index_t c) const {
            block_schedule s = *this;
            s.part = part.sub(f, c, total());
            return s;
        }
    };

    // A band problem (the sequence's causal band) whose schedule is its list of key blocks.
    struct problem_type : band_problem<T, A> {
        const block_variant* bv;
        index_t s, qb;
        block_schedule schedule(const kernels::unit_span& u) const {
            const auto& l = bv->lists;
            const index_t blocks = this->k_len > 0 ? l.extent(3) : 0;  // no keys: a list never read
            return {
                l.ptr(s, u.hk0, qb), l.stride(3), blocks, bv->bs, u.kmin, u.kmax, u.max_lo, u.min_hi, u.lo, u.hi, {}};
        }
        auto keys(index_t hl) const {  // hl: a head of the lists
            return band_problem<T, A>::keys(bv->per_query_head ? hl / bv->a.problem.group : hl);
        }
    };

    block_variant(const A& args, const attention_options& band_options, index_t block_size)
        : softmax_variant<T, A>(args, band_options), bs(block_size) {
        first.push_back(0);
        for (index_t s = 0; s < args.problem.num_seqs; ++s) first.push_back(first.back() + query_blocks(s));
    }
    index_t query_blocks(index_t s) const {
        const auto sq = this->a.problem.sequence(s);
        return sq.q_len == 0 ? 0 : std::max<index_t>(1, (sq.k_len + bs - 1) / bs);
    }
    index_t max_query_blocks() const {
        index_t n = 0;
        for (std::size_t s = 1; s < first.size(); ++s) n = std::max(n, first[s] - first[s - 1]);
        return n;
    }
    kernels::attention_heads heads() const {
        const auto& p = this->a.problem;
        return per_query_head ? kernels::attention_heads{p.hq, 1, p.dk, p.dv}
                              : kernels::attention_heads{p.hkv, p.group, p.dk, p.dv};
    }
    index_t problems() const { return first.back(); }
    // Problem p: query block qb of sequence s, its queries those whose diagonal falls in key
    // block qb (the first and last blocks also take the diagonals before and after the keys).
    problem_type problem(index_t p) const {
        const index_t s = index_t(std::upper_bound(first.begin(), first.end(), p) - first.begin()) - 1;
        const index_t qb = p - first[std::size_t(s)], nqb = query_blocks(s);
        const attention_sequence sq = this->a.problem.sequence(s);
        const index_t shift = sq.k_len - sq.q_len;  // diagonal = i + shift
        const index_t lo = qb == 0 ? 0 : std::clamp<index_t>(qb * bs - shift, 0, sq.q_len);
        const index_t hi = qb == nqb - 1 ? sq.q_len : std::clamp<index_t>((qb + 1) * bs - shift, 0, sq.q_len);
        return {{*this, sq, 1, 0, lo, std::max<index_t>(0, hi - lo), sq.k_len}, this, s, qb};
    }
    index_t query_block(index_t, index_t suggested) const { return suggested; }
    index_t visited_keys(index_t, index_t k_len) const { return std::min(k_len, lists.extent(3) * bs); }
    bool kv_heads_interleaved() const { return false; }
};

// MoBA's selection into lists [sequence, query head, query block, t]: the forced blocks
// (local, first) and the top_blocks best of the rest, ascending, -1 after.
template <class A, class Variant>
void select_blocks(const A& a, const block_sparse_options& o, const Variant& var,
                   const tensor_view<std::int32_t, 4>& lists) {
    const auto& p = a.problem;
    const index_t bs = o.block_size;
    std::fill(lists.data(), lists.data() + lists.size(), -1);
    parallel_for(p.num_seqs * p.hkv, available_threads(o.num_threads), [&](index_t item, int) {
        const index_t s = item / p.hkv, hk = item % p.hkv;
        const attention_sequence sq = p.sequence(s);
        const index_t blocks = var.query_blocks(s), kblocks = (sq.k_len + bs - 1) / bs;
        if (blocks == 0) return;
        std::vector<double> ksum(std::size_t(kblocks * p.dk), 0.0), qsum(std::size_t(blocks * p.dk), 0.0), score;
        std::vector<index_t> kn(std::size_t(kblocks), 0), qn(std::size_t(blocks), 0), cand;
        const auto kv = kv_of(a, sq, hk);
        for (index_t j = 0; j < sq.k_len; ++j) {
            const auto* key = kv.key(j);
            ++kn[std::size_t(j / bs)];
            for (index_t d = 0; d < p.dk; ++d) ksum[std::size_t(j / bs * p.dk + d)] += double(key[d * kv.k_elem]);
        }
        for (index_t g = 0; g < p.group; ++g) {
            const index_t h = hk * p.group + g;
            std::fill(qsum.begin(), qsum.end(), 0.0);
            std::fill(qn.begin(), qn.end(), 0);
            for (index_t i = 0; i < sq.q_len; ++i) {
                const index_t qb = query_block_of(i, sq.q_len, sq.k_len, bs);
                ++qn[std::size_t(qb)];
                const auto* q = a.q.ptr(sq.batch, sq.q_begin + i, h);
                for (index_t d = 0; d < p.dk; ++d) qsum[std::size_t(qb * p.dk + d)] += double(q[d * a.q.stride(3)]);
            }
            for (index_t qb = 0; qb < blocks; ++qb) {
                if (qn[std::size_t(qb)] == 0) continue;
                std::int32_t* out = lists.ptr(s, h, qb);
                index_t n = 0;
                cand.clear();
                score.assign(std::size_t(kblocks), 0.0);
                for (index_t kb = 0; kb < kblocks; ++kb) {
                    const bool local =
                        (kb <= qb && qb - kb < o.local_blocks) || (!o.causal && kb > qb && kb - qb < o.local_blocks);
                    if (local || (o.keep_first && kb == 0)) {
                        out[n++] = std::int32_t(kb);
                        continue;
                    }
                    if (o.causal && kb > qb) continue;
                    double dot = 0;
                    for (index_t d = 0; d < p.dk; ++d)
                        dot += qsum[std::size_t(qb * p.dk + d)] * ksum[std::size_t(kb * p.dk + d)];
                    score[std::size_t(kb)] = dot / (double(qn[std::size_t(qb)]) * double(kn[std::size_t(kb)]));
                    cand.push_back(kb);
                }
                const index_t top = std::min<index_t>(o.top_blocks, index_t(cand.size()));
                std::partial_sort(cand.begin(), cand.begin() + top, cand.end(), [&](index_t x, index_t y) {
                    return kernels::ranks_before(score[std::size_t(x)], std::int32_t(x), score[std::size_t(y)],
                                                 std::int32_t(y));
                });
                for (index_t t = 0; t < top; ++t) out[n++] = std::int32_t(cand[std::size_t(t)]);
                std::sort(out, out + n);
            }
        }
    });
}

}  // namespace detail

// out[b,i,h,:] = softmax over query i's top_k keys (or its listed keys) of scale * q.k, times
// V; lse (optional) [B,Hq,Nq]. Every cache layout softmax_attention takes.
template <class QV, class KV, class VV, class OV>
void topk_attention(const QV& q, const KV& k, const VV& v, const OV& out, const topk_options& opt = {},
                    tensor_view<compute_type_of<typename OV::value_type>, 3> lse = {}) {
    const executor_scope threads_of_call(opt.executor);
    using T = compute_type_of<typename OV::value_type>;
    const char* op = "topk_attention";
    const attention_options band = detail::sparse_band_options(opt);
    const auto a = detail::prepare_attention(q, k, v, out, lse, band, op);
    detail::validate_topk(a, opt, op);
    std::vector<std::int32_t> own;  // lists when the caller's are not contiguous or not kept
    if (!opt.indices.empty()) {
        tensor_view<const std::int32_t, 4> lists = opt.indices;
        if (opt.indices.stride(3) != 1 && opt.indices.extent(3) > 1) {
            own.resize(std::size_t(opt.indices.size()));
            lists = detail::copy_lists(opt.indices, tensor_view<std::int32_t, 4>(own.data(), opt.indices.shape()));
        }
        kernels::attention_run(detail::gather_variant<T, std::decay_t<decltype(a)>>(a, lists, false), opt.num_threads);
        return;
    }
    tensor_view<std::int32_t, 4> lists = opt.indices_out;
    if (lists.empty() || lists.stride(3) != 1) {
        own.resize(std::size_t(a.q.extent(0) * a.q.extent(1) * a.problem.hq * opt.top_k));
        lists =
            tensor_view<std::int32_t, 4>(own.data(), {a.q.extent(0), a.q.extent(1), a.problem.hq, index_t(opt.top_k)});
    }
    detail::select_topk(a, opt, lists);
    kernels::attention_run(detail::gather_variant<T, std::decay_t<decltype(a)>>(a, lists, true), opt.num_threads);
    if (!opt.indices_out.empty() && lists.data() != opt.indices_out.data()) detail::copy_lists(lists, opt.indices_out);
}

// out[b,i,h,:] = softmax over the keys of query i's key blocks (MoBA's selection, or the
// listed blocks) of scale * q.k, times V; lse (optional) [B,Hq,Nq].
template <class QV, class KV, class VV, class OV>
void block_sparse_attention(const QV& q, const KV& k, const VV& v, const OV& out, const block_sparse_options& opt = {},
                            tensor_view<compute_type_of<typename OV::value_type>, 3> lse = {}) {
    const executor_scope threads_of_call(opt.executor);
    using T = compute_type_of<typename OV::value_type>;
    const char* op = "block_sparse_attention";
    const attention_options band = detail::sparse_band_options(opt);
    const auto a = detail::prepare_attention(q, k, v, out, lse, band, op);
    detail::validate_block_sparse(a, opt, op);
    detail::block_variant<T, std::decay_t<decltype(a)>> var(a, band, opt.block_size);
    // cppcheck-suppress variableScope ; var.lists views it until the run ends
    std::vector<std::int32_t> selected;
    var.per_query_head = opt.block_indices.empty();
    if (var.per_query_head) {  // MoBA's choice, per query head
        const index_t width = std::max<index_t>(1, index_t(opt.top_blocks) + 2 * index_t(opt.local_blocks) + 1);
        const std::array<index_t, 4> shape{a.problem.num_seqs, a.problem.hq, var.max_query_blocks(), width};
        selected.resize(std::size_t(shape[0] * shape[1] * shape[2] * shape[3]));
        const tensor_view<std::int32_t, 4> lists(selected.data(), shape);
        detail::select_blocks(a, opt, var, lists);
        var.lists = lists;
    } else {
        var.lists = opt.block_indices;  // read where the caller keeps them
    }
    kernels::attention_run(var, opt.num_threads);
}

SEQMIX_ABI_END
}  // namespace seqmix
