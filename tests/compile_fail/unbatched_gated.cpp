// Must not compile: the gated operators take batched views only (docs/api.md, "Layouts").
// ctest compiles it with -fsyntax-only and expects the static_assert's message.
#include <seqmix/ops/delta_rule.hpp>
#include <seqmix/ops/gated_linear_attention.hpp>

int main() {
    float buf[64] = {};
    seqmix::tensor_view<const float, 3> q(buf, {2, 2, 4});  // [N,H,D]: no batch axis
    seqmix::tensor_view<float, 3> out(buf + 32, {2, 2, 4});
#if defined(SEQMIX_CASE_DELTA)
    seqmix::tensor_view<const float, 3> beta(buf, {1, 2, 2});
    seqmix::delta_rule(q, q, q, beta, out);
#else
    seqmix::tensor_view<const float, 4> g(buf, {1, 2, 2, 4});
    seqmix::gated_linear_attention(q, q, q, g, out);
#endif
}
