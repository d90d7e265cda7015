// Continuous batching over seqmix's state pools and paged KV cache: requests of different
// lengths arrive, each step admits new ones (their whole prompt) next to the running ones
// (one token each) within a token budget, runs the mixed batch through the hybrid model
// (one varlen call per operator), and frees the slots and pages of finished requests for
// the next ones. Then every request runs alone on a fresh cache; its logits must equal the
// batched run's bit for bit. Prints tokens/s for the steps with prefills and for the
// decode-only steps.
//
//   build/release/examples/serving [--requests 32] [--max-running 8] [--budget 512] [--threads N]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "engine.hpp"

namespace {

using namespace seqmix_examples;

std::int64_t flag(int argc, char** argv, const char* name, std::int64_t fallback) {
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], name) == 0) return std::atoll(argv[i + 1]);
    return fallback;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const std::int64_t n = flag(argc, argv, "--requests", 32);
        const int threads = int(flag(argc, argv, "--threads", 0));
        use_threads(threads);
        const hybrid_config cfg;
        const hybrid_model model(cfg, 2026);
        engine_limits lim;
        lim.max_running = flag(argc, argv, "--max-running", 8);
        lim.budget = flag(argc, argv, "--budget", 512);
        std::vector<request> reqs = random_requests(n, cfg, 7, lim);
        std::printf(
            "serving: a hybrid model (layers %s: Gated DeltaNet %lldx%lld / %lldx%lld heads, attention %lld/%lld "
            "heads x %lld, hidden %lld, vocab %lld)\n",
            cfg.layers.c_str(), (long long)cfg.key_heads, (long long)cfg.key_dim, (long long)cfg.value_heads,
            (long long)cfg.value_dim, (long long)cfg.q_heads, (long long)cfg.kv_heads, (long long)cfg.head_dim,
            (long long)cfg.hidden, (long long)cfg.vocab);
        std::printf(
            "  %lld requests (prompts 8-300 tokens, 4-40 new tokens), at most %lld running, %lld tokens per step, "
            "%lld KV pages of %lld tokens\n",
            (long long)n, (long long)lim.max_running, (long long)lim.budget, (long long)lim.pages,
            (long long)cfg.page_size);
        const serve_stats st = serve(model, reqs, lim, threads);
        std::printf(
            "  %lld steps: %lld with prefills (%lld prompt tokens and %lld decodes riding along) in %.1f ms: "
            "%.0f prompt tokens/s\n",
            (long long)st.steps, (long long)st.mixed_steps, (long long)st.prefill_tokens, (long long)st.riding_decodes,
            st.mixed_ms, 1e3 * double(st.prefill_tokens) / st.mixed_ms);
        std::printf("  %lld decode-only steps, %lld tokens in %.1f ms: %.0f tokens/s\n",
                    (long long)(st.steps - st.mixed_steps), (long long)st.decode_tokens, st.decode_ms,
                    st.decode_ms > 0 ? 1e3 * double(st.decode_tokens) / st.decode_ms : 0.0);
        std::int64_t same = 0;
        for (const request& r : reqs) same += same_alone(model, r, lim, threads) ? 1 : 0;
        std::printf("  every request alone on a fresh cache: %lld of %lld give the batched logits bit for bit\n",
                    (long long)same, (long long)n);
        return same == n ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "serving: error: %s\n", e.what());
        return 2;
    }
}
