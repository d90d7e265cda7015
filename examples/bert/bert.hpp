#pragma once
// A BERT encoder (Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers"), as
// transformers' BertModel: word + position + token-type embeddings and LayerNorm, then per
// layer (post-LayerNorm)
//   x = LayerNorm(x + dense(attention(query(x), key(x), value(x))))
//   x = LayerNorm(x + output(gelu(intermediate(x))))
// and the pooler tanh(dense(x[CLS])). A padded batch runs padding-free: the real tokens of
// every row are packed and attention runs over them with cu_seqlens, so no padding token is
// ever computed (ByteTransformer's idea). Names as transformers writes them, with or without
// the `bert.` prefix of BertFor* checkpoints.
#include <cmath>
#include <string>
#include <vector>

#include "../common/demo.hpp"
#include "../common/operators.hpp"

namespace seqmix_examples {

struct bert_config {
    std::int64_t vocab = 1000, hidden = 128, layers = 2, heads = 2, intermediate = 512, positions = 512,
                 token_types = 2;
    float eps = 1e-12f;
    bool gelu_tanh = false;

    std::int64_t head_dim() const { return hidden / heads; }

    static bert_config from(const json& c) {
        bert_config m;
        m.vocab = c.integer_or("vocab_size", m.vocab);
        m.hidden = c.integer_or("hidden_size", m.hidden);
        m.layers = c.integer_or("num_hidden_layers", m.layers);
        m.heads = c.integer_or("num_attention_heads", m.heads);
        m.intermediate = c.integer_or("intermediate_size", m.intermediate);
        m.positions = c.integer_or("max_position_embeddings", m.positions);
        m.token_types = c.integer_or("type_vocab_size", m.token_types);
        m.eps = float(c.number_or("layer_norm_eps", m.eps));
        const std::string act = c.text_or("hidden_act", "gelu");
        if (act != "gelu" && act != "gelu_new" && act != "gelu_pytorch_tanh")
            throw load_error("config.json: hidden_act '" + act + "' (gelu, gelu_new, gelu_pytorch_tanh are read)");
        m.gelu_tanh = act != "gelu";
        if (c.text_or("position_embedding_type", "absolute") != "absolute")
            throw load_error("config.json: only absolute position embeddings are read");
        if (m.heads < 1 || m.hidden % m.heads != 0)
            throw load_error("config.json: hidden_size must be a multiple of num_attention_heads");
        return m;
    }
};

// A batch of B rows of N token ids with their mask, packed: the real tokens of row b are
// rows [cu[b], cu[b+1]) of every packed matrix, in order.
struct bert_batch {
    sequence_batch ids;                     // [B, N]
    std::vector<std::int64_t> mask, types;  // [B * N]: 1 = real token; token type ids
    std::vector<std::int32_t> cu;           // [B + 1]
    std::vector<std::int64_t> rows;         // packed row -> b * N + t

    bert_batch(sequence_batch in, std::vector<std::int64_t> attention_mask, std::vector<std::int64_t> token_types)
        : ids(std::move(in)), mask(std::move(attention_mask)), types(std::move(token_types)) {
        const std::size_t n = std::size_t(ids.batch * ids.tokens);
        if (mask.empty()) mask.assign(n, 1);
        if (types.empty()) types.assign(n, 0);
        if (mask.size() != n || types.size() != n)
            throw load_error("the attention mask and token type ids must be [B, N] as the ids");
        cu.push_back(0);
        for (std::int64_t b = 0; b < ids.batch; ++b) {
            for (std::int64_t t = 0; t < ids.tokens; ++t)
                if (mask[std::size_t(b * ids.tokens + t)] != 0) rows.push_back(b * ids.tokens + t);
            cu.push_back(std::int32_t(rows.size()));
        }
    }
    std::int64_t real_tokens() const { return std::int64_t(rows.size()); }
};

template <class Operators = fast_operators>
class bert_model {
public:
    bert_model(weights& w, const demo_options& o) : cfg_(bert_config::from(w.config())), threads_(o.threads) {
        const auto& c = cfg_;
        const std::string p = w.has("bert.embeddings.word_embeddings.weight") ? "bert." : "";
        words_ = w.matrix_of(p + "embeddings.word_embeddings.weight", c.vocab, c.hidden, normal(0.5f));
        positions_ = w.matrix_of(p + "embeddings.position_embeddings.weight", c.positions, c.hidden, normal(0.5f));
        types_ = w.matrix_of(p + "embeddings.token_type_embeddings.weight", c.token_types, c.hidden, normal(0.5f));
        ln_w_ = w.vector_of(p + "embeddings.LayerNorm.weight", c.hidden, around(1.0f, 0.2f));
        ln_b_ = w.vector_of(p + "embeddings.LayerNorm.bias", c.hidden, normal(0.1f));
        for (std::int64_t i = 0; i < c.layers; ++i) {
            const std::string l = p + "encoder.layer." + std::to_string(i) + ".";
            layer y;
            // query, key and value as one projection: q | k | v columns of one GEMM.
            const linear q = w.linear_of(l + "attention.self.query", c.hidden, c.hidden, true, 0.08f),
                         k = w.linear_of(l + "attention.self.key", c.hidden, c.hidden, true, 0.08f),
                         v = w.linear_of(l + "attention.self.value", c.hidden, c.hidden, true, 0.08f);
            y.qkv.weight.resize(3 * c.hidden, c.hidden);
            y.qkv.weight << q.weight, k.weight, v.weight;
            y.qkv.bias.resize(3 * c.hidden);
            y.qkv.bias << q.bias, k.bias, v.bias;
            y.attention_out = w.linear_of(l + "attention.output.dense", c.hidden, c.hidden, true, 0.08f);
            y.ln1_w = w.vector_of(l + "attention.output.LayerNorm.weight", c.hidden, around(1.0f, 0.2f));
            y.ln1_b = w.vector_of(l + "attention.output.LayerNorm.bias", c.hidden, normal(0.1f));
            y.intermediate = w.linear_of(l + "intermediate.dense", c.intermediate, c.hidden, true, 0.08f);
            y.output = w.linear_of(l + "output.dense", c.hidden, c.intermediate, true, 0.04f);
            y.ln2_w = w.vector_of(l + "output.LayerNorm.weight", c.hidden, around(1.0f, 0.2f));
            y.ln2_b = w.vector_of(l + "output.LayerNorm.bias", c.hidden, normal(0.1f));
            layers_.push_back(std::move(y));
        }
        has_pooler_ = !w.from_checkpoint() || w.has(p + "pooler.dense.weight");
        if (has_pooler_) pooler_ = w.linear_of(p + "pooler.dense", c.hidden, c.hidden, true, 0.08f);
    }

