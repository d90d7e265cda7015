#pragma once
// A Gated DeltaNet layer (Yang, Kautz & Hatamizadeh, "Gated Delta Networks"), as Qwen3-Next's
// Qwen3NextGatedDeltaNet in transformers:
//   q | k | v | z = in_proj_qkvz(x),  b | a = in_proj_ba(x)   (both grouped per key head)
//   q | k | v     = silu(conv1d(q | k | v))                    (depthwise, width 4, no bias)
//   beta = sigmoid(b),  g = -exp(A_log) * softplus(a + dt_bias)  (per value head, in the kernel)
//   o    = gated_delta_rule(l2norm(q), l2norm(k), v, g, beta)    (Hv = r Hk value heads, Dk != Dv)
//   out  = out_proj(rmsnorm(o) * norm.weight * silu(z))          (per value head)
// Tensor names are the module's own (in_proj_qkvz.weight, ...), at the top level or under
// --prefix, e.g. model.layers.0.linear_attn. for a whole Qwen3-Next checkpoint.
#include <cmath>
#include <string>
#include <vector>

#include "../common/demo.hpp"
#include "../common/operators.hpp"

namespace seqmix_examples {

struct gated_deltanet_config {
    std::int64_t hidden = 256, key_heads = 2, value_heads = 4, key_dim = 64, value_dim = 96, conv_width = 4;
    float eps = 1e-6f;

    std::int64_t keys() const { return key_heads * key_dim; }        // q and k width
    std::int64_t values() const { return value_heads * value_dim; }  // v, z and o width
    std::int64_t conv_channels() const { return 2 * keys() + values(); }
    std::int64_t ratio() const { return value_heads / key_heads; }
    std::int64_t gate_columns() const { return 2 * keys() + 2 * values(); }  // where b | a start in the projection

    static gated_deltanet_config from(const json& c) {
        gated_deltanet_config m;
        m.hidden = c.integer_or("hidden_size", m.hidden);
        m.key_heads = c.integer_or("linear_num_key_heads", m.key_heads);
        m.value_heads = c.integer_or("linear_num_value_heads", m.value_heads);
        m.key_dim = c.integer_or("linear_key_head_dim", m.key_dim);
        m.value_dim = c.integer_or("linear_value_head_dim", m.value_dim);
        m.conv_width = c.integer_or("linear_conv_kernel_dim", m.conv_width);
        m.eps = float(c.number_or("rms_norm_eps", m.eps));
        if (m.key_heads < 1 || m.value_heads % m.key_heads != 0)
            throw load_error("config.json: linear_num_value_heads must be a multiple of linear_num_key_heads");
        return m;
    }
};

template <class Operators = fast_operators>
class gated_deltanet_layer {
public:
    struct state {  // conv window [slots, conv channels, W-1], delta-rule state [slots, Hv, Dk, Dv]
        seqmix::tensor<float, 3> conv;
        seqmix::tensor<float, 4> recurrent;
    };

    gated_deltanet_layer(weights& w, const demo_options& o)
        : cfg_(gated_deltanet_config::from(w.config())), threads_(o.threads) {
        const auto& c = cfg_;
        const std::string p = o.prefix;
        const std::int64_t r = c.ratio(), per_key_head = 2 * c.key_dim + 2 * r * c.value_dim;
        // The checkpoint groups the projections per key head, [q k v z] and [b a] for each; the
        // rows are reordered once here into [q of all heads | k | v | z] and [b | a], so q|k|v
        // are the conv's channels in order and every part is a block of columns.
        const matrix qkvz = w.matrix_of(p + "in_proj_qkvz.weight", c.key_heads * per_key_head, c.hidden, normal(0.06f));
        const matrix ba = w.matrix_of(p + "in_proj_ba.weight", 2 * c.value_heads, c.hidden, normal(0.06f));
        in_proj_.weight.resize(c.gate_columns() + 2 * c.value_heads, c.hidden);
        for (std::int64_t i = 0; i < c.key_heads; ++i) {
            const std::int64_t src = i * per_key_head, vz = r * c.value_dim;
            in_proj_.weight.middleRows(i * c.key_dim, c.key_dim) = qkvz.middleRows(src, c.key_dim);
            in_proj_.weight.middleRows(c.keys() + i * c.key_dim, c.key_dim) =
                qkvz.middleRows(src + c.key_dim, c.key_dim);
            in_proj_.weight.middleRows(2 * c.keys() + i * vz, vz) = qkvz.middleRows(src + 2 * c.key_dim, vz);
            in_proj_.weight.middleRows(2 * c.keys() + c.values() + i * vz, vz) =
                qkvz.middleRows(src + 2 * c.key_dim + vz, vz);
            const std::int64_t ba_at = c.gate_columns();
            in_proj_.weight.middleRows(ba_at + i * r, r) = ba.middleRows(i * 2 * r, r);
            in_proj_.weight.middleRows(ba_at + c.value_heads + i * r, r) = ba.middleRows(i * 2 * r + r, r);
        }
        conv_ = w.matrix_of(p + "conv1d.weight", c.conv_channels(), c.conv_width, normal(0.3f),
                            {c.conv_channels(), 1, c.conv_width});
        const row_vector dt_bias = w.vector_of(p + "dt_bias", c.value_heads, around(1.0f, 0.5f));
        const row_vector A_log = w.vector_of(p + "A_log", c.value_heads, uniform(-1.0f, 2.7f));
        dt_bias_.assign(dt_bias.data(), dt_bias.data() + dt_bias.size());
        A_log_.assign(A_log.data(), A_log.data() + A_log.size());
        norm_ = w.vector_of(p + "norm.weight", c.value_dim, around(1.0f, 0.2f));
        out_proj_ = w.linear_of(p + "out_proj", c.hidden, c.values(), false, 0.04f);
    }

