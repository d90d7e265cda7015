#pragma once
// Mamba (Gu & Dao, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces"), as
// transformers' MambaModel: token embeddings, then per layer
//   h = x + out_proj( ssm( silu(conv1d(in_proj_x(rmsnorm(x)))) ) * silu(in_proj_z(rmsnorm(x))) )
// where the selective scan's dt, B, C come from x_proj of the conv output (dt through dt_proj
// and softplus), A = -exp(A_log), with the skip D; then norm_f. Names as transformers writes
// them: `backbone.` (MambaForCausalLM) or none (MambaModel).
#include <cmath>
#include <string>
#include <vector>

#include "../common/demo.hpp"
#include "../common/operators.hpp"

namespace seqmix_examples {

struct mamba_config {
    std::int64_t vocab = 1000, hidden = 256, state = 16, layers = 2, conv_width = 4, inner = 512, dt_rank = 16;
    bool bias = false, conv_bias = true;
    float eps = 1e-5f;

    static mamba_config from(const json& c) {
        mamba_config m;
        m.vocab = c.integer_or("vocab_size", m.vocab);
        m.hidden = c.integer_or("hidden_size", m.hidden);
        m.state = c.integer_or("state_size", m.state);
        m.layers = c.integer_or("num_hidden_layers", m.layers);
        m.conv_width = c.integer_or("conv_kernel", m.conv_width);
        m.inner = c.integer_or("intermediate_size", c.integer_or("expand", 2) * m.hidden);
        // "auto" (the default) is ceil(hidden / 16)
        m.dt_rank = c.has("time_step_rank") && c.at("time_step_rank").type == json::kind::number
                        ? c.at("time_step_rank").integer()
                        : (m.hidden + 15) / 16;
        m.bias = c.boolean_or("use_bias", m.bias);
        m.conv_bias = c.boolean_or("use_conv_bias", m.conv_bias);
        m.eps = float(c.number_or("layer_norm_epsilon", m.eps));
        return m;
    }
};

template <class Operators = fast_operators>
class mamba_model {
public:
    struct state {  // per layer: the conv window [slots, inner, W-1] and the SSM state [slots, inner, S]
        std::vector<seqmix::tensor<float, 3>> conv, ssm;
    };

    mamba_model(weights& w, const demo_options& o) : cfg_(mamba_config::from(w.config())), threads_(o.threads) {
        const std::string p = w.has("backbone.embeddings.weight") ? "backbone." : "";
        const auto& c = cfg_;
        embeddings_ = w.matrix_of(p + "embeddings.weight", c.vocab, c.hidden, normal(1.0f));
        for (std::int64_t i = 0; i < c.layers; ++i) {
            const std::string l = p + "layers." + std::to_string(i) + ".", m = l + "mixer.";
            layer y;
            y.norm = w.vector_of(l + "norm.weight", c.hidden, around(1.0f, 0.2f));
            y.in_proj = w.linear_of(m + "in_proj", 2 * c.inner, c.hidden, c.bias, 0.06f);
            y.conv = w.matrix_of(m + "conv1d.weight", c.inner, c.conv_width, normal(0.3f), {c.inner, 1, c.conv_width});
            if (c.conv_bias) y.conv_bias = w.vector_of(m + "conv1d.bias", c.inner, normal(0.1f));
            y.x_proj = w.linear_of(m + "x_proj", c.dt_rank + 2 * c.state, c.inner, false, 0.05f);
            y.dt_proj = w.linear_of(m + "dt_proj", c.inner, c.dt_rank, false, 0.1f);
            y.dt_bias = w.vector_of(m + "dt_proj.bias", c.inner, uniform(-4.0f, -2.0f));
            const std::int64_t S = c.state;
            y.A = -w.matrix_of(m + "A_log", c.inner, S,
                               [S](std::mt19937&, std::int64_t e) {
                                   return std::log(float(e % S + 1));  // S4D-real init
                               })
                       .array()
                       .exp()
                       .matrix();
            y.D = w.vector_of(m + "D", c.inner, around(1.0f, 0.2f));
            y.out_proj = w.linear_of(m + "out_proj", c.hidden, c.inner, c.bias, 0.04f);
            layers_.push_back(std::move(y));
        }
        norm_f_ = w.vector_of(p + "norm_f.weight", c.hidden, around(1.0f, 0.2f));
    }

    std::string describe() const {
        const auto& c = cfg_;
        return "Mamba: " + std::to_string(c.layers) + " layers, hidden " + std::to_string(c.hidden) + ", inner " +
               std::to_string(c.inner) + ", state " + std::to_string(c.state) + ", conv " +
               std::to_string(c.conv_width) + ", dt_rank " + std::to_string(c.dt_rank) + ", vocab " +
               std::to_string(c.vocab);
    }
    std::int64_t input_width() const { return cfg_.vocab; }
    std::int64_t hidden_size() const { return cfg_.hidden; }
    const mamba_config& config() const { return cfg_; }