    const bert_config& config() const { return cfg_; }
    std::string describe() const {
        const auto& c = cfg_;
        return "BERT: " + std::to_string(c.layers) + " layers, hidden " + std::to_string(c.hidden) + ", " +
               std::to_string(c.heads) + " heads, intermediate " + std::to_string(c.intermediate) + ", vocab " +
               std::to_string(c.vocab) + (c.gelu_tanh ? ", tanh GELU" : "");
    }

    // The last hidden state of the real tokens, packed [real tokens, hidden].
    matrix encode(const bert_batch& in, timing& t) const {
        const auto& c = cfg_;
        const std::int64_t T = in.real_tokens(), H = c.heads, D = c.head_dim();
        matrix x(T, c.hidden);
        for (std::int64_t r = 0; r < T; ++r) {
            const std::int64_t at = in.rows[std::size_t(r)], pos = at % in.ids.tokens;
            const std::int64_t id = in.ids.ids[std::size_t(at)], type = in.types[std::size_t(at)];
            if (pos >= c.positions)
                throw load_error("token position " + std::to_string(pos) + " beyond max_position_embeddings");
            if (type < 0 || type >= c.token_types)
                throw load_error("token type id " + std::to_string(type) + " outside type_vocab_size");
            x.row(r) = words_.row(id) + positions_.row(pos) + types_.row(type);
        }
        layer_norm(x, ln_w_, ln_b_, c.eps);
        seqmix::attention_options opt;  // bidirectional: no mask but the sequences' bounds
        opt.cu_seqlens_q = opt.cu_seqlens_k = in.cu.data();
        opt.num_seqs = int(in.ids.batch);
        opt.num_threads = threads_;
        for (const layer& y : layers_) {
            const matrix qkv = y.qkv(x);  // [T, q | k | v]
            matrix attention(T, c.hidden);
            timed(t, [&] {
                Operators::softmax_attention(heads_of(qkv, 1, 0, H, D), heads_of(qkv, 1, c.hidden, H, D),
                                             heads_of(qkv, 1, 2 * c.hidden, H, D), heads_of(attention, 1, 0, H, D), opt,
                                             seqmix::tensor_view<float, 3>{});
            });
            x += y.attention_out(attention);
            layer_norm(x, y.ln1_w, y.ln1_b, c.eps);
            matrix h = y.intermediate(x);
            c.gelu_tanh ? gelu_tanh_in_place(h) : gelu_erf_in_place(h);
            x += y.output(h);
            layer_norm(x, y.ln2_w, y.ln2_b, c.eps);
        }
        return x;
    }

    // BERT's pooler: tanh(dense(first token of each row)), [B, hidden].
    matrix pool_cls(const bert_batch& in, const matrix& packed) const {
        if (!has_pooler_)
            throw load_error("the checkpoint has no pooler.dense weights (--pooling mean does not need them)");
        matrix first(in.ids.batch, cfg_.hidden);
        for (std::int64_t b = 0; b < in.ids.batch; ++b) first.row(b) = packed.row(in.cu[std::size_t(b)]);
        matrix y = pooler_(first);
        y = y.array().tanh().matrix();
        return y;
    }

    // sentence-transformers' embedding: the mean of the real tokens, L2-normalized, [B, hidden].
    matrix pool_mean(const bert_batch& in, const matrix& packed) const {
        matrix y = matrix::Zero(in.ids.batch, cfg_.hidden);
        for (std::int64_t b = 0; b < in.ids.batch; ++b) {
            const std::int64_t n = in.cu[std::size_t(b) + 1] - in.cu[std::size_t(b)];
            if (n == 0) continue;
            y.row(b) = packed.middleRows(in.cu[std::size_t(b)], n).colwise().sum() / float(n);
            y.row(b) /= std::max(y.row(b).norm(), 1e-12f);
        }
        return y;
    }

private:
    struct layer {
        linear qkv, attention_out, intermediate, output;
        row_vector ln1_w, ln1_b, ln2_w, ln2_b;
    };

    bert_config cfg_;
    int threads_;
    matrix words_, positions_, types_;
    row_vector ln_w_, ln_b_;
    std::vector<layer> layers_;
    bool has_pooler_ = true;
    linear pooler_;
};

}  // namespace seqmix_examples
