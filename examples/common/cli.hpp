#pragma once
// The command line every demo shares, and its inputs: a batch of B sequences of N tokens,
// given as token ids ([B, N] int32 / int64 .npy) or hidden states ([B, N, hidden] float32
// .npy), or drawn at random (seeded) when no --input is given.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "checkpoint.hpp"
#include "npy.hpp"

namespace seqmix_examples {

struct demo_options {
    std::string checkpoint, input, output, prefix;
    int decode = 0;               // the last M tokens are decoded one at a time
    int threads = 0;              // 0: every core
    int batch = 2, tokens = 256;  // the random input's shape
    int repeat = 1;               // runs; the fastest is reported
    std::uint32_t seed = 1;
    // BERT only
    std::string attention_mask, token_type_ids, pooled, pooling = "cls";
    std::vector<std::string> texts;
};

// What a demo is and which of the shared flags it takes.
struct demo_description {
    const char* name;
    const char* summary;
    bool reads_token_ids;  // else hidden states [B, N, hidden]
    bool bert_flags = false;
    bool prefix_flag = false;
    bool decodes = true;
    int batch = 2, tokens = 256;  // the random input's default shape
};

inline void print_help(const demo_description& d) {
    std::printf("%s: %s\n\nusage: %s [options]\n", d.name, d.summary, d.name);
    std::printf(
        "  --checkpoint DIR     Hugging Face directory (config.json, model.safetensors); default: a seeded random "
        "model\n");
    if (d.reads_token_ids)
        std::printf("  --input FILE.npy     token ids, int32 or int64 [B, N]; default: random ids\n");
    else std::printf("  --input FILE.npy     hidden states, float32 [B, N, hidden]; default: random\n");
    if (d.bert_flags) {
        std::printf("  --attention-mask F   int [B, N], 1 = real token, 0 = padding (padding is never computed)\n");
        std::printf("  --token-type-ids F   int [B, N]; default zeros\n");
        std::printf("  --text S             a sentence to tokenize with the checkpoint's vocab.txt (repeatable)\n");
        std::printf("  --pooled FILE.npy    writes the pooled output, float32 [B, hidden]\n");
        std::printf("  --pooling cls|mean   cls: BERT's pooler (dense + tanh on [CLS]); mean: normalized mean of\n");
        std::printf("                       the real tokens, as sentence-transformers computes embeddings\n");
    }
    if (d.prefix_flag) std::printf("  --prefix P           tensor name prefix, e.g. model.layers.0.linear_attn.\n");
    std::printf("  --output FILE.npy    writes the last hidden state, float32 [B, N, hidden]\n");
    if (d.decodes)
        std::printf(
            "  --decode M           prefill N - M tokens, then decode M tokens one at a time with carried\n"
            "                       states in a state pool; the output covers all N tokens\n");
    std::printf("  --threads T          threads of the seqmix operators and Eigen (default: all cores)\n");
    std::printf("  --batch B --tokens N --seed S   the random input (default %d x %d, seed 1)\n", d.batch, d.tokens);
    std::printf("  --repeat R           run R times and report the fastest run\n");
    std::printf("  --help\n");
}

// Throws load_error on an unknown flag or a missing value; exits on --help.
inline demo_options parse_command_line(int argc, char** argv, const demo_description& d) {
    demo_options o;
    o.batch = d.batch;
    o.tokens = d.tokens;
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw load_error(flag + " needs a value");
            return argv[++i];
        };
        auto number = [&]() {
            const std::string v = value();
            char* end = nullptr;
            const long x = std::strtol(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0' || x < 0 || x > (1L << 30))
                throw load_error(flag + ": not a count: '" + v + "'");
            return int(x);
        };
        if (flag == "--help" || flag == "-h") {
            print_help(d);
            std::exit(0);
        } else if (flag == "--checkpoint") o.checkpoint = value();
        else if (flag == "--input") o.input = value();
        else if (flag == "--output") o.output = value();
        else if (flag == "--threads") o.threads = number();
        else if (flag == "--batch") o.batch = number();
        else if (flag == "--tokens") o.tokens = number();
        else if (flag == "--seed") o.seed = std::uint32_t(number());
        else if (flag == "--repeat") o.repeat = std::max(1, number());
        else if (flag == "--decode" && d.decodes) o.decode = number();
        else if (flag == "--prefix" && d.prefix_flag) o.prefix = value();
        else if (flag == "--attention-mask" && d.bert_flags) o.attention_mask = value();
        else if (flag == "--token-type-ids" && d.bert_flags) o.token_type_ids = value();
        else if (flag == "--text" && d.bert_flags) o.texts.push_back(value());
        else if (flag == "--pooled" && d.bert_flags) o.pooled = value();
        else if (flag == "--pooling" && d.bert_flags) {
            o.pooling = value();
            if (o.pooling != "cls" && o.pooling != "mean")
                throw load_error("--pooling: cls or mean, given '" + o.pooling + "'");
        } else throw load_error("unknown option '" + flag + "' (--help lists the options)");
    }
    if (o.batch < 1 || o.tokens < 1) throw load_error("--batch and --tokens must be at least 1");
    return o;
}

