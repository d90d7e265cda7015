// A BERT encoder from a Hugging Face checkpoint (BertModel, e.g. bert_uncased_L-2_H-128_A-2
// or all-MiniLM-L6-v2 with --pooling mean): bash examples/run.sh runs it on a random model;
// --help lists the options.
#include "bert.hpp"
#include "wordpiece.hpp"

using namespace seqmix_examples;

namespace {

// Token ids, mask and token types from --text (the checkpoint's vocab.txt), --input (with
// --attention-mask, --token-type-ids), or random ids where row b has N - b N / (2B) real
// tokens, so the random batch is padded too.
bert_batch demo_batch(const demo_options& o, const demo_description& d, const bert_model<>& model) {
    auto read_ints = [](const std::string& path) {
        return path.empty() ? std::vector<std::int64_t>{} : read_npy(path).integers();
    };
    if (!o.texts.empty()) {
        if (o.checkpoint.empty()) throw load_error("--text needs --checkpoint (its vocab.txt)");
        bool lower = true;
        if (file_exists(o.checkpoint + "/tokenizer_config.json"))
            lower = json::parse(read_text_file(o.checkpoint + "/tokenizer_config.json"), "tokenizer_config.json")
                        .boolean_or("do_lower_case", true);
        const wordpiece_tokenizer tok(o.checkpoint + "/vocab.txt", lower);
        std::vector<std::vector<std::int64_t>> rows;
        std::size_t longest = 0;
        for (const auto& text : o.texts) {
            rows.push_back(tok.encode(text));
            longest = std::max(longest, rows.back().size());
            std::printf("  ids of \"%s\":", text.c_str());
            for (auto id : rows.back()) std::printf(" %lld", (long long)id);
            std::printf("\n");
        }
        sequence_batch s;
        s.batch = std::int64_t(rows.size());
        s.tokens = std::int64_t(longest);
        std::vector<std::int64_t> mask;
        for (const auto& r : rows) {
            s.ids.insert(s.ids.end(), r.begin(), r.end());
            s.ids.insert(s.ids.end(), longest - r.size(), tok.pad_id());
            mask.insert(mask.end(), r.size(), 1);
            mask.insert(mask.end(), longest - r.size(), 0);
        }
        return bert_batch(std::move(s), std::move(mask), {});
    }
    sequence_batch ids = demo_input(o, d, model.config().vocab);
    std::vector<std::int64_t> mask = read_ints(o.attention_mask);
    if (o.input.empty() && mask.empty())
        for (std::int64_t b = 0; b < ids.batch; ++b)
            for (std::int64_t t = 0; t < ids.tokens; ++t)
                mask.push_back(t < ids.tokens - b * ids.tokens / (2 * ids.batch));
    return bert_batch(std::move(ids), std::move(mask), read_ints(o.token_type_ids));
}

}  // namespace

int main(int argc, char** argv) {
    demo_description d{"bert", "a BERT encoder over a padded batch, computed padding-free", /*reads_token_ids=*/true};
    d.bert_flags = true;
    d.decodes = false;
    d.batch = 8;
    d.tokens = 128;
    return demo_main(d, argc, argv, [&](const demo_options& o) {
        use_threads(o.threads);
        weights w = demo_weights(o);
        const bert_model<> model(w, o);
        std::printf("bert: %s\n  %s\n", o.checkpoint.empty() ? "random model (seeded)" : o.checkpoint.c_str(),
                    model.describe().c_str());
        const bert_batch in = demo_batch(o, d, model);
        std::printf("  input: %lld rows x %lld tokens, %lld real tokens (padding is not computed)\n",
                    (long long)in.ids.batch, (long long)in.ids.tokens, (long long)in.real_tokens());
        run_result r;
        matrix packed;
        for (int i = 0; i < o.repeat; ++i) {
            timing t;
            const stopwatch s;
            packed = model.encode(in, t);
            if (i == 0 || s.ms() < r.prefill_ms) {
                r.prefill_ms = s.ms();
                r.prefill_mixer_ms = t.mixer_ms;
            }
        }
        r.prefill_tokens = in.real_tokens();
        // The last hidden state [B, N, hidden], zeros at padding.
        r.output = matrix::Zero(in.ids.batch * in.ids.tokens, model.config().hidden);
        for (std::int64_t i = 0; i < in.real_tokens(); ++i) r.output.row(in.rows[std::size_t(i)]) = packed.row(i);
        print_throughput(r, in.ids.batch);
        print_checksum(r.output);
        write_output(o.output, r.output, in.ids.batch);
        const matrix pooled = o.pooling == "mean" ? model.pool_mean(in, packed) : model.pool_cls(in, packed);
        std::printf("  pooled (%s) [%lld x %lld]: row 0 [0..2] = %+.5f %+.5f %+.5f\n", o.pooling.c_str(),
                    (long long)pooled.rows(), (long long)pooled.cols(), double(pooled(0, 0)), double(pooled(0, 1)),
                    double(pooled(0, 2)));
        if (!o.pooled.empty())
            write_npy(o.pooled, std::vector<float>(pooled.data(), pooled.data() + pooled.size()),
                      {pooled.rows(), pooled.cols()});
    });
}
