// The hostile catalog's recurrent operators and state-space scans (hostile_catalog.hpp).
#include "hostile_catalog.hpp"

namespace hostile {

std::vector<op_spec> recurrent_ops(const catalog_sizes& sz) {
    using namespace seqmix;
    const index_t N = sz.N, B = sz.B, Dk = sz.Dk, Dv = sz.Dv;
    [[maybe_unused]] const index_t Hk = 1, Hv = 2;
    std::vector<op_spec> ops;
    ops.push_back(make_op(
        "linear_attention (decay)",
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
            o.executor = a.executor;
            o.scale = a.scale;
            o.chunk_size = a.options.chunk_size;
            static const feature_map maps[] = {feature_map::identity, feature_map::elu_plus_one, feature_map::relu};
            o.feature_map = maps[a.options.feature_map % 3];
            const auto states = served_states<4>(a, o);
            auto call = [&](auto&& fn) {
                fn(a.template in<4>("q"), a.template in<4>("k"), a.template in<4>("v"), a.template view<4>("out"), o,
                   states.first, states.second);
            };
            if constexpr (decltype(reference)::value)
                call([](auto&&... x) { seqmix::reference::linear_attention(x...); });
            else call([](auto&&... x) { linear_attention(x...); });
        }));

    for (bool vector_gate : {true, false}) {
        std::vector<index_t> gshape = vector_gate ? std::vector<index_t>{B, N, Hv, Dk} : std::vector<index_t>{B, N, Hv};
        ops.push_back(
            make_op(vector_gate ? "gated_linear_attention (vector gate)" : "gated_linear_attention (scalar gate)",
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
                        o.executor = a.executor;
                        o.scale = a.scale;
                        o.chunk_size = a.options.chunk_size;
                        const auto states = served_states<4>(a, o);
                        auto call = [&](auto g, auto&& fn) {
                            fn(a.template in<4>("q"), a.template in<4>("k"), a.template in<4>("v"), g,
                               a.template view<4>("out"), o, states.first, states.second);
                        };
                        auto run = [&](auto g) {
                            if constexpr (decltype(reference)::value)
                                call(g, [](auto&&... x) { seqmix::reference::gated_linear_attention(x...); });
                            else call(g, [](auto&&... x) { gated_linear_attention(x...); });
                        };
                        if (vector_gate) run(a.template in<4>("g"));
                        else run(a.template in<3>("g"));
                    }));
    }

    // Decode steps: a pool of 5 slots for B rows (state_indices set by the tests).
    const index_t slots = B + 3;
    {
        op_spec op =
            make_op("linear_attention_step (decay)",
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
                        o.executor = a.executor;
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
        op_spec op = make_op(
            vector_gate ? "gated_linear_attention_step (vector gate)" : "gated_linear_attention_step (scalar gate)",
            {{"q", role::input, {B, Hk, Dk}},
             {"k", role::input, {B, Hk, Dk}},
             {"v", role::input, {B, Hv, Dv}},
             {"g", role::gate, gshape},
             {"out", role::output, {B, Hv, Dv}},
             {"state", role::state_inout, {slots, Hv, Dk, Dv}}},
            [vector_gate](const auto& a, auto reference) {
                gla_step_options o;
                o.num_threads = a.num_threads;
                o.executor = a.executor;
                o.scale = a.scale;
                o.state_indices = a.indices();
                if constexpr (decltype(reference)::value) {
                    reference_step(a, [&](auto q, auto k, auto v, auto g, auto out, auto init, auto fin, auto) {
                        gla_options ro;
                        ro.scale = a.scale;
                        seqmix::reference::gated_linear_attention(q, k, v, g, out, ro, init, fin);
                    });
                } else if (vector_gate) {
                    gated_linear_attention_step(a.template in<3>("q"), a.template in<3>("k"), a.template in<3>("v"),
                                                a.template in<3>("g"), a.template view<3>("out"),
                                                a.template view<4>("state"), o);
                } else {
                    gated_linear_attention_step(a.template in<3>("q"), a.template in<3>("k"), a.template in<3>("v"),
                                                a.template in<2>("g"), a.template view<3>("out"),
                                                a.template view<4>("state"), o);
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
            const std::string name =
                std::string(delta_names[gate]) + (form == delta_form::chunkwise ? ", chunkwise" : "");
            ops.push_back(make_op(name, args, [gate, form](const auto& a, auto reference) {
                delta_options o;
                o.num_threads = a.num_threads;
                o.executor = a.executor;
                o.scale = a.scale;
                o.qk_l2norm = true;
                o.form = form;
                o.chunk_size = a.options.chunk_size;
                const auto q = a.template in<4>("q"), k = a.template in<4>("k"), v = a.template in<4>("v");
                const auto beta = a.template in<3>("beta");
                const auto out = a.template view<4>("out");
                const auto [init, fin] = served_states<4>(a, o);
                if constexpr (decltype(reference)::value) {
                    if (gate == 0) seqmix::reference::delta_rule(q, k, v, beta, out, o, init, fin);
                    if (gate == 1)
                        seqmix::reference::gated_delta_rule(q, k, v, a.template in<3>("g"), beta, out, o, init, fin);
                    if (gate == 2)
                        seqmix::reference::gated_delta_rule(q, k, v, a.template in<4>("g"), beta, out, o, init, fin);
                } else {
                    if (gate == 0) delta_rule(q, k, v, beta, out, o, init, fin);
                    if (gate == 1) gated_delta_rule(q, k, v, a.template in<3>("g"), beta, out, o, init, fin);
                    if (gate == 2) gated_delta_rule(q, k, v, a.template in<4>("g"), beta, out, o, init, fin);
                }
            }));
        }
    }
    // Gated DeltaNet as the models' layers hand it over: g and beta the raw projections, the
    // gates computed in the kernel (A_log, dt_bias, beta_sigmoid).
    ops.push_back(make_op("gated_delta_rule (gates projected in the kernel)",
                          {{"q", role::input, {B, N, Hk, Dk}},
                           {"k", role::input, {B, N, Hk, Dk}},
                           {"v", role::input, {B, N, Hv, Dv}},
                           {"g", role::projection, {B, N, Hv}},
                           {"beta", role::projection, {B, N, Hv}},
                           {"A_log", role::param, {Hv}},
                           {"dt_bias", role::param, {Hv}},
                           {"out", role::output, {B, N, Hv, Dv}},
                           {"initial_state", role::state_in, {B, Hv, Dk, Dv}},
                           {"final_state", role::state_out, {B, Hv, Dk, Dv}}},
                          [](const auto& a, auto reference) {
                              const auto A_log = params_of(a, "A_log"), dt_bias = params_of(a, "dt_bias");
                              delta_options o;
                              o.num_threads = a.num_threads;
                              o.executor = a.executor;
                              o.scale = a.scale;
                              o.qk_l2norm = true;
                              o.A_log = A_log.data();
                              o.dt_bias = dt_bias.data();
                              o.beta_sigmoid = true;
                              o.chunk_size = a.options.chunk_size;
                              const auto states = served_states<4>(a, o);
                              auto call = [&](auto&& fn) {
                                  fn(a.template in<4>("q"), a.template in<4>("k"), a.template in<4>("v"),
                                     a.template in<3>("g"), a.template in<3>("beta"), a.template view<4>("out"), o,
                                     states.first, states.second);
                              };
                              if constexpr (decltype(reference)::value)
                                  call([](auto&&... x) { seqmix::reference::gated_delta_rule(x...); });
                              else call([](auto&&... x) { gated_delta_rule(x...); });
                          }));
    const char* delta_step_names[] = {"delta_rule_step", "gated_delta_rule_step (scalar gate)",
                                      "gated_delta_rule_step (vector gate)"};
    for (int gate = 0; gate < 3; ++gate) {
        std::vector<arg_desc> args = {
            {"q", role::input, {B, Hk, Dk}}, {"k", role::input, {B, Hk, Dk}}, {"v", role::input, {B, Hv, Dv}}};
        if (gate == 1) args.push_back({"g", role::gate, {B, Hv}});
        if (gate == 2) args.push_back({"g", role::gate, {B, Hv, Dk}});
        args.push_back({"beta", role::rate, {B, Hv}});
        args.push_back({"out", role::output, {B, Hv, Dv}});
        args.push_back({"state", role::state_inout, {slots, Hv, Dk, Dv}});
        op_spec op = make_op(delta_step_names[gate], args, [gate](const auto& a, auto reference) {
            delta_step_options o;
            o.num_threads = a.num_threads;
            o.executor = a.executor;
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
    const index_t Din = sz.Din, S = sz.S, G = sz.G, H = sz.H, P = sz.P, W = sz.W;
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
                                 o.delta_softplus = a.options.softplus != 0;
                                 o.z = a.template in<3>("z");
                                 o.num_threads = a.num_threads;
                                 o.executor = a.executor;
                                 const auto states = served_states<3>(a, o);
                                 auto call = [&](auto&& fn) {
                                     fn(a.template in<3>("u"), a.template in<3>("delta"), a.template in<2>("A"),
                                        a.template in<4>("B"), a.template in<4>("C"), a.template view<3>("out"), o,
                                        states.first, states.second);
                                 };
                                 if constexpr (decltype(reference)::value)
                                     call([](auto&&... x) { seqmix::reference::selective_scan(x...); });
                                 else call([](auto&&... x) { selective_scan(x...); });
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
                                 o.dt_softplus = a.options.softplus != 0;
                                 o.chunk_size = a.options.chunk_size;
                                 o.z = a.template in<4>("z");
                                 o.num_threads = a.num_threads;
                                 o.executor = a.executor;
                                 const auto states = served_states<4>(a, o);
                                 auto call = [&](auto&& fn) {
                                     fn(a.template in<4>("x"), a.template in<3>("dt"), a.template in<1>("A"),
                                        a.template in<4>("B"), a.template in<4>("C"), a.template view<4>("out"), o,
                                        states.first, states.second);
                                 };
                                 if constexpr (decltype(reference)::value)
                                     call([](auto&&... x) { seqmix::reference::ssd_scan(x...); });
                                 else call([](auto&&... x) { ssd_scan(x...); });
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
                                 o.activation = a.options.activation == 0 ? activation::none : activation::silu;
                                 o.num_threads = a.num_threads;
                                 o.executor = a.executor;
                                 const auto states = served_states<3>(a, o);
                                 auto call = [&](auto&& fn) {
                                     fn(a.template in<3>("x"), a.template in<2>("weight"), a.template view<3>("out"), o,
                                        states.first, states.second);
                                 };
                                 if constexpr (decltype(reference)::value)
                                     call([](auto&&... x) { seqmix::reference::causal_conv1d(x...); });
                                 else call([](auto&&... x) { causal_conv1d(x...); });
                             });
        op.has_scale = false;
        op.channel_arg = "x";
        op.channel_message = "channel count >= 1";
        ops.push_back(op);
    }

    // Their decode steps, on pools of B + 3 slots.
    {
        op_spec op =
            make_op("selective_scan_step",
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
                    [=](const auto& a, auto reference) {
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
                            o.executor = a.executor;
                            selective_scan_step(a.template in<2>("u"), a.template in<2>("delta"), a.template in<2>("A"),
                                                a.template in<3>("B"), a.template in<3>("C"), a.template view<2>("out"),
                                                a.template view<3>("state"), o);
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
        op_spec op =
            make_op("ssd_step",
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
                    [=](const auto& a, auto reference) {
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
                            o.executor = a.executor;
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
                             [=](const auto& a, auto reference) {
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
                                     o.executor = a.executor;
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
