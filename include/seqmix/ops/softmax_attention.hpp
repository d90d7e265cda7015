#pragma once
// softmax_attention: FlashAttention-2 on CPU cores.
//
// Prefill (tiled): a work unit is one (sequence, KV head, query block); the query blocks
// of all Hq/Hkv heads sharing the KV head ride in the same unit, so every K/V tile read is
// used by the whole group. Query rows run along the vector lanes (Q^T packed once per
// unit, scale folded in), so S^T = K Q^T and O^T += V^T P^T read K and V in place and the
// online-softmax reductions are vertical. Tiles above the causal diagonal or outside the
// window are never computed; only tiles that straddle a mask edge are masked.
//
// Decode (split KV): when a KV head has fewer query rows than one vector holds, the keys
// are cut into fixed chunks of kv_chunk keys; each chunk gives (max, sum, partial O) per
// row, merged in chunk order by log-sum-exp. The chunking never depends on the thread
// count, so results are bitwise identical for any number of threads.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../core/abi.hpp"
#include "../contract/attention.hpp"
#include "../core/parallel.hpp"
#include "../core/scratch.hpp"
#include "../kernels/gemm_tile.hpp"
#include "../kernels/key_block.hpp"
#include "../kernels/online_softmax.hpp"
#include "../simd/blas1.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace detail {

// Visible keys of one query row: [lo, hi] (lo > hi: fully masked).
struct key_range {
    index_t lo, hi;
};

inline key_range visible_keys(index_t i, const attention_sequence& sq, const attention_options& opt) {
    const index_t diag = i + sq.k_len - sq.q_len;
    index_t lo = 0, hi = sq.k_len - 1;
    if (opt.window_left >= 0) lo = std::max(lo, diag - opt.window_left);
    if (opt.causal) hi = std::min(hi, diag);
    if (opt.window_right >= 0) hi = std::min(hi, diag + opt.window_right);
    return {lo, hi};
}

struct attention_tiling {
    index_t q_per_head;  // query rows of one head in a unit
    index_t rows;        // group * q_per_head
    index_t lanes;       // rows rounded up to the vector width
    index_t key_tile;    // keys per S tile
};

template <class T>
attention_tiling choose_tiling(const attention_problem& p, const attention_options& opt, index_t max_q) {
    constexpr index_t W = index_t(simd::width<T>);
    // Measured on Zen 4 (D 64/128, 1 thread): 8 vectors of query rows and 64-key tiles beat
    // 2 or 4 vectors (K tiles re-read from L2 more often) and 16 vectors; 128- and 256-key
    // tiles were slower. Exception: with a causal or window mask and a sequence of at most 4
    // such blocks, the masked halves of the diagonal tiles dominate and 4 vectors were
    // 12-15% faster at N = 512 (and slower from N = 1024 on at D = 128).
    index_t vectors = 8;
    const bool masked = opt.causal || opt.window_left >= 0 || opt.window_right >= 0;
    if (masked && max_q <= 4 * 8 * W) vectors = 4;
    const index_t target_rows = std::max<index_t>(vectors * W, 32);
    attention_tiling t{};
    t.q_per_head = std::max<index_t>(1, target_rows / p.group);
    t.rows = t.q_per_head * p.group;
    t.lanes = (t.rows + W - 1) / W * W;
    t.key_tile = 64;
    return t;
}

