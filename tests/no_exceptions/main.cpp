// seqmix built with -fno-exceptions: a bad argument prints the seqmix::error message and
// aborts (ctest runs this program as a child process and expects the message, never
// "returned"); good calls run as usual, on OpenMP and on a thread_pool.
//   no_exceptions        good calls; exit code 0 when their results are right
//   no_exceptions bad    a call with a wrong key shape: must abort with the message
#include <seqmix/seqmix.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
    using namespace seqmix;
    tensor<float, 4> q({1, 5, 2, 8}), k({1, 5, 2, 8}), v({1, 5, 2, 8}), out({1, 5, 2, 8}), g({1, 5, 2, 8});
    for (index_t i = 0; i < q.size(); ++i) {
        q.data()[i] = float(std::sin(0.3 * double(i)));
        k.data()[i] = float(std::cos(0.7 * double(i)));
        v.data()[i] = float(i % 5);
        g.data()[i] = -0.1f;
    }
    if (argc > 1 && std::strcmp(argv[1], "bad") == 0) {
        tensor<float, 4> k_bad({1, 5, 2, 7});
        softmax_attention(q.view(), k_bad.view(), v.view(), out.view());
        std::printf("returned from a bad call\n");
        return 1;
    }
    // Each output row is a convex combination of v's rows: within [0, 4].
    thread_pool pool(2);
    attention_options o;
    o.causal = true;
    o.executor = &pool;
    softmax_attention(q.view(), k.view(), v.view(), out.view(), o);
    for (index_t i = 0; i < out.size(); ++i)
        if (!(out.data()[i] >= 0 && out.data()[i] <= 4)) return 2;
    // The first token sees itself only.
    for (index_t i = 0; i < 16; ++i)
        if (out.data()[i] != v.data()[i]) return 3;
    gla_options go;
    go.num_threads = 2;
    gated_linear_attention(q.view(), k.view(), v.view(), g.view(), out.view(), go);
    for (index_t i = 0; i < out.size(); ++i)
        if (!std::isfinite(out.data()[i])) return 4;
    std::printf("good calls passed\n");
    return 0;
}
