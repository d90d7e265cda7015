#pragma once
// A small hybrid language model, served the way inference engines serve Qwen3-Next-like
// models: Gated DeltaNet layers keep their conv windows and recurrent states in pools of
// slots, softmax attention layers keep their keys and values in a paged cache. One step
// runs a mixed batch (new requests' prompts next to running requests' next tokens) through
// one varlen call per operator, reading and writing the pools in place.
//
// Per layer (pre-norm residual): x += mixer(rmsnorm(x) * norm); then the final norm and the
// tied LM head. Gated DeltaNet:
//   q | k | v = silu(conv1d(x Wqkv^T)),  a | b = x Wab^T
//   o = gated_delta_rule(l2norm(q), l2norm(k), v, g = -exp(A_log) softplus(a + dt_bias), sigmoid(b))
// (the gates and the l2 norms computed inside the operator), out = o Wo^T. Attention: GQA over
// every earlier token of the request (causal), out = o Wo^T. Weights are seeded random.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "../common/nn.hpp"

namespace seqmix_examples {

struct hybrid_config {
    std::int64_t vocab = 512, hidden = 256;
    std::string layers = "dda";  // d: Gated DeltaNet, a: softmax attention
    std::int64_t q_heads = 4, kv_heads = 2, head_dim = 64, page_size = 16;
    std::int64_t key_heads = 2, value_heads = 4, key_dim = 64, value_dim = 64, conv_width = 4;
    float eps = 1e-6f;

    std::int64_t conv_channels() const { return 2 * key_heads * key_dim + value_heads * value_dim; }
};

// One step's batch: sequences packed along the tokens, each the new tokens of one request.
struct step_batch {
    std::vector<std::int64_t> tokens;       // [tokens] token ids, sequence after sequence
    std::vector<std::int32_t> cu;           // [seqs + 1] cumulative token counts
    std::vector<std::int32_t> slots;        // [seqs] the request's state slot
    std::vector<std::uint8_t> continuing;   // [seqs] 0: a new request (no state yet)
    std::vector<std::int32_t> cached;       // [seqs] tokens already in the KV cache
    std::vector<std::int32_t> block_table;  // [seqs, max_blocks] KV pages, row-major
    int max_blocks = 0;

    std::int64_t seqs() const { return std::int64_t(slots.size()); }
    std::int64_t size() const { return std::int64_t(tokens.size()); }
};

// The serving state of every layer: pools indexed by slot, pages shared by all requests.
struct hybrid_cache {
    std::vector<seqmix::tensor<float, 3>> conv;       // per Gated DeltaNet layer [slots, C, W - 1]
    std::vector<seqmix::tensor<float, 4>> recurrent;  // per Gated DeltaNet layer [slots, Hv, Dk, Dv]
    std::vector<seqmix::tensor<float, 4>> k, v;       // per attention layer [pages, page_size, Hkv, D]
};

// x W^T one token at a time: a matrix-vector product sums in one order whatever the batch, so a
// request's results never depend on the requests it is batched with (a GEMM's blocking does).
inline matrix project(const matrix& x, const matrix& w) {
    matrix y(x.rows(), w.rows());
    for_each_row(x.rows(), [&](Eigen::Index t) { y.row(t).noalias() = (w * x.row(t).transpose()).transpose(); });
    return y;
}

class hybrid_model {
public:
    hybrid_model(const hybrid_config& c, unsigned seed) : cfg_(c) {
        std::mt19937 gen(seed);
        auto random = [&](std::int64_t rows, std::int64_t cols, float stddev) {
            std::normal_distribution<float> d(0.0f, stddev);
            matrix m(rows, cols);
            for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = d(gen);
            return m;
        };
        const float in = 1.0f / std::sqrt(float(c.hidden));
        embed_ = random(c.vocab, c.hidden, 1.0f);
        final_norm_ = row_vector::Ones(c.hidden);
        for (char kind : c.layers) {
            layer l;
            l.kind = kind;
            l.norm = row_vector::Ones(c.hidden);
            if (kind == 'd') {
                l.w_in = random(c.conv_channels(), c.hidden, in);
                l.w_ab = random(2 * c.value_heads, c.hidden, in);
                l.conv = random(c.conv_channels(), c.conv_width, 0.5f);
                l.w_out = random(c.hidden, c.value_heads * c.value_dim, 0.5f / std::sqrt(float(c.value_dim)));
                std::uniform_real_distribution<float> a_log(-1.0f, 1.5f), bias(0.5f, 1.5f);
                for (std::int64_t h = 0; h < c.value_heads; ++h)
                    l.A_log.push_back(a_log(gen)), l.dt_bias.push_back(bias(gen));
            } else {
                l.w_in = random((c.q_heads + 2 * c.kv_heads) * c.head_dim, c.hidden, in);
                l.w_out = random(c.hidden, c.q_heads * c.head_dim, 0.5f / std::sqrt(float(c.head_dim)));
            }
            layers_.push_back(std::move(l));
        }
    }