template <class T>
void attention_tiled(const attention_args<T>& a, const attention_options& opt) {
    const auto& p = a.problem;
    index_t max_q = 0;
    for (index_t s = 0; s < p.num_seqs; ++s) max_q = std::max(max_q, p.sequence(s).q_len);
    const attention_tiling tl = choose_tiling<T>(p, opt, max_q);
    const index_t L = tl.lanes, BK = tl.key_tile;

    // Units in (sequence, KV head, query block) order; seq_first[s] is s's first unit.
    std::vector<index_t> seq_first(std::size_t(p.num_seqs) + 1, 0);
    for (index_t s = 0; s < p.num_seqs; ++s) {
        const index_t blocks = (p.sequence(s).q_len + tl.q_per_head - 1) / tl.q_per_head;
        seq_first[std::size_t(s) + 1] = seq_first[std::size_t(s)] + blocks * p.hkv;
    }
    const index_t units = seq_first.back();
    const int threads = resolve_threads(opt.num_threads, units);
    const std::size_t per_thread =
        scratch_carver<T>::size_of(p.dk * L, BK * L, p.dv * L, L, L, L, L, L, L, L);
    thread_scratch<T> scratch(threads, per_thread);
    thread_scratch<index_t> bounds_scratch(threads, std::size_t(2 * L));

    const T scale = T(p.scale);
    const T ninf = -std::numeric_limits<T>::infinity();
    parallel_for(units, threads, [&](index_t u, int t) {
        const index_t s = index_t(std::upper_bound(seq_first.begin(), seq_first.end(), u) - seq_first.begin()) - 1;
        const index_t local = u - seq_first[std::size_t(s)];
        const index_t hk = local % p.hkv, qb = local / p.hkv;
        const attention_sequence sq = p.sequence(s);
        const index_t i0 = qb * tl.q_per_head;

        scratch_carver<T> carve(scratch.get(t));
        T* qt = carve.take(std::size_t(p.dk * L));
        T* st = carve.take(std::size_t(BK * L));
        T* ot = carve.take(std::size_t(p.dv * L));
        T* m = carve.take(L);
        T* l = carve.take(L);
        T* alpha = carve.take(L);
        T* lo_rel = carve.take(L);
        T* hi_rel = carve.take(L);
        T* slope = carve.take(L);
        T* diag_rel = carve.take(L);
        index_t* lo = bounds_scratch.get(t);
        index_t* hi = lo + L;

        // Rows of this unit: row r is head hk*group + r / q_per_head, query i0 + r % q_per_head.
        index_t kmin = std::numeric_limits<index_t>::max(), kmax = -1;
        index_t max_lo = 0, min_hi = std::numeric_limits<index_t>::max();
        for (index_t r = 0; r < L; ++r) {
            const index_t h = hk * p.group + r / tl.q_per_head;
            const index_t i = i0 + r % tl.q_per_head;
            const bool valid = r < tl.rows && i < sq.q_len;
            const key_range kr = valid ? visible_keys(i, sq, opt) : key_range{1, 0};
            lo[r] = kr.lo;
            hi[r] = kr.hi;
            if (valid) {
                max_lo = std::max(max_lo, kr.lo);
                min_hi = std::min(min_hi, kr.hi);
                if (kr.lo <= kr.hi) {
                    kmin = std::min(kmin, kr.lo);
                    kmax = std::max(kmax, kr.hi);
                }
                const T* qrow = a.q.ptr(sq.batch, sq.q_begin + i, h);
                for (index_t d = 0; d < p.dk; ++d) qt[d * L + r] = qrow[d * a.q.stride(3)] * scale;
            } else {
                for (index_t d = 0; d < p.dk; ++d) qt[d * L + r] = T(0);
            }
            slope[r] = (valid && opt.alibi_slopes) ? T(opt.alibi_slopes[h]) : T(0);
            m[r] = ninf;
            l[r] = T(0);
        }
        std::fill(ot, ot + p.dv * L, T(0));

        for (index_t j0 = kmin; j0 <= kmax; j0 += BK) {
            const index_t kc = std::min(BK, kmax + 1 - j0);
            const T* kp = a.k.ptr(sq.batch, sq.k_begin + j0, hk);
            kernels::panel_gemm<kernels::tile_update::overwrite>(kc, p.dk, L, kp, a.k.stride(1),
                                                                 a.k.stride(3), qt, L, st, L);
            if (opt.softcap > 0) kernels::softcap_tile(st, kc, L, L, T(opt.softcap));
            if (opt.alibi_slopes) {
                for (index_t r = 0; r < L; ++r)
                    diag_rel[r] = T(i0 + r % tl.q_per_head + sq.k_len - sq.q_len - j0);
                kernels::alibi_tile(st, kc, L, L, slope, diag_rel);
            }
            const bool masked = !(j0 >= max_lo && j0 + kc - 1 <= min_hi);  // a mask edge crosses this tile
            if (masked) {
                for (index_t r = 0; r < L; ++r) {
                    lo_rel[r] = T(std::clamp<index_t>(lo[r] - j0, -1, BK + 1));
                    hi_rel[r] = T(std::clamp<index_t>(hi[r] - j0, -2, BK));
                }
                kernels::mask_tile(st, kc, L, L, lo_rel, hi_rel);
            }
            kernels::online_softmax_update(st, kc, L, L, m, l, alpha);
            const T* vp = a.v.ptr(sq.batch, sq.k_begin + j0, hk);
            if (masked && !kernels::rows_finite(vp, kc, a.v.stride(1), p.dv, a.v.stride(3))) {
                // Masked keys must not reach any row, not even as 0 * Inf: only visible ones.
                for (index_t e = 0; e < p.dv; ++e)
                    for (index_t r = 0; r < L; ++r) ot[e * L + r] *= alpha[r];
                for (index_t r = 0; r < L; ++r)
                    for (index_t j = std::max<index_t>(lo[r] - j0, 0); j <= std::min<index_t>(hi[r] - j0, kc - 1); ++j)
                        for (index_t e = 0; e < p.dv; ++e)
                            ot[e * L + r] += st[j * L + r] * vp[j * a.v.stride(1) + e * a.v.stride(3)];
            } else {
                kernels::panel_gemm<kernels::tile_update::scale_accumulate>(
                    p.dv, kc, L, vp, a.v.stride(3), a.v.stride(1), st, L, ot, L, alpha);
            }
        }

        for (index_t r = 0; r < tl.rows; ++r) {
            const index_t h = hk * p.group + r / tl.q_per_head;
            const index_t i = i0 + r % tl.q_per_head;
            if (i >= sq.q_len) continue;
            const T inv = l[r] == T(0) ? T(0) : T(1) / l[r];  // fully masked rows: 0; NaN stays NaN
            T* orow = a.out.ptr(sq.batch, sq.q_begin + i, h);
            for (index_t e = 0; e < p.dv; ++e) orow[e * a.out.stride(3)] = ot[e * L + r] * inv;
            if (!a.lse.empty()) a.lse(sq.batch, h, sq.q_begin + i) = l[r] == T(0) ? ninf : m[r] + std::log(l[r]);
        }
    });
}

