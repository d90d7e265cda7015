#pragma once
// Mamba-2 (Dao & Gu, "Transformers are SSMs"), as transformers' Mamba2Model: token
// embeddings, then per layer x + mixer(rmsnorm(x)) with the mixer
//   z | xBC | dt = in_proj(x)
//   x | B | C    = silu(conv1d(xBC))                     (one depthwise conv over all three)
//   y            = ssd(x, dt, A = -exp(A_log), B, C) + D x  (dt = softplus(dt + dt_bias);
//                                                           head h reads group h / (H / G))
//   out          = out_proj(rmsnorm_grouped(y * silu(z)))  (MambaRMSNormGated, G groups)
// then norm_f. Names as transformers writes them: `backbone.` (Mamba2ForCausalLM) or none.
#include <cmath>
#include <string>
#include <vector>

#include "../common/demo.hpp"
#include "../common/operators.hpp"

namespace seqmix_examples {

struct mamba2_config {
    std::int64_t vocab = 1000, hidden = 256, heads = 8, head_dim = 64, state = 64, groups = 2, layers = 2,
                 conv_width = 4;
    bool bias = false, conv_bias = true;
    float eps = 1e-5f;

    std::int64_t inner() const { return heads * head_dim; }
    std::int64_t conv_channels() const { return inner() + 2 * groups * state; }

    static mamba2_config from(const json& c) {
        mamba2_config m;
        m.vocab = c.integer_or("vocab_size", m.vocab);
        m.hidden = c.integer_or("hidden_size", m.hidden);
        m.heads = c.integer_or("num_heads", m.heads);
        m.head_dim = c.integer_or("head_dim", m.head_dim);
        m.state = c.integer_or("state_size", m.state);
        m.groups = c.integer_or("n_groups", m.groups);
        m.layers = c.integer_or("num_hidden_layers", m.layers);
        m.conv_width = c.integer_or("conv_kernel", m.conv_width);
        m.bias = c.boolean_or("use_bias", m.bias);
        m.conv_bias = c.boolean_or("use_conv_bias", m.conv_bias);
        m.eps = float(c.number_or("layer_norm_epsilon", m.eps));
        if (c.has("expand") && c.at("expand").integer() * m.hidden != m.inner())
            throw load_error("config.json: num_heads * head_dim must equal expand * hidden_size");
        if (c.has("time_step_limit")) {  // dt is clamped to it; only the no-op (0, inf) is supported here
            const auto& lim = c.at("time_step_limit").items;
            if (lim.size() == 2 && (lim[0].real() > 0 || std::isfinite(lim[1].real())))
                throw load_error("config.json: a time_step_limit other than (0, inf) is not supported by this demo");
        }
        if (m.groups < 1 || m.heads % m.groups != 0)
            throw load_error("config.json: num_heads must be a multiple of n_groups");
        return m;
    }
};

template <class Operators = fast_operators>
class mamba2_model {
public:
    struct state {  // per layer: conv window [slots, conv channels, W-1], SSM state [slots, H, P, S]
        std::vector<seqmix::tensor<float, 3>> conv;
        std::vector<seqmix::tensor<float, 4>> ssm;
    };

    mamba2_model(weights& w, const demo_options& o) : cfg_(mamba2_config::from(w.config())), threads_(o.threads) {
        const std::string p = w.has("backbone.embeddings.weight") ? "backbone." : "";
        const auto& c = cfg_;
        const std::int64_t projected = 2 * c.inner() + 2 * c.groups * c.state + c.heads;
        embeddings_ = w.matrix_of(p + "embeddings.weight", c.vocab, c.hidden, normal(1.0f));
        for (std::int64_t i = 0; i < c.layers; ++i) {
            const std::string l = p + "layers." + std::to_string(i) + ".", m = l + "mixer.";
            layer y;
            y.norm = w.vector_of(l + "norm.weight", c.hidden, around(1.0f, 0.2f));
            y.in_proj = w.linear_of(m + "in_proj", projected, c.hidden, c.bias, 0.06f);
            const std::int64_t C = c.conv_channels();
            y.conv = w.matrix_of(m + "conv1d.weight", C, c.conv_width, normal(0.3f), {C, 1, c.conv_width});
            if (c.conv_bias) y.conv_bias = w.vector_of(m + "conv1d.bias", C, normal(0.1f));
            y.dt_bias = w.vector_of(m + "dt_bias", c.heads, uniform(-4.0f, -1.0f));
            y.A = -w.vector_of(m + "A_log", c.heads, uniform(0.0f, 2.7f)).array().exp().matrix();
            y.D = w.vector_of(m + "D", c.heads, around(1.0f, 0.2f));
            y.gate_norm = w.vector_of(m + "norm.weight", c.inner(), around(1.0f, 0.2f));
            y.out_proj = w.linear_of(m + "out_proj", c.hidden, c.inner(), c.bias, 0.04f);
            layers_.push_back(std::move(y));
        }
        norm_f_ = w.vector_of(p + "norm_f.weight", c.hidden, around(1.0f, 0.2f));
    }

