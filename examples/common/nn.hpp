#pragma once
// The dense pieces the model blocks share: row-major Eigen matrices of tokens x features,
// Hugging Face linear layers (weights [out, in]), LayerNorm, RMSNorm, the gated RMSNorms,
// and the pointwise activations. Everything here is plain float, the way the models' own
// PyTorch code computes it; seqmix provides only the token mixers.
#include <Eigen/Dense>
#include <unsupported/Eigen/SpecialFunctions>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <seqmix/seqmix.hpp>

namespace seqmix_examples {

// tokens x features, row-major: a row is one token, as the operators' [.., N, H, D] views expect.
using matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using row_vector = Eigen::RowVectorXf;

// nn.Linear: y = x W^T + b with W as stored by transformers, [out, in].
struct linear {
    matrix weight;    // [out, in]
    row_vector bias;  // [out] or empty

    matrix operator()(const matrix& x) const {
        matrix y = x * weight.transpose();
        if (bias.size() != 0) y.rowwise() += bias;
        return y;
    }
};

// torch.nn.functional.softplus (beta 1, threshold 20).
inline float softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }
inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
inline float log_sigmoid(float x) { return x < 0 ? x - std::log1p(std::exp(x)) : -std::log1p(std::exp(-x)); }

// The activations over whole matrices, in Eigen's vectorized exp / erf / tanh (a scalar
// erf per element was a third of BERT's time).
inline void gelu_erf_in_place(matrix& x) {
    x = (0.5f * x.array() * (1.0f + (x.array() * 0.70710678118654752f).erf())).matrix();
}
inline void gelu_tanh_in_place(matrix& x) {
    const auto a = x.array();
    x = (0.5f * a * (1.0f + (0.7978845608028654f * (a + 0.044715f * a.cube())).tanh())).matrix();
}

// f(row) for every row, blocks of rows spread over the threads (seqmix's threading helper;
// the norms are a fifth of a small model's time when they run on one thread).
template <class F>
void for_each_row(Eigen::Index rows, F&& f) {
    constexpr Eigen::Index block = 16;
    seqmix::parallel_for((rows + block - 1) / block, 0, [&](std::int64_t b, int) {
        for (Eigen::Index r = b * block; r < std::min(rows, (b + 1) * block); ++r) f(r);
    });
}

// nn.LayerNorm over each row.
inline void layer_norm(matrix& x, const row_vector& weight, const row_vector& bias, float eps) {
    for_each_row(x.rows(), [&](Eigen::Index t) {
        auto r = x.row(t);
        const float mean = r.mean();
        const float var = (r.array() - mean).square().mean();
        r = ((r.array() - mean) * (1.0f / std::sqrt(var + eps))).matrix().cwiseProduct(weight) + bias;
    });
}

// The gated RMSNorms of the linear-attention and SSM layers, over segments of `group`
// features of x with the same-shaped gate z:
//   after_norm  (Qwen3-Next, GLA's FusedRMSNormSwishGate): rmsnorm(x) * weight * silu(z)
//   before_norm (Mamba-2's MambaRMSNormGated):           rmsnorm(x * silu(z)) * weight
// `weight` has `group` entries (one per head dim) or x.cols() entries.
enum class gate_order { none, after_norm, before_norm };

template <class Gate>
void gated_rms_norm(matrix& x, const Gate* z, const row_vector& weight, float eps, Eigen::Index group,
                    gate_order order) {
    for_each_row(x.rows(), [&](Eigen::Index t) {
        auto r = x.row(t).array();
        const auto silu_z = [&] { return z->row(t).array() / (1.0f + (-z->row(t).array()).exp()); };
        if (order == gate_order::before_norm) r *= silu_z();
        for (Eigen::Index c = 0; c < x.cols(); c += group) {
            auto seg = r.segment(c, group);
            seg *=
                weight.segment(c % weight.size(), group).array() / std::sqrt(seg.square().sum() / float(group) + eps);
        }
        if (order == gate_order::after_norm) r *= silu_z();
    });
}
// z: any matrix expression of x's shape (a block of projection columns is read in place).
template <class Gate>
void gated_rms_norm(matrix& x, const Eigen::MatrixBase<Gate>& z, const row_vector& weight, float eps,
                    Eigen::Index group, gate_order order) {
    gated_rms_norm(x, &z.derived(), weight, eps, group, order);
}

