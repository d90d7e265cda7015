// The model blocks of examples/: each block with seqmix's kernels against the same block
// composed from seqmix::reference operators; decode (state pools, one token at a time)
// against prefill; a padded BERT batch against each sentence alone; checkpoints written from
// a random model and read back (one file, sharded, bf16, under a prefix) and the reader's
// errors; the WordPiece tokenizer on fixed strings; the command line's errors; the serving
// engine's continuous batching against each request alone.
#include "bert/bert.hpp"
#include "bert/wordpiece.hpp"
#include "gated_deltanet/gated_deltanet.hpp"
#include "gla/gla.hpp"
#include "mamba/mamba.hpp"
#include "mamba2/mamba2.hpp"
#include "serving/engine.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "catch.hpp"

using namespace seqmix_examples;

namespace {

// Small models with awkward sizes: odd widths, Hv = 2 Hk, Dk != Dv, groups, several chunks.
const char* const mamba_config_text = R"({"vocab_size": 97, "hidden_size": 40, "state_size": 12,
    "num_hidden_layers": 2, "expand": 2, "conv_kernel": 4, "time_step_rank": 5, "use_conv_bias": true})";
const char* const mamba2_config_text = R"({"vocab_size": 97, "hidden_size": 48, "num_heads": 6, "head_dim": 16,
    "expand": 2, "n_groups": 2, "state_size": 24, "num_hidden_layers": 2, "conv_kernel": 4,
    "time_step_limit": [0.0, {"__float__": "Infinity"}]})";
const char* const gated_deltanet_config_text = R"({"hidden_size": 40, "linear_num_key_heads": 2,
    "linear_num_value_heads": 4, "linear_key_head_dim": 20, "linear_value_head_dim": 12, "linear_conv_kernel_dim": 4})";
const char* const gla_config_text = R"({"hidden_size": 48, "num_heads": 3, "expand_k": 0.5, "expand_v": 1,
    "gate_low_rank_dim": 8, "clamp_min": null})";
const char* const bert_config_text = R"({"vocab_size": 97, "hidden_size": 36, "num_hidden_layers": 2,
    "num_attention_heads": 3, "intermediate_size": 50, "max_position_embeddings": 80, "type_vocab_size": 2,
    "layer_norm_eps": 1e-12, "hidden_act": "gelu"})";

double max_relative(const matrix& a, const matrix& b) {
    REQUIRE(a.rows() == b.rows());
    REQUIRE(a.cols() == b.cols());
    REQUIRE(a.allFinite());
    return double((a - b).cwiseAbs().maxCoeff()) / std::max(1e-30, double(b.cwiseAbs().maxCoeff()));
}

sequence_batch random_input(bool ids, std::int64_t batch, std::int64_t tokens, std::int64_t width, unsigned seed) {
    demo_options o;
    o.batch = int(batch);
    o.tokens = int(tokens);
    o.seed = seed;
    demo_description d{"test", "", ids};
    return demo_input(o, d, width);
}

std::filesystem::path temp_dir(const std::string& name) {
    const auto d = std::filesystem::temp_directory_path() /
                   ("seqmix_examples_" +
                    std::to_string(std::hash<std::string>{}(std::filesystem::current_path().string()) % 100000)) /
                   name;
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    return d;
}