    const hybrid_config& config() const { return cfg_; }

    hybrid_cache make_cache(std::int64_t slots, std::int64_t pages) const {
        const auto& c = cfg_;
        hybrid_cache cache;
        for (const layer& l : layers_) {
            if (l.kind == 'd') {
                cache.conv.emplace_back(std::array<seqmix::index_t, 3>{slots, c.conv_channels(), c.conv_width - 1});
                cache.recurrent.emplace_back(
                    std::array<seqmix::index_t, 4>{slots, c.value_heads, c.key_dim, c.value_dim});
            } else {
                cache.k.emplace_back(std::array<seqmix::index_t, 4>{pages, c.page_size, c.kv_heads, c.head_dim});
                cache.v.emplace_back(std::array<seqmix::index_t, 4>{pages, c.page_size, c.kv_heads, c.head_dim});
            }
        }
        return cache;
    }

    // The logits of each sequence's last token, [seqs, vocab]; the cache advanced past the batch.
    matrix step(const step_batch& b, hybrid_cache& cache, int threads) const {
        matrix x = embedding_rows(embed_, b.tokens);
        std::size_t gdn = 0, attn = 0;
        for (const layer& l : layers_) {
            matrix h = x;
            rms_norm(h, l.norm, cfg_.eps);
            x += l.kind == 'd' ? delta_mixer(l, h, b, cache.conv[gdn], cache.recurrent[gdn], threads)
                               : attention_mixer(l, h, b, cache.k[attn], cache.v[attn], threads);
            (l.kind == 'd' ? gdn : attn)++;
        }
        matrix last(b.seqs(), cfg_.hidden);
        for (std::int64_t s = 0; s < b.seqs(); ++s) last.row(s) = x.row(b.cu[std::size_t(s) + 1] - 1);
        rms_norm(last, final_norm_, cfg_.eps);
        return project(last, embed_);
    }

private:
    struct layer {
        char kind;
        row_vector norm;
        matrix w_in, w_ab, conv, w_out;  // w_ab and conv: Gated DeltaNet only
        std::vector<float> A_log, dt_bias;
    };

    // The pool options every recurrent call of the batch shares.
    template <class Options>
    static void serve_from_pool(Options& o, const step_batch& b, int threads) {
        o.cu_seqlens = b.cu.data();
        o.num_seqs = int(b.seqs());
        o.state_indices = b.slots.data();
        o.has_initial_state = b.continuing.data();
        o.num_threads = threads;
    }

