// A BERT-tiny style encoder (2 layers, hidden 128, 2 heads of 64, FFN 512) over a packed
// batch of sentences of different lengths: dense layers in Eigen, bidirectional attention
// from seqmix with cu_seqlens (no padding tokens computed). Weights are random (seeded):
// the point is the composition, the shapes and the speed, not a trained model.
#include <seqmix/seqmix.hpp>

#include <Eigen/Dense>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Vector = Eigen::RowVectorXf;

namespace {

constexpr int hidden = 128, heads = 2, head_dim = 64, ffn = 512, layers = 2, vocab = 1000;

struct layer_weights {
    Matrix wqkv, wo, w1, w2;
    Vector bqkv, bo, b1, b2, ln1_g, ln1_b, ln2_g, ln2_b;
};

Matrix random_matrix(int r, int c, std::mt19937& gen, float scale) {
    std::normal_distribution<float> d(0.0f, scale);
    Matrix m(r, c);
    for (int i = 0; i < r * c; ++i) m.data()[i] = d(gen);
    return m;
}

void layer_norm(Matrix& x, const Vector& g, const Vector& b) {
    for (int i = 0; i < x.rows(); ++i) {
        const float mean = x.row(i).mean();
        const float var = (x.row(i).array() - mean).square().mean();
        x.row(i) = ((x.row(i).array() - mean) / std::sqrt(var + 1e-12f)).matrix().cwiseProduct(g) + b;
    }
}

float gelu(float x) { return 0.5f * x * (1.0f + std::erf(x / std::sqrt(2.0f))); }

}  // namespace

int main() {
    std::mt19937 gen(42);
    std::vector<layer_weights> w(layers);
    for (auto& l : w) {
        l.wqkv = random_matrix(hidden, 3 * hidden, gen, 0.05f);
        l.wo = random_matrix(hidden, hidden, gen, 0.05f);
        l.w1 = random_matrix(hidden, ffn, gen, 0.05f);
        l.w2 = random_matrix(ffn, hidden, gen, 0.05f);
        l.bqkv = Vector::Zero(3 * hidden);
        l.bo = l.b2 = Vector::Zero(hidden);
        l.b1 = Vector::Zero(ffn);
        l.ln1_g = l.ln2_g = Vector::Ones(hidden);
        l.ln1_b = l.ln2_b = Vector::Zero(hidden);
    }
    const Matrix embedding = random_matrix(vocab, hidden, gen, 1.0f);

    // Three sentences packed into one sequence axis.
    const std::vector<int> lengths = {37, 128, 5};
    std::vector<std::int32_t> cu{0};
    for (int n : lengths) cu.push_back(cu.back() + n);
    const int tokens = cu.back();
    std::uniform_int_distribution<int> tok(0, vocab - 1);
    Matrix x(tokens, hidden);
    for (int t = 0; t < tokens; ++t) x.row(t) = embedding.row(tok(gen));

    seqmix::attention_options opt;  // bidirectional: no causal mask
    opt.cu_seqlens_q = opt.cu_seqlens_k = cu.data();
    opt.num_seqs = int(lengths.size());

    double worst = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (int li = 0; li < layers; ++li) {
        const auto& l = w[std::size_t(li)];
        Matrix qkv = (x * l.wqkv).rowwise() + l.bqkv;  // [tokens, 3 * hidden]
        // Views straight into the fused QKV projection: [1, tokens, heads, head_dim] with row stride 3*hidden.
        const std::array<seqmix::index_t, 4> shape{1, tokens, heads, head_dim};
        const std::array<seqmix::index_t, 4> strides{tokens * 3 * hidden, 3 * hidden, head_dim, 1};
        seqmix::tensor_view<const float, 4> q(qkv.data(), shape, strides), k(qkv.data() + hidden, shape, strides),
            v(qkv.data() + 2 * hidden, shape, strides);
        Matrix attn(tokens, hidden);
        seqmix::tensor_view<float, 4> out(attn.data(), shape);
        seqmix::softmax_attention(q, k, v, out, opt);
        if (li == 0) {  // the reference agrees on the real layer input
            Matrix ref(tokens, hidden);
            seqmix::reference::softmax_attention(q, k, v, seqmix::tensor_view<float, 4>(ref.data(), shape), opt);
            worst = (attn - ref).cwiseAbs().maxCoeff() / ref.cwiseAbs().maxCoeff();
        }
        x += (attn * l.wo).rowwise() + l.bo;
        layer_norm(x, l.ln1_g, l.ln1_b);
        Matrix h = ((x * l.w1).rowwise() + l.b1).unaryExpr([](float v) { return gelu(v); });
        x += (h * l.w2).rowwise() + l.b2;
        layer_norm(x, l.ln2_g, l.ln2_b);
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

    std::printf("bert_tiny_encoder: %d sentences (%d tokens), %d layers, hidden %d, %d heads\n",
                int(lengths.size()), tokens, layers, hidden, heads);
    for (std::size_t s = 0; s < lengths.size(); ++s) {  // [CLS]-style pooled output: first token
        const Vector cls = x.row(cu[s]);
        std::printf("  sentence %zu (%3d tokens): |h_cls| = %.4f  h_cls[0..3] = %+.4f %+.4f %+.4f\n", s,
                    lengths[s], cls.norm(), cls(0), cls(1), cls(2));
    }
    std::printf("  attention vs seqmix::reference (layer 0): max relative error %.2e\n", worst);
    std::printf("  forward pass: %.3f ms\n", ms);
    return worst < 1e-5 ? 0 : 1;
}