    state make_state(std::int64_t slots) const {
        state s;
        for (std::int64_t i = 0; i < cfg_.layers; ++i) {
            s.conv.emplace_back(std::array<seqmix::index_t, 3>{slots, cfg_.inner, cfg_.conv_width - 1});
            s.ssm.emplace_back(std::array<seqmix::index_t, 3>{slots, cfg_.inner, cfg_.state});
        }
        return s;
    }

    matrix prefill(const sequence_batch& in, state* pool, const std::int32_t* slots, timing& t) const {
        const std::int64_t B = in.batch, N = in.tokens, Din = cfg_.inner, S = cfg_.state, R = cfg_.dt_rank;
        return pre_norm_backbone(
            embedding_rows(embeddings_, in.ids), layers_, norm_f_, cfg_.eps,
            [&](std::size_t li, const layer& y, const matrix& h) {
                const matrix xz = y.in_proj(h);  // [B*N, 2 inner]: x | z
                matrix u(B * N, Din);
                const prefill_states states(pool != nullptr, slots, B);  // written into the pool's slots
                auto* conv_state = pool ? &pool->conv[li] : nullptr;
                auto* ssm_state = pool ? &pool->ssm[li] : nullptr;
                const seqmix::conv1d_options co = states.into(silu_conv(bias_of(y.conv_bias), threads_));
                timed(t, [&] {
                    Operators::causal_conv1d(channels_of(xz, B, 0, Din), view_of(y.conv), channels_of(u, B, 0, Din), co,
                                             states.initial(conv_state), states.final(conv_state));
                });
                const matrix dbc = y.x_proj(u);  // [B*N, R + 2S]: dt | B | C
                const matrix dt = dbc.leftCols(R) * y.dt_proj.weight.transpose();
                matrix scan(B * N, Din);
                seqmix::selective_scan_options<float> so;
                so.D = y.D.data();
                so.z = channels_of(xz, B, Din, Din);
                so.delta_bias = y.dt_bias.data();
                so.delta_softplus = true;
                so.num_threads = threads_;
                timed(t, [&] {
                    Operators::selective_scan(channels_of(u, B, 0, Din), channels_of(dt, B, 0, Din), view_of(y.A),
                                              heads_of(dbc, B, R, 1, S), heads_of(dbc, B, R + S, 1, S),
                                              channels_of(scan, B, 0, Din), states.into(so), states.initial(ssm_state),
                                              states.final(ssm_state));
                });
                return y.out_proj(scan);
            });
    }

    matrix decode(const sequence_batch& in, state& pool, const std::int32_t* slots, timing& t) const {
        const std::int64_t B = in.batch, Din = cfg_.inner, S = cfg_.state, R = cfg_.dt_rank;
        return pre_norm_backbone(
            embedding_rows(embeddings_, in.ids), layers_, norm_f_, cfg_.eps,
            [&](std::size_t li, const layer& y, const matrix& h) {
                const matrix xz = y.in_proj(h);
                matrix u(B, Din);
                const seqmix::conv1d_step_options co = silu_conv_step(bias_of(y.conv_bias), slots, threads_);
                timed(t, [&] {
                    seqmix::causal_conv1d_step(step_channels_of(xz, 0, Din), view_of(y.conv),
                                               step_channels_of(u, 0, Din), pool.conv[li].view(), co);
                });
                const matrix dbc = y.x_proj(u);
                const matrix dt = dbc.leftCols(R) * y.dt_proj.weight.transpose();
                matrix scan(B, Din);
                seqmix::selective_scan_step_options<float> so;
                so.D = y.D.data();
                so.z = step_channels_of(xz, Din, Din);
                so.delta_bias = y.dt_bias.data();
                so.delta_softplus = true;
                so.state_indices = slots;
                so.num_threads = threads_;
                timed(t, [&] {
                    seqmix::selective_scan_step(step_channels_of(u, 0, Din), step_channels_of(dt, 0, Din), view_of(y.A),
                                                step_heads_of(dbc, R, 1, S), step_heads_of(dbc, R + S, 1, S),
                                                step_channels_of(scan, 0, Din), pool.ssm[li].view(), so);
                });
                return y.out_proj(scan);
            });
    }

private:
    struct layer {
        row_vector norm, conv_bias, dt_bias, D;
        linear in_proj, x_proj, dt_proj, out_proj;  // dt_proj's bias goes into the scan (delta_bias)
        matrix conv, A;                             // [inner, W], [inner, S]
    };

    mamba_config cfg_;
    int threads_;
    matrix embeddings_;
    std::vector<layer> layers_;
    row_vector norm_f_;
};

}  // namespace seqmix_examples