    matrix delta_mixer(const layer& l, const matrix& h, const step_batch& b, seqmix::tensor<float, 3>& conv_pool,
                       seqmix::tensor<float, 4>& pool, int threads) const {
        const auto& c = cfg_;
        const std::int64_t C = c.conv_channels(), keys = c.key_heads * c.key_dim;
        const matrix raw = project(h, l.w_in), ab = project(h, l.w_ab);
        matrix qkv(h.rows(), C), o(h.rows(), c.value_heads * c.value_dim);
        seqmix::conv1d_options co;
        co.activation = seqmix::activation::silu;
        serve_from_pool(co, b, threads);
        seqmix::causal_conv1d(channels_of(raw, 1, 0, C), view_of(l.conv), channels_of(qkv, 1, 0, C), co,
                              seqmix::tensor_view<const float, 3>(conv_pool.view()), conv_pool.view());
        seqmix::delta_options d;
        d.qk_l2norm = true;
        d.A_log = l.A_log.data();  // g = -exp(A_log) softplus(a + dt_bias), in the kernel
        d.dt_bias = l.dt_bias.data();
        d.beta_sigmoid = true;  // beta = sigmoid(b), in the kernel
        serve_from_pool(d, b, threads);
        const matrix& cqkv = qkv;
        seqmix::gated_delta_rule(
            heads_of(cqkv, 1, 0, c.key_heads, c.key_dim), heads_of(cqkv, 1, keys, c.key_heads, c.key_dim),
            heads_of(cqkv, 1, 2 * keys, c.value_heads, c.value_dim), channels_of(ab, 1, 0, c.value_heads),
            channels_of(ab, 1, c.value_heads, c.value_heads), heads_of(o, 1, 0, c.value_heads, c.value_dim), d,
            seqmix::tensor_view<const float, 4>(pool.view()), pool.view());
        return project(o, l.w_out);
    }

    matrix attention_mixer(const layer& l, const matrix& h, const step_batch& b, seqmix::tensor<float, 4>& k_cache,
                           seqmix::tensor<float, 4>& v_cache, int threads) const {
        const auto& c = cfg_;
        const std::int64_t D = c.head_dim, qw = c.q_heads * D, kw = c.kv_heads * D;
        const matrix qkv = project(h, l.w_in);  // [tokens, q | k | v]
        // The new keys and values into their pages: token i of sequence s is position cached[s] + i.
        for (std::int64_t s = 0; s < b.seqs(); ++s)
            for (std::int32_t t = b.cu[std::size_t(s)]; t < b.cu[std::size_t(s) + 1]; ++t) {
                const std::int64_t pos = b.cached[std::size_t(s)] + (t - b.cu[std::size_t(s)]);
                const std::int32_t page = b.block_table[std::size_t(s * b.max_blocks + pos / c.page_size)];
                std::copy_n(qkv.row(t).data() + qw, kw, k_cache.view().ptr(page, pos % c.page_size));
                std::copy_n(qkv.row(t).data() + qw + kw, kw, v_cache.view().ptr(page, pos % c.page_size));
            }
        std::vector<std::int32_t> kv_lens(std::size_t(b.seqs()));
        for (std::int64_t s = 0; s < b.seqs(); ++s)
            kv_lens[std::size_t(s)] = b.cached[std::size_t(s)] + b.cu[std::size_t(s) + 1] - b.cu[std::size_t(s)];
        seqmix::attention_options ao;
        ao.causal = true;  // bottom-right: each new token sees the cached ones and the new ones before it
        ao.cu_seqlens_q = b.cu.data();
        ao.num_seqs = int(b.seqs());
        ao.seqlens_k = kv_lens.data();
        ao.block_table = b.block_table.data();
        ao.max_blocks_per_seq = b.max_blocks;
        ao.num_threads = threads;
        matrix o(h.rows(), qw);
        seqmix::softmax_attention(
            heads_of(qkv, 1, 0, c.q_heads, D), seqmix::tensor_view<const float, 4>(k_cache.view()),
            seqmix::tensor_view<const float, 4>(v_cache.view()), heads_of(o, 1, 0, c.q_heads, D), ao);
        return project(o, l.w_out);
    }

    hybrid_config cfg_;
    matrix embed_;  // [vocab, hidden], tied with the LM head
    row_vector final_norm_;
    std::vector<layer> layers_;
};

}  // namespace seqmix_examples
