// The hostile catalog's attention operators (hostile_catalog.hpp).
#include "hostile_catalog.hpp"

namespace hostile {

namespace {
// op(q, k, v, out, options, lse) on the catalog's tensors of rank R (lse: rank R - 1).
template <std::size_t R, class A, class O, class F>
void attend(const A& a, const O& o, F&& op) {
    op(a.template in<R>("q"), a.template in<R>("k"), a.template in<R>("v"), a.template view<R>("out"), o,
       a.template view<R - 1>("lse"));
}
}  // namespace

std::vector<op_spec> attention_ops(const catalog_sizes& sz) {
    using namespace seqmix;
    const index_t N = sz.N, B = sz.B, Dk = sz.Dk, Dv = sz.Dv;
    std::vector<op_spec> ops;

    for (int variant = 0; variant < 4; ++variant) {
        // 0: plain GQA; 1: causal with a window (masked tiles); 2: decode with a window;
        // 3: decode over 1100 keys, which the run splits in two chunks of keys (split-KV, the
        // partial states merged): twice kernels::min_split_keys, whatever the thread count.
        const index_t nq = variant >= 2 ? 1 : N, nk = variant == 3 ? 1100 : N, hq = 4, hkv = 2;
        const char* names[] = {"softmax_attention", "softmax_attention causal window", "softmax_attention decode",
                               "softmax_attention decode split KV"};
        ops.push_back(make_op(names[variant],
                              {{"q", role::input, {B, nq, hq, Dk}},
                               {"k", role::input, {B, nk, hkv, Dk}},
                               {"v", role::input, {B, nk, hkv, Dv}},
                               {"out", role::output, {B, nq, hq, Dv}},
                               {"lse", role::output, {B, hq, nq}}},
                              [variant](const auto& a, auto reference) {
                                  attention_options o;
                                  o.num_threads = a.num_threads;
                                  o.executor = a.executor;
                                  o.scale = a.scale;
                                  const entry_options& e = a.options;
                                  if (variant == 1 || variant == 2) o.window_left = e.window >= -1 ? e.window : 9;
                                  o.causal = variant == 1 || (variant == 0 && e.causal);
                                  o.softcap = e.softcap;
                                  if constexpr (decltype(reference)::value)
                                      attend<4>(a, o, [](auto&&... x) { seqmix::reference::softmax_attention(x...); });
                                  else attend<4>(a, o, [](auto&&... x) { softmax_attention(x...); });
                              }));
    }

    // sliding_window_attention: dilation 3 (strided residue problems), two-sided window, sinks.
    ops.push_back(make_op("sliding_window_attention dilated",
                          {{"q", role::input, {B, N, 4, Dk}},
                           {"k", role::input, {B, N, 2, Dk}},
                           {"v", role::input, {B, N, 2, Dv}},
                           {"out", role::output, {B, N, 4, Dv}},
                           {"lse", role::output, {B, 4, N}}},
                          [](const auto& a, auto reference) {
                              static const float sinks[] = {0.5f, -1.0f, 2.0f, 0.0f};
                              window_options o;
                              o.num_threads = a.num_threads;
                              o.executor = a.executor;
                              o.scale = a.scale;
                              const entry_options& e = a.options;
                              o.window_left = e.window_left >= -1 ? e.window_left : 12;
                              o.window_right = e.window_right >= -1 ? e.window_right : 4;
                              o.dilation = e.dilation > 0 ? e.dilation : 3;
                              o.sinks = sinks;
                              if constexpr (decltype(reference)::value)
                                  attend<4>(a, o,
                                            [](auto&&... x) { seqmix::reference::sliding_window_attention(x...); });
                              else attend<4>(a, o, [](auto&&... x) { sliding_window_attention(x...); });
                          }));

    // neighborhood_attention_2d: a 5 x 14 image (N = 70), kernel 3, width dilated by 2, both axes causal, sinks.
    ops.push_back(make_op("neighborhood_attention_2d dilated",
                          {{"q", role::input, {B, 5, N / 5, 4, Dk}},
                           {"k", role::input, {B, 5, N / 5, 2, Dk}},
                           {"v", role::input, {B, 5, N / 5, 2, Dv}},
                           {"out", role::output, {B, 5, N / 5, 4, Dv}},
                           {"lse", role::output, {B, 5, N / 5, 4}}},
                          [](const auto& a, auto reference) {
                              static const float sinks[] = {0.5f, -1.0f, 2.0f, 0.0f};
                              neighborhood_options o;
                              o.num_threads = a.num_threads;
                              o.executor = a.executor;
                              o.scale = a.scale;
                              const entry_options& e = a.options;
                              o.kernel_size = e.kernel_size > 0 ? e.kernel_size : 3;
                              o.dilation = {e.dilation_h > 0 ? e.dilation_h : 1, e.dilation_w > 0 ? e.dilation_w : 2};
                              // A causal width masks short windows per line.
                              const int axes = e.causal_axes >= 0 ? e.causal_axes : 3;
                              o.causal = {(axes & 1) != 0, (axes & 2) != 0};
                              o.sinks = sinks;
                              if constexpr (decltype(reference)::value)
                                  attend<5>(a, o,
                                            [](auto&&... x) { seqmix::reference::neighborhood_attention_2d(x...); });
                              else attend<5>(a, o, [](auto&&... x) { neighborhood_attention_2d(x...); });
                          }));

    // topk_attention (top_k above the keys: a selection without near ties on float data) and
    // block_sparse_attention (MoBA: blocks of 8, 2 best + the local one, block 0).
    ops.push_back(make_op("topk_attention causal",
                          {{"q", role::input, {B, N, 4, Dk}},
                           {"k", role::input, {B, N, 2, Dk}},
                           {"v", role::input, {B, N, 2, Dv}},
                           {"out", role::output, {B, N, 4, Dv}},
                           {"lse", role::output, {B, 4, N}}},
                          [N](const auto& a, auto reference) {
                              topk_options o;
                              o.num_threads = a.num_threads;
                              o.executor = a.executor;
                              o.scale = a.scale;
                              o.causal = true;
                              o.top_k = a.options.top_k > 0 ? a.options.top_k : int(N) + 3;
                              if constexpr (decltype(reference)::value)
                                  attend<4>(a, o, [](auto&&... x) { seqmix::reference::topk_attention(x...); });
                              else attend<4>(a, o, [](auto&&... x) { topk_attention(x...); });
                          }));
    ops.push_back(make_op("block_sparse_attention causal",
                          {{"q", role::input, {B, N, 4, Dk}},
                           {"k", role::input, {B, N, 2, Dk}},
                           {"v", role::input, {B, N, 2, Dv}},
                           {"out", role::output, {B, N, 4, Dv}},
                           {"lse", role::output, {B, 4, N}}},
                          [](const auto& a, auto reference) {
                              block_sparse_options o;
                              o.num_threads = a.num_threads;
                              o.executor = a.executor;
                              o.scale = a.scale;
                              o.causal = true;
                              const entry_options& e = a.options;
                              o.block_size = e.block_size > 0 ? e.block_size : 8;
                              o.top_blocks = e.top_blocks >= 0 ? e.top_blocks : 2;
                              if (e.local_blocks >= 0) o.local_blocks = e.local_blocks;
                              o.keep_first = e.keep_first >= 0 ? e.keep_first == 1 : true;
                              if constexpr (decltype(reference)::value)
                                  attend<4>(a, o, [](auto&&... x) { seqmix::reference::block_sparse_attention(x...); });
                              else attend<4>(a, o, [](auto&&... x) { block_sparse_attention(x...); });
                          }));

    return ops;
}

}  // namespace hostile
