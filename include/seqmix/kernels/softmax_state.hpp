#pragma once
// The online-softmax state of a set of rows: running max m, running sum l and the
// unnormalized output o (sum_j exp(s_j - m) v_j). Any two states over disjoint key sets
// merge into the state over their union (log-sum-exp), and a state normalizes into the
// attention output and its log-sum-exp. The same state serves one tile loop over all keys
// and the split-KV partials; o is addressed through strides so that each tile engine keeps
// its own layout (rows in lanes: o transposed; keys in lanes: o row-major).
//
// Conventions: a row that has seen no visible key has m = -inf, l = 0, o = 0 (empty);
// a row whose sum turned NaN (a NaN or Inf input reached a visible score) stays NaN.
#include <algorithm>
#include <cmath>
#include <limits>

#include "../core/abi.hpp"
#include "../core/storage_types.hpp"
#include "../core/tensor_view.hpp"

namespace seqmix {
SEQMIX_ABI_BEGIN
namespace kernels {

template <class T>
struct softmax_state {
    T* m;
    T* l;
    T* o;
    index_t o_row, o_elem;  // o of row r, element e: o[r * o_row + e * o_elem]
    index_t dv;

    T& out(index_t r, index_t e) const { return o[r * o_row + e * o_elem]; }

    void reset(index_t rows) const {
        for (index_t r = 0; r < rows; ++r) {
            m[r] = -std::numeric_limits<T>::infinity();
            l[r] = T(0);
        }
        if (o_row == 1)  // rows in lanes: each element's rows are contiguous
            for (index_t e = 0; e < dv; ++e) std::fill_n(o + e * o_elem, rows, T(0));
        else
            for (index_t r = 0; r < rows; ++r) std::fill_n(o + r * o_row, dv, T(0));
    }
};

// Row r of `into` becomes the state over the keys of both (into's keys first).
template <class T>
inline void merge_row(const softmax_state<T>& into, const softmax_state<T>& from, index_t r) {
    T& m = into.m[r];
    T& l = into.l[r];
    const T m2 = from.m[r], l2 = from.l[r];
    if (std::isnan(l)) return;          // NaN is final
    if (std::isnan(l2) || l == T(0)) {  // NaN wins; an empty row takes the other as is
        m = m2;
        l = l2;
        for (index_t e = 0; e < into.dv; ++e) into.out(r, e) = from.out(r, e);
        return;
    }
    if (l2 == T(0)) return;  // nothing visible on the other side
    const T mx = std::max(m, m2);
    const T a = std::exp(m - mx), b = std::exp(m2 - mx);
    for (index_t e = 0; e < into.dv; ++e) into.out(r, e) = a * into.out(r, e) + b * from.out(r, e);
    l = a * l + b * l2;
    m = mx;
}

// Where a normalized row goes: its output row (stored as O), its log-sum-exp and its sink.
template <class O, class T>
struct row_destination {
    O* out = nullptr;                              // nullptr: the row has no query (nothing written)
    T* lse = nullptr;                              // nullptr: not asked for
    T sink = -std::numeric_limits<T>::infinity();  // a sink logit (-inf: none)
    T out_scale = T(1);                            // multiplies the output (an fp8 cache's v_scale)
};

// For each row r < rows with destination(r).out set: out[e * out_stride] = out_scale o / l
// (0 for an empty row; NaN stays NaN), rounded to the output's storage type, and, when lse
// is set, the row's log-sum-exp m + log(l) (-inf for an empty row). A finite sink logit
// joins the denominator as a key with that score and a zero value (gpt-oss, vLLM's s_aux):
// l' = l + exp(sink - m), taken from the larger of m and sink so neither overflows; lse
// includes it. Rows and elements go in 16 x 16 tiles, so neither a transposed state nor
// output rows a page apart are walked one line per element.
template <class O, class T, class Destination>
inline void normalize_rows(const softmax_state<T>& st, index_t rows, index_t out_stride, Destination&& destination) {
    constexpr index_t block = 16;
    constexpr T ninf = -std::numeric_limits<T>::infinity();
    for (index_t r0 = 0; r0 < rows; r0 += block) {
        const index_t n = std::min(block, rows - r0);
        O* out[block];
        T inv[block];
        for (index_t i = 0; i < n; ++i) {
            const row_destination<O, T> d = destination(r0 + i);
            out[i] = d.out;
            if (!d.out) continue;
            T l = st.l[r0 + i], m = st.m[r0 + i], o_scale = T(1);
            if (d.sink != ninf && !std::isnan(l)) {
                const T mx = l == T(0) ? d.sink : std::max(m, d.sink);
                o_scale = l == T(0) ? T(0) : std::exp(m - mx);
                l = l * o_scale + std::exp(d.sink - mx);
                m = mx;
            }
            inv[i] = l == T(0) ? T(0) : o_scale / l * d.out_scale;
            if (d.lse) *d.lse = l == T(0) ? ninf : m + std::log(l);
        }
        for (index_t e0 = 0; e0 < st.dv; e0 += block) {  // a 16 x 16 tile: its lines stay in L1
            const index_t e1 = std::min(e0 + block, st.dv);
            for (index_t i = 0; i < n; ++i)
                if (out[i])
                    for (index_t e = e0; e < e1; ++e)
                        out[i][e * out_stride] = storage_cast<O>(st.out(r0 + i, e) * inv[i]);
        }
    }
}

}  // namespace kernels
SEQMIX_ABI_END
}  // namespace seqmix