// Keys per split-KV chunk: fixed, so the merge order (and every bit) is thread-independent.
constexpr index_t kv_chunk = 512;

template <class T>
void attention_split_kv(const attention_args<T>& a, const attention_options& opt) {
    const auto& p = a.problem;
    index_t max_q = 0, total_chunks = 0;
    for (index_t s = 0; s < p.num_seqs; ++s) {
        max_q = std::max(max_q, p.sequence(s).q_len);
        total_chunks += (p.sequence(s).k_len + kv_chunk - 1) / kv_chunk;
    }
    const index_t R = p.group * max_q;  // query rows per KV head
    constexpr index_t W = index_t(simd::width<T>);
    const index_t dk_pad = (p.dk + W - 1) / W * W, dv_pad = (p.dv + W - 1) / W * W;

    // A unit is (sequence, chunk, block of KV heads). Inside a unit, keys advance a vector
    // width at a time across all the unit's KV heads, so in [B,N,H,D] layout K and V
    // stream through memory nearly in order. Heads are split into blocks only when there
    // are too few chunks to feed the threads; that changes which thread computes a row,
    // never how.
    const int max_threads = resolve_threads(opt.num_threads, std::numeric_limits<int>::max());
    const index_t head_blocks =
        std::clamp<index_t>((4 * max_threads + total_chunks - 1) / std::max<index_t>(total_chunks, 1), 1, p.hkv);
    const index_t heads_per_block = (p.hkv + head_blocks - 1) / head_blocks;
    std::vector<index_t> seq_first(std::size_t(p.num_seqs) + 1, 0);  // first chunk of each sequence
    for (index_t s = 0; s < p.num_seqs; ++s)
        seq_first[std::size_t(s) + 1] = seq_first[std::size_t(s)] + (p.sequence(s).k_len + kv_chunk - 1) / kv_chunk;
    const index_t units = total_chunks * head_blocks;
    // Per (chunk, KV head, row): running max, sum and unnormalized output of that chunk.
    // Written by exactly one unit, merged below in chunk order.
    const index_t part_rows = std::max<index_t>(1, total_chunks * p.hkv * R);
    aligned_buffer<T> part_o{std::size_t(part_rows * dv_pad)}, part_m{std::size_t(part_rows)},
        part_l{std::size_t(part_rows)};
    auto part_index = [&](index_t chunk, index_t hk, index_t r) { return (chunk * p.hkv + hk) * R + r; };
    const int threads = resolve_threads(opt.num_threads, std::max<index_t>(units, 1));
    const bool k_packed = last_dim_contiguous(a.k), v_packed = last_dim_contiguous(a.v);
    thread_scratch<T> scratch(threads, scratch_carver<T>::size_of(heads_per_block * R * dk_pad, R * W, W * p.dk,
                                                                  W * p.dv, W));
    thread_scratch<index_t> range_scratch(threads, std::size_t(2 * R));
    const T scale = T(p.scale);
    const T ninf = -std::numeric_limits<T>::infinity();

    parallel_for(units, threads, [&](index_t u, int t) {
        const index_t chunk = u / head_blocks, hb = u % head_blocks;
        const index_t s = index_t(std::upper_bound(seq_first.begin(), seq_first.end(), chunk) - seq_first.begin()) - 1;
        const index_t c = chunk - seq_first[std::size_t(s)];
        const index_t h0 = hb * heads_per_block, h1 = std::min(p.hkv, h0 + heads_per_block);
        const attention_sequence sq = p.sequence(s);
        const index_t rows = p.group * sq.q_len;  // row r of KV head hk: head hk*group + r / q_len, query r % q_len
        const index_t c0 = c * kv_chunk, c1 = std::min(sq.k_len, c0 + kv_chunk);
        scratch_carver<T> carve(scratch.get(t));
        T* qs = carve.take(std::size_t(heads_per_block * R * dk_pad));
        T* prob = carve.take(std::size_t(R * W));
        T* k_block = carve.take(std::size_t(W * p.dk));
        T* v_block = carve.take(std::size_t(W * p.dv));
        T* iota = carve.take(std::size_t(W));
        index_t* vis_lo = range_scratch.get(t);
        index_t* vis_hi = vis_lo + R;
        for (index_t j = 0; j < W; ++j) iota[j] = T(j);
        const auto lane = simd::load_aligned(iota);
        auto q_of = [&](index_t hk, index_t r) { return qs + ((hk - h0) * R + r) * dk_pad; };

        for (index_t hk = h0; hk < h1; ++hk)
            for (index_t r = 0; r < rows; ++r) {
                const index_t h = hk * p.group + r / sq.q_len, i = r % sq.q_len;
                const T* qrow = a.q.ptr(sq.batch, sq.q_begin + i, h);
                T* qd = q_of(hk, r);
                for (index_t d = 0; d < dk_pad; ++d) qd[d] = d < p.dk ? qrow[d * a.q.stride(3)] * scale : T(0);
                part_m.data()[part_index(chunk, hk, r)] = ninf;
                part_l.data()[part_index(chunk, hk, r)] = T(0);
                std::fill_n(part_o.data() + part_index(chunk, hk, r) * dv_pad, dv_pad, T(0));
            }
        for (index_t j0 = c0; j0 < c1; j0 += W) {
            const index_t nk = std::min(W, c1 - j0);
            for (index_t hk = h0; hk < h1; ++hk) {
                const T* kb = a.k.ptr(sq.batch, sq.k_begin + j0, hk);
                const T* vb = a.v.ptr(sq.batch, sq.k_begin + j0, hk);
                index_t k_stride = a.k.stride(1), v_stride = a.v.stride(1);
                // Rows of one head are a page apart: ask for all of the block's lines at
                // once (memory-level parallelism) rather than one row at a time.
                for (index_t j = 0; j < nk; ++j) {
                    if (k_packed) simd::prefetch(kb + j * k_stride, std::size_t(p.dk));
                    if (v_packed) simd::prefetch(vb + j * v_stride, std::size_t(p.dv));
                }
                if (!k_packed) {
                    for (index_t j = 0; j < nk; ++j)
                        for (index_t d = 0; d < p.dk; ++d) k_block[j * p.dk + d] = kb[j * k_stride + d * a.k.stride(3)];
                    kb = k_block;
                    k_stride = p.dk;
                }
                if (!v_packed) {
                    for (index_t j = 0; j < nk; ++j)
                        for (index_t e = 0; e < p.dv; ++e) v_block[j * p.dv + e] = vb[j * v_stride + e * a.v.stride(3)];
                    vb = v_block;
                    v_stride = p.dv;
                }
                kernels::dot_key_rows(q_of(hk, 0), dk_pad, rows, kb, k_stride, nk, p.dk, prob, W);
                bool partial = false;  // some row does not see every key of the block
                for (index_t r = 0; r < rows; ++r) {
                    const index_t h = hk * p.group + r / sq.q_len, i = r % sq.q_len;
                    const key_range vis = visible_keys(i, sq, opt);
                    const index_t pi = part_index(chunk, hk, r);
                    T* pr = prob + r * W;
                    const index_t lo = std::max(vis.lo, j0), hi = std::min(vis.hi, j0 + nk - 1);
                    vis_lo[r] = lo - j0;
                    vis_hi[r] = hi - j0;
                    if (lo > hi) {
                        std::fill_n(pr, W, T(0));
                        partial = true;
                        continue;
                    }
                    partial |= lo > j0 || hi < j0 + nk - 1;
                    auto sv = simd::load_aligned(pr);
                    if (opt.softcap > 0) sv = T(opt.softcap) * simd::tanh(sv * T(1 / opt.softcap));
                    if (opt.alibi_slopes) {
                        const simd::vec<T> diag(T(i + sq.k_len - sq.q_len - j0));
                        sv = simd::fma(simd::vec<T>(-T(opt.alibi_slopes[h])), simd::abs(diag - lane), sv);
                    }
                    if (lo > j0 || hi < j0 + W - 1)
                        sv = simd::select((lane >= simd::vec<T>(T(lo - j0))) && (lane <= simd::vec<T>(T(hi - j0))), sv,
                                          simd::vec<T>(ninf));
                    T& m = part_m.data()[pi];
                    T& l = part_l.data()[pi];
                    const T m_new = std::max(m, simd::hmax(sv));
                    const auto pv = simd::exp(sv - simd::vec<T>(m_new));
                    simd::store_aligned(pr, pv);
                    const T alpha = std::exp(m - m_new);  // 0 on the first visible block
                    if (alpha != T(1)) simd::scale(alpha, part_o.data() + pi * dv_pad, std::size_t(dv_pad));
                    l = l * alpha + simd::hsum(pv);
                    m = m_new;
                }
                T* o_rows = part_o.data() + part_index(chunk, hk, 0) * dv_pad;
                if (partial && !kernels::rows_finite(vb, nk, v_stride, p.dv, index_t(1))) {
                    for (index_t r = 0; r < rows; ++r)  // only visible keys: no 0 * Inf from masked ones
                        for (index_t j = vis_lo[r]; j <= vis_hi[r]; ++j)
                            simd::axpy(prob[r * W + j], vb + j * v_stride, o_rows + r * dv_pad, std::size_t(p.dv));
                } else {
                    kernels::accumulate_value_rows(prob, rows, vb, v_stride, nk, o_rows, dv_pad, p.dv);
                }
            }
        }
    });

    // Merge the chunks of each (sequence, head, query) row in chunk order.
    std::vector<index_t> row_first(std::size_t(p.num_seqs) + 1, 0);
    for (index_t s = 0; s < p.num_seqs; ++s)
        row_first[std::size_t(s) + 1] = row_first[std::size_t(s)] + p.hq * p.sequence(s).q_len;
    const index_t total_rows = row_first.back();
    parallel_for(total_rows, resolve_threads(opt.num_threads, total_rows), [&](index_t x, int) {
        const index_t s = index_t(std::upper_bound(row_first.begin(), row_first.end(), x) - row_first.begin()) - 1;
        const attention_sequence sq = p.sequence(s);
        const index_t local = x - row_first[std::size_t(s)];
        const index_t h = local / sq.q_len, i = local % sq.q_len, hk = h / p.group;
        const index_t r = (h % p.group) * sq.q_len + i;
        const index_t first = seq_first[std::size_t(s)], last = seq_first[std::size_t(s) + 1];
        T mx = ninf;
        for (index_t chunk = first; chunk < last; ++chunk) mx = std::max(mx, part_m.data()[part_index(chunk, hk, r)]);
        T* orow = a.out.ptr(sq.batch, sq.q_begin + i, h);
        for (index_t e = 0; e < p.dv; ++e) orow[e * a.out.stride(3)] = T(0);
        // A NaN score (NaN or Inf inputs) makes its chunk's sum NaN for good: the row is NaN,
        // as in exact arithmetic, never "fully masked".
        bool nan_row = false;
        for (index_t chunk = first; chunk < last; ++chunk) nan_row |= std::isnan(part_l.data()[part_index(chunk, hk, r)]);
        if (nan_row) {
            for (index_t e = 0; e < p.dv; ++e) orow[e * a.out.stride(3)] = std::numeric_limits<T>::quiet_NaN();
            if (!a.lse.empty()) a.lse(sq.batch, h, sq.q_begin + i) = std::numeric_limits<T>::quiet_NaN();
            return;
        }
        T sum = 0;
        if (mx != ninf) {
            for (index_t chunk = first; chunk < last; ++chunk) {
                const index_t pi = part_index(chunk, hk, r);
                if (part_l.data()[pi] == T(0)) continue;
                const T w = std::exp(part_m.data()[pi] - mx);
                sum += w * part_l.data()[pi];
                const T* po = part_o.data() + pi * dv_pad;
                for (index_t e = 0; e < p.dv; ++e) orow[e * a.out.stride(3)] += w * po[e];
            }
            for (index_t e = 0; e < p.dv; ++e) orow[e * a.out.stride(3)] /= sum;
        }
        if (!a.lse.empty()) a.lse(sq.batch, h, sq.q_begin + i) = sum == T(0) ? ninf : mx + std::log(sum);
    });
}

}  // namespace detail

// out[b,i,h,:] = softmax_j(score(i, j)) V[b,j,h/(Hq/Hkv),:] with the contract's score,
// masks and options; lse (optional, [B,Hq,Nq]) receives each row's log-sum-exp.
template <class QV, class KV, class VV, class OV>
void softmax_attention(const QV& q, const KV& k, const VV& v, const OV& out,
                       const attention_options& opt = {},
                       tensor_view<typename OV::value_type, 3> lse = {}) {
    using T = typename OV::value_type;
    const auto a = detail::prepare_attention(q, k, v, out, lse, opt, "softmax_attention");
    index_t max_q = 0;
    for (index_t s = 0; s < a.problem.num_seqs; ++s) max_q = std::max(max_q, a.problem.sequence(s).q_len);
    // Split-KV when the group's query rows would not fill one vector of lanes (decode).
    if (a.problem.group * max_q <= index_t(simd::width<T>))
        detail::attention_split_kv(a, opt);
    else
        detail::attention_tiled(a, opt);
}

SEQMIX_ABI_END
}  // namespace seqmix