    std::string describe() const {
        const auto& c = cfg_;
        return "Mamba-2: " + std::to_string(c.layers) + " layers, hidden " + std::to_string(c.hidden) + ", " +
               std::to_string(c.heads) + " heads x " + std::to_string(c.head_dim) + ", state " +
               std::to_string(c.state) + ", " + std::to_string(c.groups) + " groups, conv " +
               std::to_string(c.conv_width) + ", vocab " + std::to_string(c.vocab);
    }
    std::int64_t input_width() const { return cfg_.vocab; }
    std::int64_t hidden_size() const { return cfg_.hidden; }

    state make_state(std::int64_t slots) const {
        state s;
        for (std::int64_t i = 0; i < cfg_.layers; ++i) {
            s.conv.emplace_back(std::array<seqmix::index_t, 3>{slots, cfg_.conv_channels(), cfg_.conv_width - 1});
            s.ssm.emplace_back(std::array<seqmix::index_t, 4>{slots, cfg_.heads, cfg_.head_dim, cfg_.state});
        }
        return s;
    }

    matrix prefill(const sequence_batch& in, state* pool, const std::int32_t* slots, timing& t) const {
        const auto& c = cfg_;
        const std::int64_t B = in.batch, N = in.tokens, I = c.inner(), GS = c.groups * c.state, C = c.conv_channels();
        return pre_norm_backbone(
            embedding_rows(embeddings_, in.ids), layers_, norm_f_, c.eps,
            [&](std::size_t li, const layer& y, const matrix& h) {
                const matrix zxbcdt = y.in_proj(h);  // [B*N, z | xBC | dt]
                matrix xbc(B * N, C);
                const prefill_states states(pool != nullptr, slots, B);  // written into the pool's slots
                auto* conv_state = pool ? &pool->conv[li] : nullptr;
                auto* ssm_state = pool ? &pool->ssm[li] : nullptr;
                timed(t, [&] {
                    Operators::causal_conv1d(channels_of(zxbcdt, B, I, C), view_of(y.conv), channels_of(xbc, B, 0, C),
                                             states.into(silu_conv(bias_of(y.conv_bias), threads_)),
                                             states.initial(conv_state), states.final(conv_state));
                });
                matrix scan(B * N, I);
                seqmix::ssd_options<float> so;
                so.D = y.D.data();
                so.dt_bias = y.dt_bias.data();
                so.dt_softplus = true;
                so.num_threads = threads_;
                timed(t, [&] {
                    Operators::ssd_scan(
                        heads_of(xbc, B, 0, c.heads, c.head_dim), channels_of(zxbcdt, B, I + C, c.heads), view_of(y.A),
                        heads_of(xbc, B, I, c.groups, c.state), heads_of(xbc, B, I + GS, c.groups, c.state),
                        heads_of(scan, B, 0, c.heads, c.head_dim), states.into(so), states.initial(ssm_state),
                        states.final(ssm_state));
                });
                return finish(y, scan, zxbcdt);
            });
    }

    matrix decode(const sequence_batch& in, state& pool, const std::int32_t* slots, timing& t) const {
        const auto& c = cfg_;
        const std::int64_t B = in.batch, I = c.inner(), GS = c.groups * c.state, C = c.conv_channels();
        return pre_norm_backbone(
            embedding_rows(embeddings_, in.ids), layers_, norm_f_, c.eps,
            [&](std::size_t li, const layer& y, const matrix& h) {
                const matrix zxbcdt = y.in_proj(h);
                matrix xbc(B, C);
                const seqmix::conv1d_step_options co = silu_conv_step(bias_of(y.conv_bias), slots, threads_);
                timed(t, [&] {
                    seqmix::causal_conv1d_step(step_channels_of(zxbcdt, I, C), view_of(y.conv),
                                               step_channels_of(xbc, 0, C), pool.conv[li].view(), co);
                });
                matrix scan(B, I);
                seqmix::ssd_step_options<float> so;
                so.D = y.D.data();
                so.dt_bias = y.dt_bias.data();
                so.dt_softplus = true;
                so.state_indices = slots;
                so.num_threads = threads_;
                timed(t, [&] {
                    seqmix::ssd_step(step_heads_of(xbc, 0, c.heads, c.head_dim),
                                     step_channels_of(zxbcdt, I + C, c.heads), view_of(y.A),
                                     step_heads_of(xbc, I, c.groups, c.state),
                                     step_heads_of(xbc, I + GS, c.groups, c.state),
                                     step_heads_of(scan, 0, c.heads, c.head_dim), pool.ssm[li].view(), so);
                });
                return finish(y, scan, zxbcdt);
            });
    }

private:
    struct layer {
        row_vector norm, conv_bias, dt_bias, A, D, gate_norm;
        linear in_proj, out_proj;
        matrix conv;  // [conv channels, W]
    };

    // out_proj(rmsnorm_grouped(y * silu(z))): z is the first `inner` columns of in_proj.
    matrix finish(const layer& y, matrix& scan, const matrix& zxbcdt) const {
        gated_rms_norm(scan, zxbcdt.leftCols(cfg_.inner()), y.gate_norm, cfg_.eps, cfg_.inner() / cfg_.groups,
                       gate_order::before_norm);
        return y.out_proj(scan);
    }

    mamba2_config cfg_;
    int threads_;
    matrix embeddings_;
    std::vector<layer> layers_;
    row_vector norm_f_;
};

}  // namespace seqmix_examples
