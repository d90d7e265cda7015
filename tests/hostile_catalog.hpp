#pragma once
// Every operator of seqmix, described for the hostile-input tests (hostile.hpp). Shapes are
// small and awkward (odd head dims, grouped heads, a sequence a bit longer than two chunks).
#include <seqmix/ops/gated_linear_attention.hpp>
#include <seqmix/ops/linear_attention.hpp>
#include <seqmix/ops/softmax_attention.hpp>
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
// reference operator from the slot's state, written back to the slot.
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
        if (a.has("g") && a.get("g").shape.size() == 3) {
            fn(token(q), token(k), token(v), token(a.template in<3>("g")), token(out), init, fin);
        } else if (a.has("g")) {
            const auto g = a.template in<2>("g");
            tensor_view<const T, 3> g1(g.ptr(b), {1, 1, g.extent(1)}, {0, 0, g.stride(1)});
            fn(token(q), token(k), token(v), g1, token(out), init, fin);
        } else {
            fn(token(q), token(k), token(v), tensor_view<const T, 4>(), token(out), init, fin);
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
                                     reference_step(a, [&](auto q, auto k, auto v, auto g, auto out, auto init, auto fin) {
                                         (void)g;
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
                                     reference_step(a, [&](auto q, auto k, auto v, auto g, auto out, auto init, auto fin) {
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
    return ops;
}

}  // namespace hostile