// RMSNorm as Mamba, Llama and Qwen write it: x / sqrt(mean(x^2) + eps) * weight.
inline void rms_norm(matrix& x, const row_vector& weight, float eps) {
    gated_rms_norm(x, static_cast<const matrix*>(nullptr), weight, eps, x.cols(), gate_order::none);
}

// The pre-norm residual stack of transformers' Mamba and Mamba-2 models around a mixer:
// per layer x += mixer(layer index, layer, rmsnorm(x) with the layer's norm), then norm_f.
template <class Layer, class Mixer>
matrix pre_norm_backbone(matrix x, const std::vector<Layer>& layers, const row_vector& norm_f, float eps,
                         Mixer&& mixer) {
    for (std::size_t li = 0; li < layers.size(); ++li) {
        matrix h = x;
        rms_norm(h, layers[li].norm, eps);
        x += mixer(li, layers[li], static_cast<const matrix&>(h));
    }
    rms_norm(x, norm_f, eps);
    return x;
}

// nn.Embedding: the rows of `table` named by `ids`.
inline matrix embedding_rows(const matrix& table, const std::vector<std::int64_t>& ids) {
    matrix x(Eigen::Index(ids.size()), table.cols());
    for (std::size_t i = 0; i < ids.size(); ++i) x.row(Eigen::Index(i)) = table.row(Eigen::Index(ids[i]));
    return x;
}

// An optional bias as the operators' options take it: nullptr when the model has none.
inline const float* bias_of(const row_vector& b) { return b.size() != 0 ? b.data() : nullptr; }

// A parameter matrix ([C, W] conv weights, [Din, S] A) as the operators take it.
inline seqmix::tensor_view<const float, 2> view_of(const matrix& m) { return {m.data(), {m.rows(), m.cols()}}; }
inline seqmix::tensor_view<const float, 1> view_of(const row_vector& v) { return {v.data(), {v.size()}}; }

// Views of matrix columns as the operators' inputs and outputs, read in place: a const
// matrix gives const views. Token-major [batch * n, cols] as [batch, n, heads, dim] or
// [batch, n, width] from column `col`; the decode forms take [B, cols], one token per
// sequence, as [B, heads, dim] or [B, width].
template <class M>
using element_of = std::conditional_t<std::is_const_v<M>, const float, float>;

template <class M>
seqmix::tensor_view<element_of<M>, 4> heads_of(M& m, Eigen::Index batch, Eigen::Index col, Eigen::Index heads,
                                               Eigen::Index dim) {
    const Eigen::Index n = m.rows() / batch;
    return {m.data() + col, {batch, n, heads, dim}, {n * m.cols(), m.cols(), dim, 1}};
}
template <class M>
seqmix::tensor_view<element_of<M>, 3> channels_of(M& m, Eigen::Index batch, Eigen::Index col, Eigen::Index width) {
    const Eigen::Index n = m.rows() / batch;
    return {m.data() + col, {batch, n, width}, {n * m.cols(), m.cols(), 1}};
}
template <class M>
seqmix::tensor_view<element_of<M>, 3> step_heads_of(M& m, Eigen::Index col, Eigen::Index heads, Eigen::Index dim) {
    return {m.data() + col, {m.rows(), heads, dim}, {m.cols(), dim, 1}};
}
template <class M>
seqmix::tensor_view<element_of<M>, 2> step_channels_of(M& m, Eigen::Index col, Eigen::Index width) {
    return {m.data() + col, {m.rows(), width}, {m.cols(), 1}};
}

}  // namespace seqmix_examples
