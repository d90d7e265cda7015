#pragma once
// A gated linear attention layer (Yang, Wang, Shen, Panda & Kim, "Gated Linear Attention
// Transformers with Hardware-Efficient Training"), as flash-linear-attention's
// GatedLinearAttention layer (fla-hub's GLA models, model_type "gla"):
//   q, k, v = q_proj(x), k_proj(x), v_proj(x)
//   gk      = logsigmoid(gk_proj.1(gk_proj.0(x))) / gate_logit_normalizer   (per key channel)
//   o       = gla(q, k, v, gk)                                              (scale 1/sqrt(Dk))
//   out     = o_proj(rmsnorm(o) * g_norm_swish_gate.weight * silu(g_proj(x)))  (per head)
// Names are the layer's own, at the top level or under --prefix (model.layers.0.attn. in a
// GLAForCausalLM checkpoint). Without the short convolution, feature map or kv groups.
#include <cmath>
#include <string>

#include "../common/demo.hpp"
#include "../common/operators.hpp"

namespace seqmix_examples {

struct gla_config {
    std::int64_t hidden = 256, heads = 4, key_dim = 128, value_dim = 256, gate_rank = 16;
    float gate_normalizer = 16, eps = 1e-5f;

    std::int64_t head_k() const { return key_dim / heads; }
    std::int64_t head_v() const { return value_dim / heads; }

    static gla_config from(const json& c) {
        gla_config m;
        m.hidden = c.integer_or("hidden_size", m.hidden);
        m.heads = c.integer_or("num_heads", m.heads);
        m.key_dim = std::int64_t(double(m.hidden) * c.number_or("expand_k", 0.5));
        m.value_dim = std::int64_t(double(m.hidden) * c.number_or("expand_v", 1.0));
        m.gate_rank = c.integer_or("gate_low_rank_dim", m.gate_rank);
        m.gate_normalizer = float(c.number_or("gate_logit_normalizer", m.gate_normalizer));
        m.eps = float(c.number_or("norm_eps", m.eps));
        if (c.boolean_or("use_short_conv", false) || c.text_or("feature_map", "") != "" ||
            c.integer_or("num_kv_heads", m.heads) != m.heads || !c.boolean_or("use_output_gate", true) ||
            (c.has("clamp_min") && c.at("clamp_min").type != json::kind::null))
            throw load_error(
                "config.json: this GLA layer has no short conv, feature map, kv groups or gate clamp, "
                "and keeps the output gate");
        if (m.key_dim % m.heads != 0 || m.value_dim % m.heads != 0)
            throw load_error("config.json: the key and value widths must be multiples of num_heads");
        return m;
    }
};

template <class Operators = fast_operators>
class gla_layer {
public:
    struct state {
        seqmix::tensor<float, 4> recurrent;  // [slots, H, Dk, Dv]
    };

    gla_layer(weights& w, const demo_options& o) : cfg_(gla_config::from(w.config())), threads_(o.threads) {
        const auto& c = cfg_;
        const std::string p = o.prefix;
        q_proj_ = w.linear_of(p + "q_proj", c.key_dim, c.hidden, false, 0.06f);
        k_proj_ = w.linear_of(p + "k_proj", c.key_dim, c.hidden, false, 0.06f);
        v_proj_ = w.linear_of(p + "v_proj", c.value_dim, c.hidden, false, 0.06f);
        g_proj_ = w.linear_of(p + "g_proj", c.value_dim, c.hidden, false, 0.06f);
        gate_down_ = w.linear_of(p + "gk_proj.0", c.gate_rank, c.hidden, false, 0.06f);
        gate_up_ = w.linear_of(p + "gk_proj.1", c.key_dim, c.gate_rank, false, 0.25f);
        gate_up_.bias = w.vector_of(p + "gk_proj.1.bias", c.key_dim, uniform(1.0f, 4.0f));
        norm_ = w.vector_of(p + "g_norm_swish_gate.weight", c.head_v(), around(1.0f, 0.2f));
        o_proj_ = w.linear_of(p + "o_proj", c.hidden, c.value_dim, false, 0.04f);
    }

    std::string describe() const {
        const auto& c = cfg_;
        return "GLA layer: hidden " + std::to_string(c.hidden) + ", " + std::to_string(c.heads) + " heads, Dk " +
               std::to_string(c.head_k()) + ", Dv " + std::to_string(c.head_v()) + ", gate rank " +
               std::to_string(c.gate_rank);
    }
    std::int64_t input_width() const { return cfg_.hidden; }
    std::int64_t hidden_size() const { return cfg_.hidden; }

    state make_state(std::int64_t slots) const {
        return {seqmix::tensor<float, 4>({slots, cfg_.heads, cfg_.head_k(), cfg_.head_v()})};
    }

    matrix prefill(const sequence_batch& in, state* pool, const std::int32_t* slots, timing& t) const {
        const auto& c = cfg_;
        const std::int64_t B = in.batch, N = in.tokens, H = c.heads;
        const matrix q = q_proj_(in.hidden), k = k_proj_(in.hidden), v = v_proj_(in.hidden),
                     gk = forget_gate(in.hidden);
        matrix o(B * N, c.value_dim);
        const prefill_states states(pool != nullptr, slots, B);  // written into the pool's slots
        seqmix::gla_options go;
        go.num_threads = threads_;
        auto* recurrent = pool ? &pool->recurrent : nullptr;
        timed(t, [&] {
            Operators::gated_linear_attention(heads_of(q, B, 0, H, c.head_k()), heads_of(k, B, 0, H, c.head_k()),
                                              heads_of(v, B, 0, H, c.head_v()), heads_of(gk, B, 0, H, c.head_k()),
                                              heads_of(o, B, 0, H, c.head_v()), states.into(go),
                                              states.initial(recurrent), states.final(recurrent));
        });
        return finish(o, in.hidden);
    }

    matrix decode(const sequence_batch& in, state& pool, const std::int32_t* slots, timing& t) const {
        const auto& c = cfg_;
        const std::int64_t H = c.heads;
        const matrix q = q_proj_(in.hidden), k = k_proj_(in.hidden), v = v_proj_(in.hidden),
                     gk = forget_gate(in.hidden);
        matrix o(in.batch, c.value_dim);
        seqmix::gla_step_options go;
        go.state_indices = slots;
        go.num_threads = threads_;
        timed(t, [&] {
            seqmix::gated_linear_attention_step(step_heads_of(q, 0, H, c.head_k()), step_heads_of(k, 0, H, c.head_k()),
                                                step_heads_of(v, 0, H, c.head_v()), step_heads_of(gk, 0, H, c.head_k()),
                                                step_heads_of(o, 0, H, c.head_v()), pool.recurrent.view(), go);
        });
        return finish(o, in.hidden);
    }

private:
    matrix forget_gate(const matrix& x) const {
        const float normalizer = cfg_.gate_normalizer;
        return gate_up_(gate_down_(x)).unaryExpr([normalizer](float z) { return log_sigmoid(z) / normalizer; });
    }
    matrix finish(matrix& o, const matrix& x) const {
        gated_rms_norm(o, g_proj_(x), norm_, cfg_.eps, cfg_.head_v(), gate_order::after_norm);
        return o_proj_(o);
    }

    gla_config cfg_;
    int threads_;
    linear q_proj_, k_proj_, v_proj_, g_proj_, gate_down_, gate_up_, o_proj_;
    row_vector norm_;
};

}  // namespace seqmix_examples
