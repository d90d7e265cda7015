// A tiny C ABI over seqmix for the PyTorch cross-check (tests/crosscheck/torch_crosscheck.py):
// contiguous float32 [B,N,H,D] arrays in, outputs written in place. Not part of the library.
#include <seqmix/seqmix.hpp>

#include <cstdio>

using seqmix::index_t;

extern "C" {

int seqmix_softmax_attention(const float* q, const float* k, const float* v, float* out, long B, long Nq, long Nk,
                             long Hq, long Hkv, long D, int causal, int window_left, double softcap) {
    try {
        seqmix::attention_options opt;
        opt.causal = causal != 0;
        opt.window_left = window_left;
        opt.softcap = softcap;
        seqmix::softmax_attention(seqmix::tensor_view<const float, 4>(q, {B, Nq, Hq, D}),
                                  seqmix::tensor_view<const float, 4>(k, {B, Nk, Hkv, D}),
                                  seqmix::tensor_view<const float, 4>(v, {B, Nk, Hkv, D}),
                                  seqmix::tensor_view<float, 4>(out, {B, Nq, Hq, D}), opt);
        return 0;
    } catch (const seqmix::error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}

// g: [B,N,H,D] (vector_gate) or [B,N,H]; state_out: [B,H,D,D].
int seqmix_gla(const float* q, const float* k, const float* v, const float* g, float* out, float* state_out, long B,
               long N, long H, long D, int vector_gate) {
    try {
        seqmix::tensor_view<float, 4> fin(state_out, {B, H, D, D});
        if (vector_gate)
            seqmix::gated_linear_attention(seqmix::tensor_view<const float, 4>(q, {B, N, H, D}),
                                           seqmix::tensor_view<const float, 4>(k, {B, N, H, D}),
                                           seqmix::tensor_view<const float, 4>(v, {B, N, H, D}),
                                           seqmix::tensor_view<const float, 4>(g, {B, N, H, D}),
                                           seqmix::tensor_view<float, 4>(out, {B, N, H, D}), {}, {}, fin);
        else
            seqmix::gated_linear_attention(seqmix::tensor_view<const float, 4>(q, {B, N, H, D}),
                                           seqmix::tensor_view<const float, 4>(k, {B, N, H, D}),
                                           seqmix::tensor_view<const float, 4>(v, {B, N, H, D}),
                                           seqmix::tensor_view<const float, 3>(g, {B, N, H}),
                                           seqmix::tensor_view<float, 4>(out, {B, N, H, D}), {}, {}, fin);
        return 0;
    } catch (const seqmix::error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
}