// B sequences of N tokens, token-major: row b * N + t is token t of sequence b.
struct sequence_batch {
    std::int64_t batch = 0, tokens = 0;
    std::vector<std::int64_t> ids;  // [B * N] when the model reads token ids
    matrix hidden;                  // [B * N, hidden] when it reads hidden states

    // Tokens [t0, t1) of every sequence.
    sequence_batch slice(std::int64_t t0, std::int64_t t1) const {
        sequence_batch s;
        s.batch = batch;
        s.tokens = t1 - t0;
        if (!ids.empty())
            for (std::int64_t b = 0; b < batch; ++b)
                s.ids.insert(s.ids.end(), ids.begin() + (b * tokens + t0), ids.begin() + (b * tokens + t1));
        if (hidden.size() != 0) {
            s.hidden.resize(batch * s.tokens, hidden.cols());
            for (std::int64_t b = 0; b < batch; ++b)
                s.hidden.middleRows(b * s.tokens, s.tokens) = hidden.middleRows(b * tokens + t0, s.tokens);
        }
        return s;
    }
};

// Token ids [B, N] from .npy, checked against the vocabulary.
inline sequence_batch read_token_ids(const std::string& path, std::int64_t vocab) {
    const npy_array a = read_npy(path);
    if (a.shape.size() != 2) throw load_error(path + ": token ids must be [B, N]");
    sequence_batch s;
    s.batch = a.shape[0];
    s.tokens = a.shape[1];
    s.ids = a.integers();
    for (auto id : s.ids)
        if (id < 0 || id >= vocab)
            throw load_error(path + ": token id " + std::to_string(id) + " outside the vocabulary of " +
                             std::to_string(vocab));
    return s;
}

inline sequence_batch read_hidden_states(const std::string& path, std::int64_t hidden) {
    const npy_array a = read_npy(path);
    if (a.shape.size() != 3 || a.shape[2] != hidden)
        throw load_error(path + ": hidden states must be float32 [B, N, " + std::to_string(hidden) + "]");
    sequence_batch s;
    s.batch = a.shape[0];
    s.tokens = a.shape[1];
    const auto v = a.floats();
    s.hidden = Eigen::Map<const matrix>(v.data(), s.batch * s.tokens, hidden);
    return s;
}

// The demo's input: --input, or random ids / hidden states of --batch x --tokens.
inline sequence_batch demo_input(const demo_options& o, const demo_description& d, std::int64_t vocab_or_hidden) {
    if (!o.input.empty())
        return d.reads_token_ids ? read_token_ids(o.input, vocab_or_hidden)
                                 : read_hidden_states(o.input, vocab_or_hidden);
    std::mt19937 gen(o.seed + 1000);
    sequence_batch s;
    s.batch = o.batch;
    s.tokens = o.tokens;
    if (d.reads_token_ids) {
        std::uniform_int_distribution<std::int64_t> id(0, vocab_or_hidden - 1);
        for (std::int64_t i = 0; i < s.batch * s.tokens; ++i) s.ids.push_back(id(gen));
    } else {
        s.hidden.resize(s.batch * s.tokens, vocab_or_hidden);
        std::normal_distribution<float> n(0.0f, 1.0f);
        for (std::int64_t i = 0; i < s.hidden.size(); ++i) s.hidden.data()[i] = n(gen);
    }
    return s;
}

inline weights demo_weights(const demo_options& o) {
    return o.checkpoint.empty() ? weights(o.seed) : weights::from_directory(o.checkpoint);
}

}  // namespace seqmix_examples