void write_file(const std::filesystem::path& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

// A safetensors file of the named tensors, in F32 or BF16 (rounded to nearest even).
using tensors = std::map<std::string, weights::drawn>;
void write_safetensors(const std::filesystem::path& path, const tensors& t, const std::string& rename_prefix = "",
                       bool bf16 = false) {
    std::string header = "{\"__metadata__\": {\"format\": \"pt\"}", data;
    for (const auto& [name, d] : t) {
        const std::size_t begin = data.size();
        for (float v : d.values) {
            if (bf16) {
                std::uint32_t u;
                std::memcpy(&u, &v, 4);
                const std::uint16_t h = std::uint16_t((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
                data.append(reinterpret_cast<const char*>(&h), 2);
            } else {
                data.append(reinterpret_cast<const char*>(&v), 4);
            }
        }
        std::string shape;
        for (auto x : d.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(x);
        header += ", \"" + rename_prefix + name + "\": {\"dtype\": \"" + (bf16 ? "BF16" : "F32") + "\", \"shape\": [" +
                  shape + "], \"data_offsets\": [" + std::to_string(begin) + ", " + std::to_string(data.size()) + "]}";
    }
    header += "}";
    std::string bytes(8, '\0');
    const std::uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) bytes[std::size_t(i)] = char((n >> (8 * i)) & 0xFF);
    write_file(path, bytes + header + data);
}

// f() throws (a load_error or a seqmix::error) with `needle` in its message.
template <class F>
void expect_error(F&& f, const std::string& needle) {
    try {
        f();
        FAIL("expected an error mentioning " << needle);
    } catch (const std::exception& e) {
        INFO(e.what());
        CHECK(std::string(e.what()).find(needle) != std::string::npos);
    }
}

template <class Block>
matrix prefill_all(const Block& block, const sequence_batch& in) {
    timing t;
    return block.prefill(in, nullptr, nullptr, t);
}

// Kernels against the reference operators, and decode against prefill, for one recurrent block.
template <template <class> class Block>
void check_recurrent_block(const char* config, bool reads_ids, std::int64_t width) {
    demo_options o;
    weights fast_weights(11, config), reference_weights(11, config);
    const Block<fast_operators> fast(fast_weights, o);
    const Block<reference_operators> reference(reference_weights, o);
    const sequence_batch in = random_input(reads_ids, 2, 150, width, 5);
    const matrix y = prefill_all(fast, in);
    CHECK(max_relative(y, prefill_all(reference, in)) < 1e-4);

    for (int decode : {1, 37, 149}) {  // 149: a one-token prompt
        INFO("decode " << decode);
        const run_result r = run_recurrent(fast, in, decode);
        CHECK(max_relative(r.output, y) < 1e-4);
    }
    // A sequence alone equals the same sequence in the batch.
    sequence_batch first = in;
    first.batch = 1;
    if (reads_ids) first.ids.resize(std::size_t(in.tokens));
    else first.hidden.conservativeResize(in.tokens, Eigen::NoChange);
    const matrix alone = prefill_all(fast, first);
    CHECK(max_relative(alone, y.topRows(in.tokens)) < 1e-5);
}

}  // namespace

TEST_CASE("examples: Mamba with the kernels equals Mamba with the reference operators; decode equals prefill") {
    check_recurrent_block<mamba_model>(mamba_config_text, true, 97);
}

TEST_CASE("examples: Mamba-2 (groups, several chunks) against the reference; decode equals prefill") {
    check_recurrent_block<mamba2_model>(mamba2_config_text, true, 97);
}

TEST_CASE("examples: Gated DeltaNet (Hv = 2 Hk, Dk != Dv) against the reference; decode equals prefill") {
    check_recurrent_block<gated_deltanet_layer>(gated_deltanet_config_text, false, 40);
}

TEST_CASE("examples: GLA against the reference; decode equals prefill") {
    check_recurrent_block<gla_layer>(gla_config_text, false, 48);
}

TEST_CASE("examples: a padded BERT batch runs padding-free and equals each sentence alone") {
    demo_options o;
    weights fast_weights(3, bert_config_text), reference_weights(3, bert_config_text);
    const bert_model<> fast(fast_weights, o);
    const bert_model<reference_operators> reference(reference_weights, o);
    const std::vector<std::int64_t> lengths = {17, 9, 1, 30};
    const std::int64_t N = 30, B = std::int64_t(lengths.size());
    const sequence_batch ids = random_input(true, B, N, 97, 9);
    std::vector<std::int64_t> mask, types;
    for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t t = 0; t < N; ++t) {
            mask.push_back(t < lengths[std::size_t(b)]);
            types.push_back(t >= lengths[std::size_t(b)] / 2);
        }
    const bert_batch batch(ids, mask, types);
    REQUIRE(batch.real_tokens() == 57);
    timing t;
    const matrix y = fast.encode(batch, t);
    CHECK(max_relative(y, reference.encode(batch, t)) < 1e-4);

    for (std::int64_t b = 0; b < B; ++b) {
        INFO("sentence " << b);
        const std::int64_t n = lengths[std::size_t(b)];
        sequence_batch one;
        one.batch = 1;
        one.tokens = n;
        one.ids.assign(ids.ids.begin() + b * N, ids.ids.begin() + b * N + n);
        const bert_batch alone(one, {}, std::vector<std::int64_t>(types.begin() + b * N, types.begin() + b * N + n));
        const matrix ya = fast.encode(alone, t);
        CHECK(max_relative(ya, y.middleRows(batch.cu[std::size_t(b)], n)) < 1e-5);
    }
    const matrix mean = fast.pool_mean(batch, y), cls = fast.pool_cls(batch, y);
    for (std::int64_t b = 0; b < B; ++b) CHECK(mean.row(b).norm() == Approx(1.0).epsilon(1e-5));
    CHECK(cls.cwiseAbs().maxCoeff() <= 1.0f);
    CHECK(cls.rows() == B);
}

TEST_CASE("examples: a random model written as a checkpoint reads back the same (one file, sharded, bf16, prefixed)") {
    demo_options o;
    weights random(21, mamba_config_text);
    const mamba_model<> original(random, o);
    const sequence_batch in = random_input(true, 2, 40, 97, 4);
    const matrix y = prefill_all(original, in);

    SECTION("one file, MambaForCausalLM's backbone. names") {
        const auto dir = temp_dir("one_file");
        write_file(dir / "config.json", mamba_config_text);
        write_safetensors(dir / "model.safetensors", random.generated(), "backbone.");
        weights w = weights::from_directory(dir.string());
        CHECK(prefill_all(mamba_model<>(w, o), in) == y);
    }
    SECTION("sharded: model.safetensors.index.json") {
        const auto dir = temp_dir("sharded");
        write_file(dir / "config.json", mamba_config_text);
        tensors first, second;
        std::string map;
        for (const auto& [name, d] : random.generated()) {
            const bool one = name.find("layers.1.") == std::string::npos;
            (one ? first : second)[name] = d;
            map +=
                (map.empty() ? "" : ", ") + ("\"" + name + "\": \"" + (one ? "a.safetensors" : "b.safetensors") + "\"");
        }
        write_safetensors(dir / "a.safetensors", first);
        write_safetensors(dir / "b.safetensors", second);
        write_file(dir / "model.safetensors.index.json", "{\"metadata\": {}, \"weight_map\": {" + map + "}}");
        weights w = weights::from_directory(dir.string());
        CHECK(prefill_all(mamba_model<>(w, o), in) == y);
    }
    SECTION("bf16 tensors are converted on load") {
        const auto dir = temp_dir("bf16");
        write_file(dir / "config.json", mamba_config_text);
        write_safetensors(dir / "model.safetensors", random.generated(), "", true);
        weights w = weights::from_directory(dir.string());
        const matrix yb = prefill_all(mamba_model<>(w, o), in);
        CHECK(max_relative(yb, y) > 0);  // rounded weights
        CHECK(max_relative(yb, y) < 0.1);
    }
    SECTION("a Gated DeltaNet layer under a whole model's prefix") {
        weights layer_random(5, gated_deltanet_config_text);
        const gated_deltanet_layer<> layer(layer_random, o);
        const sequence_batch x = random_input(false, 1, 33, 40, 8);
        const auto dir = temp_dir("prefixed");
        write_file(dir / "config.json", gated_deltanet_config_text);
        write_safetensors(dir / "model.safetensors", layer_random.generated(), "model.layers.0.linear_attn.");
        weights w = weights::from_directory(dir.string());
        demo_options prefixed;
        prefixed.prefix = "model.layers.0.linear_attn.";
        CHECK(prefill_all(gated_deltanet_layer<>(w, prefixed), x) == prefill_all(layer, x));
        weights again = weights::from_directory(dir.string());
        expect_error([&] { (void)gated_deltanet_layer<>(again, o); }, "missing tensor 'in_proj_qkvz.weight'");
    }
}

TEST_CASE("examples: checkpoint errors name the file and the tensor") {
    demo_options o;
    weights random(2, mamba_config_text);
    const mamba_model<> original(random, o);
    const auto dir = temp_dir("errors");
    expect_error([&] { (void)weights::from_directory(dir.string()); }, "config.json: cannot open");
    write_file(dir / "config.json", "{\"hidden_size\": 40,}");
    expect_error([&] { (void)weights::from_directory(dir.string()); }, "config.json: bad JSON");
    write_file(dir / "config.json", mamba_config_text);
    expect_error([&] { (void)weights::from_directory(dir.string()); }, "model.safetensors: cannot open");
    tensors t = random.generated();
    t.erase("layers.1.mixer.D");
    write_safetensors(dir / "model.safetensors", t);
    {
        weights w = weights::from_directory(dir.string());
        expect_error([&] { (void)mamba_model<>(w, o); }, "model.safetensors: missing tensor 'layers.1.mixer.D'");
    }
    t = random.generated();
    t["layers.0.mixer.A_log"].shape = {24, 10};
    t["layers.0.mixer.A_log"].values.resize(240);
    write_safetensors(dir / "model.safetensors", t);
    {
        weights w = weights::from_directory(dir.string());
        expect_error([&] { (void)mamba_model<>(w, o); },
                     "tensor 'layers.0.mixer.A_log': expected shape [80, 12], given [24, 10]");
    }
    // Unused tensors (an int64 buffer, say) are never read.
    t = random.generated();
    t["extra.position_ids"] = {{3}, {0, 1, 2}};
    write_safetensors(dir / "model.safetensors", t);
    weights w = weights::from_directory(dir.string());
    CHECK_NOTHROW(mamba_model<>(w, o));
}

TEST_CASE("examples: WordPiece ids of fixed strings") {
    const auto dir = temp_dir("vocab");
    const std::vector<std::string> vocab = {
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world",     ",", "!", "'",   "s",
        "it",    "test",  "un",    "##aff", "##able", "token", "##ization", ".", "a", "##s", "中"};
    std::string text;
    for (const auto& v : vocab) text += v + "\n";
    write_file(dir / "vocab.txt", text);
    const wordpiece_tokenizer lower((dir / "vocab.txt").string(), true), cased((dir / "vocab.txt").string(), false);
    using ids = std::vector<std::int64_t>;
    CHECK(lower.encode("Hello, world! It's a test.") == ids{2, 5, 7, 6, 8, 11, 9, 10, 19, 12, 18, 3});
    CHECK(lower.encode("unaffable tokenization tests") == ids{2, 13, 14, 15, 16, 17, 12, 20, 3});
    CHECK(lower.encode("unaffablex xyz") == ids{2, 1, 1, 3});  // no piece for "x": the whole word is [UNK]
    CHECK(lower.encode(" \t\n ") == ids{2, 3});
    CHECK(lower.encode("a [MASK] test[SEP]") == ids{2, 19, 4, 12, 3, 3});  // special tokens stay whole
    CHECK(cased.encode("HELLO hello") == ids{2, 1, 5, 3});
    CHECK(lower.encode("a\x01"
                       "a") == ids{2, 1, 3});  // control characters are dropped: "aa" is one unknown word
    CHECK(lower.encode("hello\xe4\xb8\xadworld") == ids{2, 5, 21, 6, 3});  // CJK characters are words of their own
    CHECK(lower.encode(std::string(101, 'a')) == ids{2, 1, 3});            // over 100 characters
    expect_error([&] { (void)wordpiece_tokenizer((dir / "none.txt").string(), true); }, "none.txt: cannot open");
}

TEST_CASE("examples: command line errors") {
    demo_description d{"demo", "", true};
    auto parse = [&](std::vector<const char*> args) {
        args.insert(args.begin(), "demo");
        return parse_command_line(int(args.size()), const_cast<char**>(args.data()), d);
    };
    CHECK(parse({"--decode", "5", "--threads", "2"}).decode == 5);
    expect_error([&] { (void)parse({"--bogus"}); }, "unknown option '--bogus'");
    expect_error([&] { (void)parse({"--decode"}); }, "--decode needs a value");
    expect_error([&] { (void)parse({"--threads", "x"}); }, "not a count");
    expect_error([&] { (void)parse({"--text", "hi"}); }, "unknown option '--text'");
    demo_options o;
    weights w(1, mamba_config_text);
    const mamba_model<> model(w, o);
    expect_error([&] { (void)run_recurrent(model, random_input(true, 1, 4, 97, 1), 4); }, "leaves no token to prefill");
}

TEST_CASE("serving: continuous batching over pools and pages gives every request its solo logits bit for bit") {
    // A small budget and few slots: requests wait, slots and pages are reused, prefills share
    // steps with decodes.
    hybrid_config cfg;
    cfg.hidden = 64;
    cfg.vocab = 97;
    cfg.layers = "dad";
    cfg.key_dim = 24, cfg.value_dim = 40, cfg.head_dim = 20, cfg.page_size = 8;
    const hybrid_model model(cfg, 11);
    for (int threads : {1, 3}) {
        engine_limits lim;
        lim.max_running = 3;
        lim.budget = 320;
        std::vector<request> reqs = random_requests(9, cfg, 5, lim);
        const serve_stats st = serve(model, reqs, lim, threads);
        CHECK(st.mixed_steps >= 3);
        CHECK(st.steps > st.mixed_steps);
        for (const request& r : reqs) {
            INFO("request " << r.id << ", " << threads << " threads");
            REQUIRE(r.done());
            CHECK(same_alone(model, r, lim, 1));
        }
    }
}