    std::string describe() const {
        const auto& c = cfg_;
        return "Gated DeltaNet layer: hidden " + std::to_string(c.hidden) + ", " + std::to_string(c.key_heads) +
               " key heads x " + std::to_string(c.key_dim) + ", " + std::to_string(c.value_heads) + " value heads x " +
               std::to_string(c.value_dim) + ", conv " + std::to_string(c.conv_width);
    }
    std::int64_t input_width() const { return cfg_.hidden; }
    std::int64_t hidden_size() const { return cfg_.hidden; }

    state make_state(std::int64_t slots) const {
        const auto& c = cfg_;
        return {seqmix::tensor<float, 3>({slots, c.conv_channels(), c.conv_width - 1}),
                seqmix::tensor<float, 4>({slots, c.value_heads, c.key_dim, c.value_dim})};
    }

    matrix prefill(const sequence_batch& in, state* pool, const std::int32_t* slots, timing& t) const {
        const auto& c = cfg_;
        const std::int64_t B = in.batch, N = in.tokens, C = c.conv_channels(), Hv = c.value_heads;
        matrix projected = in_proj_(in.hidden);  // [B*N, q k v | z | b | a]
        matrix qkv(B * N, C), o(B * N, c.values());
        const prefill_states states(pool != nullptr, slots, B);  // written into the pool's slots
        auto* conv_state = pool ? &pool->conv : nullptr;
        auto* recurrent = pool ? &pool->recurrent : nullptr;
        const seqmix::conv1d_options co = states.into(silu_conv(nullptr, threads_));
        const auto d = states.into(rule_options<seqmix::delta_options>());
        const std::int64_t ba = c.gate_columns();  // b | a: beta and g projected in the kernel
        timed(t, [&] {
            Operators::causal_conv1d(channels_of(projected, B, 0, C), view_of(conv_), channels_of(qkv, B, 0, C), co,
                                     states.initial(conv_state), states.final(conv_state));
            Operators::gated_delta_rule(
                heads_of(qkv, B, 0, c.key_heads, c.key_dim), heads_of(qkv, B, c.keys(), c.key_heads, c.key_dim),
                heads_of(qkv, B, 2 * c.keys(), Hv, c.value_dim), channels_of(projected, B, ba + Hv, Hv),
                channels_of(projected, B, ba, Hv), heads_of(o, B, 0, Hv, c.value_dim), d, states.initial(recurrent),
                states.final(recurrent));
        });
        return finish(o, projected);
    }

    matrix decode(const sequence_batch& in, state& pool, const std::int32_t* slots, timing& t) const {
        const auto& c = cfg_;
        const std::int64_t B = in.batch, C = c.conv_channels(), Hv = c.value_heads;
        matrix projected = in_proj_(in.hidden);  // [B, ...]: one token per sequence
        matrix qkv(B, C), o(B, c.values());
        const seqmix::conv1d_step_options co = silu_conv_step(nullptr, slots, threads_);
        auto d = rule_options<seqmix::delta_step_options>();
        d.state_indices = slots;
        const std::int64_t ba = c.gate_columns();
        timed(t, [&] {
            seqmix::causal_conv1d_step(step_channels_of(projected, 0, C), view_of(conv_), step_channels_of(qkv, 0, C),
                                       pool.conv.view(), co);
            seqmix::gated_delta_rule_step(
                step_heads_of(qkv, 0, c.key_heads, c.key_dim), step_heads_of(qkv, c.keys(), c.key_heads, c.key_dim),
                step_heads_of(qkv, 2 * c.keys(), Hv, c.value_dim), step_channels_of(projected, ba + Hv, Hv),
                step_channels_of(projected, ba, Hv), step_heads_of(o, 0, Hv, c.value_dim), pool.recurrent.view(), d);
        });
        return finish(o, projected);
    }

private:
    // The rule's options (delta_options, delta_step_options): q and k l2-normalized,
    // g = -exp(A_log) softplus(a + dt_bias) and beta = sigmoid(b) from the raw projections, all
    // in the kernel.
    template <class Options>
    Options rule_options() const {
        Options d;
        d.qk_l2norm = true;
        d.A_log = A_log_.data();
        d.dt_bias = dt_bias_.data();
        d.beta_sigmoid = true;
        d.num_threads = threads_;
        return d;
    }
    // out_proj(rmsnorm(o) * weight * silu(z)), per value head; z follows q k v in the projection.
    matrix finish(matrix& o, const matrix& projected) const {
        gated_rms_norm(o, projected.middleCols(cfg_.conv_channels(), cfg_.values()), norm_, cfg_.eps, cfg_.value_dim,
                       gate_order::after_norm);
        return out_proj_(o);
    }

    gated_deltanet_config cfg_;
    int threads_;
    linear in_proj_, out_proj_;
    matrix conv_;                         // [conv channels, W]
    std::vector<float> dt_bias_, A_log_;  // the gate projection's parameters (the operators take float arrays)
    row_vector norm_;
};

}  // namespace seqmix_examples
