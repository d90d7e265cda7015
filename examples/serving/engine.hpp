#pragma once
// A continuous-batching engine over the hybrid model (hybrid_model.hpp), as vLLM's and
// sglang's schedulers run one: requests wait, each step admits new ones (their whole prompt)
// next to the running ones (one token each) within a token budget, and finished requests
// give back their state slot and KV pages to the next ones. same_alone() runs a request by
// itself on a fresh cache, the check that batching never changes a request's results.
#include <algorithm>
#include <cstring>
#include <deque>
#include <random>
#include <stdexcept>
#include <vector>

#include "../common/demo.hpp"
#include "hybrid_model.hpp"

namespace seqmix_examples {

struct request {
    int id = 0;
    std::vector<std::int64_t> prompt;
    std::int64_t max_new = 0;
    std::vector<std::int64_t> generated;
    std::vector<std::vector<float>> logits;  // one row per generated token
    std::int32_t slot = -1;
    std::vector<std::int32_t> pages;
    std::int64_t cached = 0;  // tokens in the KV cache (and behind the states)

    std::int64_t total() const { return std::int64_t(prompt.size()) + max_new; }
    bool done() const { return std::int64_t(generated.size()) == max_new; }
};

// Free slots and pages, reused last-freed first.
struct free_list {
    std::vector<std::int32_t> ids;
    explicit free_list(std::int64_t n) {
        for (std::int64_t i = n; i-- > 0;) ids.push_back(std::int32_t(i));
    }
    std::int32_t take() {
        const std::int32_t id = ids.back();
        ids.pop_back();
        return id;
    }
    void give(std::int32_t id) { ids.push_back(id); }
};

struct engine_limits {
    std::int64_t max_running = 8, budget = 512, pages = 0, max_blocks = 0;
};

// The batch of one step: each request's new tokens (the prompt, or the last generated token).
inline step_batch batch_of(const std::vector<request*>& reqs, std::int64_t max_blocks) {
    step_batch b;
    b.cu.push_back(0);
    b.max_blocks = int(max_blocks);
    for (const request* r : reqs) {
        const bool first = r->cached == 0;
        if (first) b.tokens.insert(b.tokens.end(), r->prompt.begin(), r->prompt.end());
        else b.tokens.push_back(r->generated.back());
        b.cu.push_back(std::int32_t(b.tokens.size()));
        b.slots.push_back(r->slot);
        b.continuing.push_back(first ? 0 : 1);
        b.cached.push_back(std::int32_t(r->cached));
        std::vector<std::int32_t> row(std::size_t(max_blocks), -1);
        std::copy(r->pages.begin(), r->pages.end(), row.begin());
        b.block_table.insert(b.block_table.end(), row.begin(), row.end());
    }
    return b;
}

// The logits of each sequence: the next token (greedy) and the row kept for the check.
inline void take_logits(const std::vector<request*>& reqs, const matrix& logits) {
    for (std::size_t i = 0; i < reqs.size(); ++i) {
        request& r = *reqs[i];
        Eigen::Index next = 0;
        logits.row(Eigen::Index(i)).maxCoeff(&next);
        r.generated.push_back(next);
        r.logits.emplace_back(logits.row(Eigen::Index(i)).data(), logits.row(Eigen::Index(i)).data() + logits.cols());
    }
}

struct serve_stats {
    std::int64_t steps = 0, mixed_steps = 0, prefill_tokens = 0, riding_decodes = 0, decode_tokens = 0;
    double mixed_ms = 0, decode_ms = 0;
};

// Continuous batching of `reqs` until every one is done.
inline serve_stats serve(const hybrid_model& model, std::vector<request>& reqs, const engine_limits& lim, int threads) {
    const auto& c = model.config();
    hybrid_cache cache = model.make_cache(lim.max_running, lim.pages);
    free_list slots(lim.max_running), pages(lim.pages);
    std::deque<request*> waiting;
    for (request& r : reqs) waiting.push_back(&r);
    std::vector<request*> running;
    serve_stats st;
    while (!waiting.empty() || !running.empty()) {
        // Running requests decode one token each; waiting ones join while slots, pages and the
        // token budget allow (a request holds the pages of its whole length from admission).
        std::vector<request*> batch(running.begin(), running.end());
        std::int64_t tokens = std::int64_t(batch.size()), prefill = 0;
        while (!waiting.empty()) {
            request* r = waiting.front();
            const std::int64_t need = (r->total() + c.page_size - 1) / c.page_size;
            if (std::int64_t(running.size()) >= lim.max_running || std::int64_t(pages.ids.size()) < need ||
                tokens + std::int64_t(r->prompt.size()) > lim.budget)
                break;
            waiting.pop_front();
            r->slot = slots.take();
            for (std::int64_t i = 0; i < need; ++i) r->pages.push_back(pages.take());
            tokens += std::int64_t(r->prompt.size());
            prefill += std::int64_t(r->prompt.size());
            running.push_back(r);
            batch.push_back(r);
        }
        if (batch.empty()) throw std::runtime_error("a request does not fit the engine's limits");
        const step_batch b = batch_of(batch, lim.max_blocks);
        const stopwatch sw;
        const matrix logits = model.step(b, cache, threads);
        const double ms = sw.ms();
        ++st.steps;
        if (prefill > 0) {
            ++st.mixed_steps;
            st.mixed_ms += ms;
            st.prefill_tokens += prefill;
            st.riding_decodes += tokens - prefill;
        } else {
            st.decode_ms += ms;
            st.decode_tokens += tokens;
        }
        for (std::size_t i = 0; i < batch.size(); ++i) batch[i]->cached += b.cu[i + 1] - b.cu[i];
        take_logits(batch, logits);
        // Finished requests give back their slot and pages.
        for (auto it = running.begin(); it != running.end();) {
            request* r = *it;
            if (!r->done()) {
                ++it;
                continue;
            }
            slots.give(r->slot);
            for (std::int32_t p : r->pages) pages.give(p);
            r->pages.clear();
            it = running.erase(it);
        }
    }
    return st;
}

// The request alone on a fresh cache (slot 0, its own pages): prompt, then one token per
// step, fed the tokens the batched run generated. True when every logit has the same bits.
inline bool same_alone(const hybrid_model& model, const request& batched, const engine_limits& lim, int threads) {
    const auto& c = model.config();
    const std::int64_t need = (batched.total() + c.page_size - 1) / c.page_size;
    hybrid_cache cache = model.make_cache(1, need);
    request r;
    r.prompt = batched.prompt;
    r.max_new = batched.max_new;
    r.slot = 0;
    for (std::int64_t i = 0; i < need; ++i) r.pages.push_back(std::int32_t(need - 1 - i));
    std::vector<request*> one{&r};
    for (std::int64_t i = 0; i < batched.max_new; ++i) {
        const step_batch b = batch_of(one, lim.max_blocks);
        const matrix logits = model.step(b, cache, threads);
        r.cached += b.size();
        if (std::memcmp(logits.data(), batched.logits[std::size_t(i)].data(),
                        sizeof(float) * std::size_t(logits.cols())) != 0)
            return false;
        r.generated.push_back(batched.generated[std::size_t(i)]);
    }
    return true;
}

// n requests with prompts of 8 to 300 random tokens and 4 to 40 new tokens each; sizes the
// engine's block table and pages for them (the longest requests side by side).
inline std::vector<request> random_requests(std::int64_t n, const hybrid_config& cfg, unsigned seed,
                                            engine_limits& lim) {
    std::mt19937 gen(seed);
    std::uniform_int_distribution<std::int64_t> prompt_len(8, 300), new_len(4, 40), token(0, cfg.vocab - 1);
    std::vector<request> reqs(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
        request& r = reqs[std::size_t(i)];
        r.id = int(i);
        r.prompt.resize(std::size_t(prompt_len(gen)));
        for (auto& t : r.prompt) t = token(gen);
        r.max_new = new_len(gen);
        lim.max_blocks = std::max(lim.max_blocks, (r.total() + cfg.page_size - 1) / cfg.page_size);
        if (std::int64_t(r.prompt.size()) > lim.budget)
            throw std::runtime_error("a prompt longer than the token budget");
    }
    lim.pages = lim.max_running * lim.max_blocks;
    return reqs;
}

}  // namespace seqmix_examples
