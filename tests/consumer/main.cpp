// A downstream program: only the installed headers and seqmix::seqmix.
#include <seqmix/seqmix.hpp>

#include <cmath>
#include <cstdio>

int main() {
    seqmix::tensor<float, 4> q({1, 16, 2, 8}, 0.5f), k({1, 16, 2, 8}, 0.25f), v({1, 16, 2, 8}, 1.0f);
    seqmix::tensor<float, 4> out({1, 16, 2, 8});
    seqmix::attention_options opt;
    opt.causal = true;
    seqmix::softmax_attention(q.view(), k.view(), v.view(), out.view(), opt);
    // Constant values: every output is exactly the value 1.
    for (seqmix::index_t i = 0; i < out.size(); ++i)
        if (std::abs(out.data()[i] - 1.0f) > 1e-6f) {
            std::printf("consumer: wrong output %g at %ld\n", out.data()[i], long(i));
            return 1;
        }
    try {
        seqmix::tensor<float, 4> bad({1, 16, 3, 8});
        seqmix::softmax_attention(q.view(), bad.view(), v.view(), out.view());
        std::printf("consumer: expected seqmix::error\n");
        return 1;
    } catch (const seqmix::error& e) {
        std::printf("consumer ok (error check: %s)\n", e.what());
    }
    return 0;
}
