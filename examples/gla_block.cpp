// A GLA block (gated linear attention layer, as in "Gated Linear Attention Transformers"):
//   q, k, v = x W_q, x W_k, x W_v;  g = logsigmoid(x W_g1 W_g2 + b) / 16   (per key channel)
//   o = GLA(q, k, v, g);  y = (RMSNorm(o) * swish(x W_r)) W_o
// Prefill runs the chunkwise kernel over a prompt and returns the recurrent state; decode
// then continues token by token with gated_linear_attention_step on that state. The
// example checks that prefill + decode equals one prefill of the whole sequence.
#include <seqmix/seqmix.hpp>

#include <Eigen/Dense>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

namespace {

constexpr int model = 256, heads = 4, dk = 64, dv = 128, gate_rank = 16;

Matrix random_matrix(int r, int c, std::mt19937& gen, float scale) {
    std::normal_distribution<float> d(0.0f, scale);
    Matrix m(r, c);
    for (int i = 0; i < r * c; ++i) m.data()[i] = d(gen);
    return m;
}

struct gla_block {
    Matrix wq, wk, wv, wg1, wg2, wr, wo;
    Eigen::RowVectorXf bg;

    explicit gla_block(std::mt19937& gen)
        : wq(random_matrix(model, heads * dk, gen, 0.06f)), wk(random_matrix(model, heads * dk, gen, 0.06f)),
          wv(random_matrix(model, heads * dv, gen, 0.06f)), wg1(random_matrix(model, gate_rank, gen, 0.06f)),
          wg2(random_matrix(gate_rank, heads * dk, gen, 0.25f)), wr(random_matrix(model, heads * dv, gen, 0.06f)),
          wo(random_matrix(heads * dv, model, gen, 0.04f)), bg(Eigen::RowVectorXf::Constant(heads * dk, 2.0f)) {}

    // Projections of n tokens: q, k [n, heads*dk], v [n, heads*dv], g [n, heads*dk].
    void project(const Matrix& x, Matrix& q, Matrix& k, Matrix& v, Matrix& g) const {
        q = x * wq;
        k = x * wk;
        v = x * wv;
        g = ((x * wg1) * wg2).rowwise() + bg;
        g = g.unaryExpr([](float z) { return -std::log1p(std::exp(-z)) / 16.0f; });  // logsigmoid / 16 <= 0
    }

    Matrix finish(const Matrix& x, const Matrix& o) const {
        Matrix normed = o;
        for (int t = 0; t < o.rows(); ++t)
            for (int h = 0; h < heads; ++h) {
                auto seg = normed.row(t).segment(h * dv, dv);
                seg /= std::sqrt(seg.squaredNorm() / dv + 1e-6f);
            }
        Matrix r = (x * wr).unaryExpr([](float z) { return z / (1.0f + std::exp(-z)); });
        return normed.cwiseProduct(r) * wo;
    }
};

// Views of projections [n, heads*d] as [1, n, heads, d].
seqmix::tensor_view<const float, 4> as_heads(const Matrix& m, int d) {
    return {m.data(), {1, m.rows(), heads, d}};
}

}  // namespace

int main() {
    std::mt19937 gen(7);
    const gla_block block(gen);
    const int prompt = 1000, decode = 24, total = prompt + decode;
    const Matrix x = random_matrix(total, model, gen, 1.0f);

    // Reference: one prefill of the whole sequence.
    Matrix q, k, v, g;
    block.project(x, q, k, v, g);
    Matrix o_full(total, heads * dv);
    seqmix::gated_linear_attention(as_heads(q, dk), as_heads(k, dk), as_heads(v, dv), as_heads(g, dk),
                                   seqmix::tensor_view<float, 4>(o_full.data(), {1, total, heads, dv}));
    const Matrix y_full = block.finish(x, o_full);

    // Serving: prefill the prompt, keep the state, then decode one token at a time.
    auto t0 = std::chrono::steady_clock::now();
    const Matrix xp = x.topRows(prompt);
    Matrix qp, kp, vp, gp;
    block.project(xp, qp, kp, vp, gp);
    Matrix o_prompt(prompt, heads * dv);
    seqmix::tensor<float, 4> state({1, heads, dk, dv});
    seqmix::gated_linear_attention(as_heads(qp, dk), as_heads(kp, dk), as_heads(vp, dv), as_heads(gp, dk),
                                   seqmix::tensor_view<float, 4>(o_prompt.data(), {1, prompt, heads, dv}), {}, {},
                                   state.view());
    const double prefill_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

    double worst = 0;
    t0 = std::chrono::steady_clock::now();
    for (int t = prompt; t < total; ++t) {
        const Matrix xt = x.row(t);
        Matrix qt, kt, vt, gt;
        block.project(xt, qt, kt, vt, gt);
        Matrix ot(1, heads * dv);
        seqmix::gated_linear_attention_step(seqmix::tensor_view<const float, 3>(qt.data(), {1, heads, dk}),
                                            seqmix::tensor_view<const float, 3>(kt.data(), {1, heads, dk}),
                                            seqmix::tensor_view<const float, 3>(vt.data(), {1, heads, dv}),
                                            seqmix::tensor_view<const float, 3>(gt.data(), {1, heads, dk}),
                                            seqmix::tensor_view<float, 3>(ot.data(), {1, heads, dv}), state.view());
        const Matrix yt = block.finish(xt, ot);
        worst = std::max(worst, double((yt - y_full.row(t)).cwiseAbs().maxCoeff() / y_full.row(t).cwiseAbs().maxCoeff()));
    }
    const double decode_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

    std::printf("gla_block: model %d, %d heads (dk %d, dv %d), prompt %d tokens + %d decoded\n", model, heads, dk, dv,
                prompt, decode);
    std::printf("  prefill %.2f ms (%.0f tokens/s incl. projections), decode %.3f ms/token\n", prefill_ms,
                prompt / prefill_ms * 1e3, decode_ms / decode);
    std::printf("  y[last][0..3] = %+.4f %+.4f %+.4f\n", y_full(total - 1, 0), y_full(total - 1, 1), y_full(total - 1, 2));
    std::printf("  decode steps vs one prefill of the whole sequence: max relative difference %.2e\n", worst);
    return worst < 1e-4 ? 0 : 1;
}
