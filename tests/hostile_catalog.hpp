#pragma once
// Every operator of seqmix, described for the hostile-input tests (hostile.hpp). Shapes are
// small and awkward (odd head dims, grouped heads, a sequence a bit longer than two chunks).
#include <seqmix/ops/delta_rule.hpp>
#include <seqmix/ops/gated_linear_attention.hpp>
#include <seqmix/ops/linear_attention.hpp>
#include <seqmix/ops/softmax_attention.hpp>
#include <seqmix/reference/delta_rule.hpp>
#include <seqmix/reference/gated_linear_attention.hpp>
#include <seqmix/reference/linear_attention.hpp>
#include <seqmix/reference/softmax_attention.hpp>

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

// A decode step's reference: for each batch row with a slot, one token of the full
// reference operator from the slot's state, written back to the slot. fn gets the row's
// q, k, v, g (empty if none), out, the slot's state in and out, and beta (empty if none).
template <class T, class F>
void reference_step(const arg_set<T>& a, F&& fn) {
    using seqmix::tensor_view;
    const auto q = a.template in<3>("q"), k = a.template in<3>("k"), v = a.template in<3>("v");
    const auto out = a.template view<3>("out");
    const auto state = a.template view<4>("state");
    const index_t H = state.extent(1), Dk = state.extent(2), Dv = state.extent(3);
    std::vector<T> fin_buf(std::size_t(H * Dk * Dv));
    for (index_t b = 0; b < q.extent(0); ++b) {
        const index_t slot = a.indices() ? a.indices()[b] : b;
        if (slot == seqmix::pad_slot) continue;
        auto token = [&](const auto& x) {  // row b of [B,H,D] as [1,1,H,D]
            using E = typename std::decay_t<decltype(x)>::element_type;
            return tensor_view<E, 4>(x.ptr(b), {1, 1, x.extent(1), x.extent(2)}, {0, 0, x.stride(1), x.stride(2)});
        };
        tensor_view<const T, 4> init(state.ptr(slot), {1, H, Dk, Dv});
        tensor_view<T, 4> fin(fin_buf.data(), {1, H, Dk, Dv});
        auto per_head = [&](const tensor_view<const T, 2>& x) {  // row b of [B,H] as [1,1,H]
            return tensor_view<const T, 3>(x.ptr(b), {1, 1, x.extent(1)}, {0, 0, x.stride(1)});
        };
        const auto beta = a.has("beta") ? per_head(a.template in<2>("beta")) : tensor_view<const T, 3>();
        if (a.has("g") && a.get("g").shape.size() == 3) {
            fn(token(q), token(k), token(v), token(a.template in<3>("g")), token(out), init, fin, beta);
        } else if (a.has("g")) {
            fn(token(q), token(k), token(v), per_head(a.template in<2>("g")), token(out), init, fin, beta);
        } else {
            fn(token(q), token(k), token(v), tensor_view<const T, 4>(), token(out), init, fin, beta);
        }
        for (index_t i = 0; i < H * Dk * Dv; ++i) state.ptr(slot)[i] = fin_buf[std::size_t(i)];
    }
}

// The per-head log decays of linear attention as the const float* its options take.
template <class T>
std::vector<float> decays_of(const arg_set<T>& a) {
    const auto& d = a.get("log_decay");
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

    ops.push_back(make_op("linear_attention (decay)",
                          {{"q", role::input, {B, N, Hk, Dk}},
                           {"k", role::input, {B, N, Hk, Dk}},
                           {"v", role::input, {B, N, Hv, Dv}},
                           {"log_decay", role::gate, {Hv}},
                           {"out", role::output, {B, N, Hv, Dv}},
                           {"initial_state", role::state_in, {B, Hv, Dk, Dv}},
                           {"final_state", role::state_out, {B, Hv, Dk, Dv}}},
                          [](const auto& a, auto reference) {
                              const auto dec = decays_of(a);
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
                                 const auto dec = decays_of(a);
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
    return ops;
}

}  // namespace hostile
