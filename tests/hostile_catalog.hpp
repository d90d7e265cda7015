#pragma once
// Every operator of seqmix, described for the hostile-input tests (hostile.hpp). Shapes are
// small and awkward (odd head dims, grouped heads, a sequence a bit longer than two chunks).
#include <seqmix/ops/causal_conv1d.hpp>
#include <seqmix/ops/delta_rule.hpp>
#include <seqmix/ops/gated_linear_attention.hpp>
#include <seqmix/ops/linear_attention.hpp>
#include <seqmix/ops/selective_scan.hpp>
#include <seqmix/ops/sliding_window_attention.hpp>
#include <seqmix/ops/softmax_attention.hpp>
#include <seqmix/ops/sparse_attention.hpp>
#include <seqmix/ops/ssd_scan.hpp>
#include <seqmix/reference/delta_rule.hpp>
#include <seqmix/reference/gated_linear_attention.hpp>
#include <seqmix/reference/linear_attention.hpp>
#include <seqmix/reference/local_attention.hpp>
#include <seqmix/reference/softmax_attention.hpp>
#include <seqmix/reference/sparse_attention.hpp>
#include <seqmix/reference/state_space.hpp>

#include "hostile.hpp"

namespace hostile {

// Fills one op_spec's three call slots from a generic call `f(args, reference?)`.
template <class F>
op_spec make_op(std::string name, std::vector<arg_desc> args, F f) {
    op_spec op;
    op.name = std::move(name);
    op.args = std::move(args);
    op.run = [f](const arg_set<float>& a) { f(a, std::false_type{}); };
    op.run_double = [f](const arg_set<double>& a) { f(a, std::false_type{}); };
    op.reference = [f](const arg_set<double>& a) { f(a, std::true_type{}); };
    return op;
}

// Row b of a step's [B, ...] view as a one-token [1, 1, ...] view of the full operator.
template <class T, std::size_t R>
seqmix::tensor_view<T, R + 1> one_token(const seqmix::tensor_view<T, R>& x, index_t b) {
    std::array<index_t, R + 1> shape{}, strides{};
    shape[0] = shape[1] = 1;
    for (std::size_t i = 1; i < R; ++i) {
        shape[i + 1] = x.extent(i);
        strides[i + 1] = x.stride(i);
    }
    return {x.ptr(b), shape, strides};
}

// The reference of a state-space step: for each row with a slot, one token of the full
// reference from the slot's state, written back. fn(b, init, fin) runs that token.
template <class T, class F>
void reference_pool_step(const arg_set<T>& a, F&& fn) {
    const auto& st = a.get("state");
    const index_t per_slot = count(st.shape) / st.shape[0];
    std::vector<T> fin_buf(static_cast<std::size_t>(per_slot));
    for (index_t b = 0; b < a.args[0].shape[0]; ++b) {
        const index_t slot = a.indices() ? a.indices()[b] : b;
        if (slot == seqmix::pad_slot) continue;
        fn(b, st.data + slot * per_slot, fin_buf.data());
        std::copy(fin_buf.begin(), fin_buf.end(), st.data + slot * per_slot);
    }
}

// A matrix-state step's reference (reference_pool_step): fn gets the row's q, k, v, g (empty
// if none), out, the slot's state in and out, and beta (empty if none).
template <class T, class F>
void reference_step(const arg_set<T>& a, F&& fn) {
    using seqmix::tensor_view;
    const auto& st = a.get("state");
    const index_t H = st.shape[1], Dk = st.shape[2], Dv = st.shape[3];
    reference_pool_step(a, [&](index_t b, const T* init_p, T* fin_p) {
        const tensor_view<const T, 4> init(init_p, {1, H, Dk, Dv});
        const tensor_view<T, 4> fin(fin_p, {1, H, Dk, Dv});
        const auto q = one_token(a.template in<3>("q"), b), k = one_token(a.template in<3>("k"), b);
        const auto v = one_token(a.template in<3>("v"), b);
        const auto out = one_token(a.template view<3>("out"), b);
        const auto beta = a.has("beta") ? one_token(a.template in<2>("beta"), b) : tensor_view<const T, 3>();
        if (a.has("g") && a.get("g").shape.size() == 3) fn(q, k, v, one_token(a.template in<3>("g"), b), out, init, fin, beta);
        else if (a.has("g")) fn(q, k, v, one_token(a.template in<2>("g"), b), out, init, fin, beta);
        else fn(q, k, v, tensor_view<const T, 4>(), out, init, fin, beta);
    });
}

// An options array (log_decay, D, a bias) as the const float* the options take; empty if not an argument.
template <class T>
std::vector<float> params_of(const arg_set<T>& a, const std::string& name) {
    if (!a.has(name)) return {};
    const auto& d = a.get(name);
    return std::vector<float>(d.storage->begin(), d.storage->end());
}

inline std::vector<op_spec> catalog(index_t N = 70, index_t B = 2) {
    using namespace seqmix;
    const index_t Hk = 1, Hv = 2, Dk = 5, Dv = 7;
    std::vector<op_spec> ops;

    for (int variant = 0; variant < 3; ++variant) {
        // 0: plain GQA; 1: causal with a window (masked tiles); 2: decode (split KV) with a window.
        const index_t nq = variant == 2 ? 1 : N, hq = 4, hkv = 2;
        const char* names[] = {"softmax_attention", "softmax_attention causal window", "softmax_attention decode"};
        ops.push_back(make_op(names[variant],
                              {{"q", role::input, {B, nq, hq, Dk}},
                               {"k", role::input, {B, N, hkv, Dk}},
                               {"v", role::input, {B, N, hkv, Dv}},
                               {"out", role::output, {B, nq, hq, Dv}},
                               {"lse", role::output, {B, hq, nq}}},
                              [variant](const auto& a, auto reference) {
                                  attention_options o;
                                  o.num_threads = a.num_threads;
                                  o.scale = a.scale;
                                  if (variant >= 1) o.window_left = 9;
                                  if (variant == 1) o.causal = true;
                                  if constexpr (decltype(reference)::value)
                                      seqmix::reference::softmax_attention(a.template in<4>("q"), a.template in<4>("k"),
                                                                           a.template in<4>("v"), a.template view<4>("out"),
                                                                           o, a.template view<3>("lse"));
                                  else
                                      softmax_attention(a.template in<4>("q"), a.template in<4>("k"), a.template in<4>("v"),
                                                        a.template view<4>("out"), o, a.template view<3>("lse"));
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
                              o.scale = a.scale;
                              o.window_left = 12;
                              o.window_right = 4;
                              o.dilation = 3;
                              o.sinks = sinks;
                              if constexpr (decltype(reference)::value)
                                  seqmix::reference::sliding_window_attention(
                                      a.template in<4>("q"), a.template in<4>("k"), a.template in<4>("v"),
                                      a.template view<4>("out"), o, a.template view<3>("lse"));
                              else
                                  sliding_window_attention(a.template in<4>("q"), a.template in<4>("k"),
                                                           a.template in<4>("v"), a.template view<4>("out"), o,
                                                           a.template view<3>("lse"));
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
                              o.scale = a.scale;
                              o.kernel_size = 3;
                              o.dilation = {1, 2};
                              o.causal = {true, true};  // a causal width masks short windows per line
                              o.sinks = sinks;
                              if constexpr (decltype(reference)::value)
                                  seqmix::reference::neighborhood_attention_2d(
                                      a.template in<5>("q"), a.template in<5>("k"), a.template in<5>("v"),
                                      a.template view<5>("out"), o, a.template view<4>("lse"));
                              else
                                  neighborhood_attention_2d(a.template in<5>("q"), a.template in<5>("k"),
                                                            a.template in<5>("v"), a.template view<5>("out"), o,
                                                            a.template view<4>("lse"));
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
                              o.scale = a.scale;
                              o.causal = true;
                              o.top_k = int(N) + 3;
                              if constexpr (decltype(reference)::value)
                                  seqmix::reference::topk_attention(a.template in<4>("q"), a.template in<4>("k"),
                                                                    a.template in<4>("v"), a.template view<4>("out"), o,
                                                                    a.template view<3>("lse"));
                              else
                                  topk_attention(a.template in<4>("q"), a.template in<4>("k"), a.template in<4>("v"),
                                                 a.template view<4>("out"), o, a.template view<3>("lse"));
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
                              o.scale = a.scale;
                              o.causal = true;
                              o.block_size = 8;
                              o.top_blocks = 2;
                              o.keep_first = true;
                              if constexpr (decltype(reference)::value)
                                  seqmix::reference::block_sparse_attention(
                                      a.template in<4>("q"), a.template in<4>("k"), a.template in<4>("v"),
                                      a.template view<4>("out"), o, a.template view<3>("lse"));
                              else
                                  block_sparse_attention(a.template in<4>("q"), a.template in<4>("k"),
                                                         a.template in<4>("v"), a.template view<4>("out"), o,
                                                         a.template view<3>("lse"));
                          }));

    ops.push_back(make_op("linear_attention (decay)",
                          {{"q", role::input, {B, N, Hk, Dk}},
                           {"k", role::input, {B, N, Hk, Dk}},
                           {"v", role::input, {B, N, Hv, Dv}},
                           {"log_decay", role::gate, {Hv}},
                           {"out", role::output, {B, N, Hv, Dv}},
                           {"initial_state", role::state_in, {B, Hv, Dk, Dv}},
                           {"final_state", role::state_out, {B, Hv, Dk, Dv}}},
                          [](const auto& a, auto reference) {
                              const auto dec = params_of(a, "log_decay");
                              linear_attention_options o;
                              o.log_decay = dec.data();
                              o.num_threads = a.num_threads;
                              o.scale = a.scale;
                              auto call = [&](auto&& fn) {
                                  fn(a.template in<4>("q"), a.template in<4>("k"), a.template in<4>("v"),
                                     a.template view<4>("out"), o, a.template in<4>("initial_state"),
                                     a.template view<4>("final_state"));
                              };
                              if constexpr (decltype(reference)::value)
                                  call([](auto&&... x) { seqmix::reference::linear_attention(x...); });
                              else
                                  call([](auto&&... x) { linear_attention(x...); });
                          }));

    for (bool vector_gate : {true, false}) {
        std::vector<index_t> gshape = vector_gate ? std::vector<index_t>{B, N, Hv, Dk} : std::vector<index_t>{B, N, Hv};
        ops.push_back(make_op(vector_gate ? "gated_linear_attention (vector gate)" : "gated_linear_attention (scalar gate)",
                              {{"q", role::input, {B, N, Hk, Dk}},
                               {"k", role::input, {B, N, Hk, Dk}},
                               {"v", role::input, {B, N, Hv, Dv}},
                               {"g", role::gate, gshape},
                               {"out", role::output, {B, N, Hv, Dv}},
                               {"initial_state", role::state_in, {B, Hv, Dk, Dv}},
                               {"final_state", role::state_out, {B, Hv, Dk, Dv}}},
                              [vector_gate](const auto& a, auto reference) {
                                  gla_options o;
                                  o.num_threads = a.num_threads;
                                  o.scale = a.scale;
                                  auto call = [&](auto g, auto&& fn) {
                                      fn(a.template in<4>("q"), a.template in<4>("k"), a.template in<4>("v"), g,
                                         a.template view<4>("out"), o, a.template in<4>("initial_state"),
                                         a.template view<4>("final_state"));
                                  };
                                  auto run = [&](auto g) {
                                      if constexpr (decltype(reference)::value)
                                          call(g, [](auto&&... x) { seqmix::reference::gated_linear_attention(x...); });
                                      else
                                          call(g, [](auto&&... x) { gated_linear_attention(x...); });
                                  };
                                  if (vector_gate) run(a.template in<4>("g"));
                                  else run(a.template in<3>("g"));
                              }));
    }

    // Decode steps: a pool of 5 slots for B rows (state_indices set by the tests).
    const index_t slots = B + 3;
    {
        op_spec op = make_op("linear_attention_step (decay)",
                             {{"q", role::input, {B, Hk, Dk}},
                              {"k", role::input, {B, Hk, Dk}},
                              {"v", role::input, {B, Hv, Dv}},
                              {"log_decay", role::gate, {Hv}},
                              {"out", role::output, {B, Hv, Dv}},
                              {"state", role::state_inout, {slots, Hv, Dk, Dv}}},
                             [](const auto& a, auto reference) {
                                 const auto dec = params_of(a, "log_decay");
                                 linear_attention_step_options o;
                                 o.log_decay = dec.data();
                                 o.num_threads = a.num_threads;
                                 o.scale = a.scale;
                                 o.state_indices = a.indices();
                                 if constexpr (decltype(reference)::value) {
                                     // The step's reference: one token of the full reference per row.
                                     reference_step(a, [&](auto q, auto k, auto v, auto, auto out, auto init, auto fin, auto) {
                                         linear_attention_options lo;
                                         lo.log_decay = dec.data();
                                         lo.scale = a.scale;
                                         seqmix::reference::linear_attention(q, k, v, out, lo, init, fin);
                                     });
                                 } else {
                                     linear_attention_step(a.template in<3>("q"), a.template in<3>("k"), a.template in<3>("v"),
                                                           a.template view<3>("out"), a.template view<4>("state"), o);
                                 }
                             });
        op.step = true;
        op.seq_axis = -1;
        ops.push_back(op);
    }
    for (bool vector_gate : {true, false}) {
        std::vector<index_t> gshape = vector_gate ? std::vector<index_t>{B, Hv, Dk} : std::vector<index_t>{B, Hv};
        op_spec op = make_op(vector_gate ? "gated_linear_attention_step (vector gate)"
                                         : "gated_linear_attention_step (scalar gate)",
                             {{"q", role::input, {B, Hk, Dk}},
                              {"k", role::input, {B, Hk, Dk}},
                              {"v", role::input, {B, Hv, Dv}},
                              {"g", role::gate, gshape},
                              {"out", role::output, {B, Hv, Dv}},
                              {"state", role::state_inout, {slots, Hv, Dk, Dv}}},
                             [vector_gate](const auto& a, auto reference) {
                                 gla_step_options o;
                                 o.num_threads = a.num_threads;
                                 o.scale = a.scale;
                                 o.state_indices = a.indices();
                                 if constexpr (decltype(reference)::value) {
                                     reference_step(a, [&](auto q, auto k, auto v, auto g, auto out, auto init, auto fin, auto) {
                                         gla_options ro;
                                         ro.scale = a.scale;
                                         seqmix::reference::gated_linear_attention(q, k, v, g, out, ro, init, fin);
                                     });
                                 } else if (vector_gate) {
                                     gated_linear_attention_step(a.template in<3>("q"), a.template in<3>("k"),
                                                                 a.template in<3>("v"), a.template in<3>("g"),
                                                                 a.template view<3>("out"), a.template view<4>("state"), o);
                                 } else {
                                     gated_linear_attention_step(a.template in<3>("q"), a.template in<3>("k"),
                                                                 a.template in<3>("v"), a.template in<2>("g"),
                                                                 a.template view<3>("out"), a.template view<4>("state"), o);
                                 }
                             });
        op.step = true;
        op.seq_axis = -1;
        ops.push_back(op);
    }

    // The delta rule: no gate (DeltaNet), per head (Gated DeltaNet), per key channel (KDA);
    // q and k l2-normalized in the kernel (beta up to 1 keeps the recurrence contracting).
    const char* delta_names[] = {"delta_rule", "gated_delta_rule (scalar gate)", "gated_delta_rule (vector gate)"};
    for (delta_form form : {delta_form::recurrent, delta_form::chunkwise}) {
        for (int gate = 0; gate < 3; ++gate) {
            std::vector<arg_desc> args = {{"q", role::input, {B, N, Hk, Dk}},
                                          {"k", role::input, {B, N, Hk, Dk}},
                                          {"v", role::input, {B, N, Hv, Dv}}};
            if (gate == 1) args.push_back({"g", role::gate, {B, N, Hv}});
            if (gate == 2) args.push_back({"g", role::gate, {B, N, Hv, Dk}});
            args.push_back({"beta", role::rate, {B, N, Hv}});
            args.push_back({"out", role::output, {B, N, Hv, Dv}});
            args.push_back({"initial_state", role::state_in, {B, Hv, Dk, Dv}});
            args.push_back({"final_state", role::state_out, {B, Hv, Dk, Dv}});
            const std::string name = std::string(delta_names[gate]) + (form == delta_form::chunkwise ? ", chunkwise" : "");
            ops.push_back(make_op(name, args, [gate, form](const auto& a, auto reference) {
                delta_options o;
                o.num_threads = a.num_threads;
                o.scale = a.scale;
                o.qk_l2norm = true;
                o.form = form;
                const auto q = a.template in<4>("q"), k = a.template in<4>("k"), v = a.template in<4>("v");
                const auto beta = a.template in<3>("beta");
                const auto out = a.template view<4>("out");
                const auto init = a.template in<4>("initial_state");
                const auto fin = a.template view<4>("final_state");
                if constexpr (decltype(reference)::value) {
                    if (gate == 0) seqmix::reference::delta_rule(q, k, v, beta, out, o, init, fin);
                    if (gate == 1) seqmix::reference::gated_delta_rule(q, k, v, a.template in<3>("g"), beta, out, o, init, fin);
                    if (gate == 2) seqmix::reference::gated_delta_rule(q, k, v, a.template in<4>("g"), beta, out, o, init, fin);
                } else {
                    if (gate == 0) delta_rule(q, k, v, beta, out, o, init, fin);
                    if (gate == 1) gated_delta_rule(q, k, v, a.template in<3>("g"), beta, out, o, init, fin);
                    if (gate == 2) gated_delta_rule(q, k, v, a.template in<4>("g"), beta, out, o, init, fin);
                }
            }));
        }
    }
    const char* delta_step_names[] = {"delta_rule_step", "gated_delta_rule_step (scalar gate)",
                                      "gated_delta_rule_step (vector gate)"};
    for (int gate = 0; gate < 3; ++gate) {
        std::vector<arg_desc> args = {{"q", role::input, {B, Hk, Dk}},
                                      {"k", role::input, {B, Hk, Dk}},
                                      {"v", role::input, {B, Hv, Dv}}};
        if (gate == 1) args.push_back({"g", role::gate, {B, Hv}});
        if (gate == 2) args.push_back({"g", role::gate, {B, Hv, Dk}});
        args.push_back({"beta", role::rate, {B, Hv}});
        args.push_back({"out", role::output, {B, Hv, Dv}});
        args.push_back({"state", role::state_inout, {slots, Hv, Dk, Dv}});
        op_spec op = make_op(delta_step_names[gate], args, [gate](const auto& a, auto reference) {
            delta_step_options o;
            o.num_threads = a.num_threads;
            o.scale = a.scale;
            o.qk_l2norm = true;
            o.state_indices = a.indices();
            if constexpr (decltype(reference)::value) {
                reference_step(a, [&](auto q, auto k, auto v, auto g, auto out, auto init, auto fin, auto beta) {
                    delta_options ro;
                    ro.scale = a.scale;
                    ro.qk_l2norm = true;
                    if constexpr (decltype(g)::rank == 4) {
                        if (g.empty()) seqmix::reference::delta_rule(q, k, v, beta, out, ro, init, fin);
                        else seqmix::reference::gated_delta_rule(q, k, v, g, beta, out, ro, init, fin);
                    } else {
                        seqmix::reference::gated_delta_rule(q, k, v, g, beta, out, ro, init, fin);
                    }
                });
            } else {
                const auto q = a.template in<3>("q"), k = a.template in<3>("k"), v = a.template in<3>("v");
                const auto beta = a.template in<2>("beta");
                const auto out = a.template view<3>("out");
                const auto state = a.template view<4>("state");
                if (gate == 0) delta_rule_step(q, k, v, beta, out, state, o);
                if (gate == 1) gated_delta_rule_step(q, k, v, a.template in<2>("g"), beta, out, state, o);
                if (gate == 2) gated_delta_rule_step(q, k, v, a.template in<3>("g"), beta, out, state, o);
            }
        });
        op.step = true;
        op.seq_axis = -1;
        ops.push_back(op);
    }

    // State-space scans: 6 channels in 2 groups, 5 states; 3 heads of dim 4 in 1 group.
    const index_t Din = 6, S = 5, G = 2, H = 3, P = 4, W = 4;
    {
        op_spec op = make_op("selective_scan",
                             {{"u", role::input, {B, N, Din}},
                              {"delta", role::input, {B, N, Din}},
                              {"A", role::gate, {Din, S}},
                              {"B", role::input, {B, N, G, S}},
                              {"C", role::input, {B, N, G, S}},
                              {"z", role::input, {B, N, Din}},
                              {"D", role::param, {Din}},
                              {"delta_bias", role::param, {Din}},
                              {"out", role::output, {B, N, Din}},
                              {"initial_state", role::state_in, {B, Din, S}},
                              {"final_state", role::state_out, {B, Din, S}}},
                             [](const auto& a, auto reference) {
                                 using T = typename std::decay_t<decltype(a)>::value_type;
                                 const auto D = params_of(a, "D"), bias = params_of(a, "delta_bias");
                                 selective_scan_options<T> o;
                                 o.D = D.data();
                                 o.delta_bias = bias.data();
                                 o.delta_softplus = true;
                                 o.z = a.template in<3>("z");
                                 o.num_threads = a.num_threads;
                                 auto call = [&](auto&& fn) {
                                     fn(a.template in<3>("u"), a.template in<3>("delta"), a.template in<2>("A"),
                                        a.template in<4>("B"), a.template in<4>("C"), a.template view<3>("out"), o,
                                        a.template in<3>("initial_state"), a.template view<3>("final_state"));
                                 };
                                 if constexpr (decltype(reference)::value)
                                     call([](auto&&... x) { seqmix::reference::selective_scan(x...); });
                                 else
                                     call([](auto&&... x) { selective_scan(x...); });
                             });
        op.has_scale = false;
        op.channel_arg = "u";
        op.channel_message = "channel count >= 1";
        ops.push_back(op);
    }
    {
        op_spec op = make_op("ssd_scan",
                             {{"x", role::input, {B, N, H, P}},
                              {"dt", role::rate, {B, N, H}},
                              {"A", role::gate, {H}},
                              {"B", role::input, {B, N, 1, S}},
                              {"C", role::input, {B, N, 1, S}},
                              {"z", role::input, {B, N, H, P}},
                              {"D", role::param, {H}},
                              {"dt_bias", role::param, {H}},
                              {"out", role::output, {B, N, H, P}},
                              {"initial_state", role::state_in, {B, H, P, S}},
                              {"final_state", role::state_out, {B, H, P, S}}},
                             [](const auto& a, auto reference) {
                                 using T = typename std::decay_t<decltype(a)>::value_type;
                                 const auto D = params_of(a, "D"), bias = params_of(a, "dt_bias");
                                 ssd_options<T> o;
                                 o.D = D.data();
                                 o.dt_bias = bias.data();
                                 o.dt_softplus = true;
                                 o.z = a.template in<4>("z");
                                 o.num_threads = a.num_threads;
                                 auto call = [&](auto&& fn) {
                                     fn(a.template in<4>("x"), a.template in<3>("dt"), a.template in<1>("A"),
                                        a.template in<4>("B"), a.template in<4>("C"), a.template view<4>("out"), o,
                                        a.template in<4>("initial_state"), a.template view<4>("final_state"));
                                 };
                                 if constexpr (decltype(reference)::value)
                                     call([](auto&&... x) { seqmix::reference::ssd_scan(x...); });
                                 else
                                     call([](auto&&... x) { ssd_scan(x...); });
                             });
        op.has_scale = false;
        op.channel_arg = "x";
        ops.push_back(op);
    }
    {
        op_spec op = make_op("causal_conv1d",
                             {{"x", role::input, {B, N, Din}},
                              {"weight", role::input, {Din, W}},
                              {"bias", role::param, {Din}},
                              {"out", role::output, {B, N, Din}},
                              {"initial_state", role::state_in, {B, Din, W - 1}},
                              {"final_state", role::state_out, {B, Din, W - 1}}},
                             [](const auto& a, auto reference) {
                                 const auto bias = params_of(a, "bias");
                                 conv1d_options o;
                                 o.bias = bias.data();
                                 o.activation = activation::silu;
                                 o.num_threads = a.num_threads;
                                 auto call = [&](auto&& fn) {
                                     fn(a.template in<3>("x"), a.template in<2>("weight"), a.template view<3>("out"), o,
                                        a.template in<3>("initial_state"), a.template view<3>("final_state"));
                                 };
                                 if constexpr (decltype(reference)::value)
                                     call([](auto&&... x) { seqmix::reference::causal_conv1d(x...); });
                                 else
                                     call([](auto&&... x) { causal_conv1d(x...); });
                             });
        op.has_scale = false;
        op.channel_arg = "x";
        op.channel_message = "channel count >= 1";
        ops.push_back(op);
    }

    // Their decode steps, on pools of B + 3 slots.
    {
        op_spec op = make_op("selective_scan_step",
                             {{"u", role::input, {B, Din}},
                              {"delta", role::input, {B, Din}},
                              {"A", role::gate, {Din, S}},
                              {"B", role::input, {B, G, S}},
                              {"C", role::input, {B, G, S}},
                              {"z", role::input, {B, Din}},
                              {"D", role::param, {Din}},
                              {"delta_bias", role::param, {Din}},
                              {"out", role::output, {B, Din}},
                              {"state", role::state_inout, {slots, Din, S}}},
                             [](const auto& a, auto reference) {
                                 using T = typename std::decay_t<decltype(a)>::value_type;
                                 const auto D = params_of(a, "D"), bias = params_of(a, "delta_bias");
                                 if constexpr (decltype(reference)::value) {
                                     selective_scan_options<T> o;
                                     o.D = D.data();
                                     o.delta_bias = bias.data();
                                     o.delta_softplus = true;
                                     reference_pool_step(a, [&](index_t b, const T* init, T* fin) {
                                         o.z = one_token(a.template in<2>("z"), b);
                                         seqmix::reference::selective_scan(
                                             one_token(a.template in<2>("u"), b), one_token(a.template in<2>("delta"), b),
                                             a.template in<2>("A"), one_token(a.template in<3>("B"), b),
                                             one_token(a.template in<3>("C"), b), one_token(a.template view<2>("out"), b), o,
                                             seqmix::tensor_view<const T, 3>(init, {1, Din, S}),
                                             seqmix::tensor_view<T, 3>(fin, {1, Din, S}));
                                     });
                                 } else {
                                     selective_scan_step_options<T> o;
                                     o.D = D.data();
                                     o.delta_bias = bias.data();
                                     o.delta_softplus = true;
                                     o.z = a.template in<2>("z");
                                     o.state_indices = a.indices();
                                     o.num_threads = a.num_threads;
                                     selective_scan_step(a.template in<2>("u"), a.template in<2>("delta"), a.template in<2>("A"),
                                                         a.template in<3>("B"), a.template in<3>("C"),
                                                         a.template view<2>("out"), a.template view<3>("state"), o);
                                 }
                             });
        op.step = true;
        op.seq_axis = -1;
        op.has_scale = false;
        op.channel_arg = "u";
        op.channel_message = "channel count >= 1";
        ops.push_back(op);
    }
    {
        op_spec op = make_op("ssd_step",
                             {{"x", role::input, {B, H, P}},
                              {"dt", role::rate, {B, H}},
                              {"A", role::gate, {H}},
                              {"B", role::input, {B, 1, S}},
                              {"C", role::input, {B, 1, S}},
                              {"z", role::input, {B, H, P}},
                              {"D", role::param, {H}},
                              {"dt_bias", role::param, {H}},
                              {"out", role::output, {B, H, P}},
                              {"state", role::state_inout, {slots, H, P, S}}},
                             [](const auto& a, auto reference) {
                                 using T = typename std::decay_t<decltype(a)>::value_type;
                                 const auto D = params_of(a, "D"), bias = params_of(a, "dt_bias");
                                 if constexpr (decltype(reference)::value) {
                                     ssd_options<T> o;
                                     o.D = D.data();
                                     o.dt_bias = bias.data();
                                     o.dt_softplus = true;
                                     reference_pool_step(a, [&](index_t b, const T* init, T* fin) {
                                         o.z = one_token(a.template in<3>("z"), b);
                                         seqmix::reference::ssd_scan(
                                             one_token(a.template in<3>("x"), b), one_token(a.template in<2>("dt"), b),
                                             a.template in<1>("A"), one_token(a.template in<3>("B"), b),
                                             one_token(a.template in<3>("C"), b), one_token(a.template view<3>("out"), b), o,
                                             seqmix::tensor_view<const T, 4>(init, {1, H, P, S}),
                                             seqmix::tensor_view<T, 4>(fin, {1, H, P, S}));
                                     });
                                 } else {
                                     ssd_step_options<T> o;
                                     o.D = D.data();
                                     o.dt_bias = bias.data();
                                     o.dt_softplus = true;
                                     o.z = a.template in<3>("z");
                                     o.state_indices = a.indices();
                                     o.num_threads = a.num_threads;
                                     ssd_step(a.template in<3>("x"), a.template in<2>("dt"), a.template in<1>("A"),
                                              a.template in<3>("B"), a.template in<3>("C"), a.template view<3>("out"),
                                              a.template view<4>("state"), o);
                                 }
                             });
        op.step = true;
        op.seq_axis = -1;
        op.has_scale = false;
        op.channel_arg = "x";
        ops.push_back(op);
    }
    {
        op_spec op = make_op("causal_conv1d_step",
                             {{"x", role::input, {B, Din}},
                              {"weight", role::input, {Din, W}},
                              {"bias", role::param, {Din}},
                              {"out", role::output, {B, Din}},
                              {"state", role::state_inout, {slots, Din, W - 1}}},
                             [](const auto& a, auto reference) {
                                 using T = typename std::decay_t<decltype(a)>::value_type;
                                 const auto bias = params_of(a, "bias");
                                 if constexpr (decltype(reference)::value) {
                                     conv1d_options o;
                                     o.bias = bias.data();
                                     o.activation = activation::silu;
                                     reference_pool_step(a, [&](index_t b, const T* init, T* fin) {
                                         seqmix::reference::causal_conv1d(
                                             one_token(a.template in<2>("x"), b), a.template in<2>("weight"),
                                             one_token(a.template view<2>("out"), b), o,
                                             seqmix::tensor_view<const T, 3>(init, {1, Din, W - 1}),
                                             seqmix::tensor_view<T, 3>(fin, {1, Din, W - 1}));
                                     });
                                 } else {
                                     conv1d_step_options o;
                                     o.bias = bias.data();
                                     o.activation = activation::silu;
                                     o.state_indices = a.indices();
                                     o.num_threads = a.num_threads;
                                     causal_conv1d_step(a.template in<2>("x"), a.template in<2>("weight"),
                                                        a.template view<2>("out"), a.template view<3>("state"), o);
                                 }
                             });
        op.step = true;
        op.seq_axis = -1;
        op.has_scale = false;
        op.channel_arg = "x";
        op.channel_message = "channel count >= 1";
        ops.push_back(op);
    }
    return ops;
}

}  // namespace hostile
