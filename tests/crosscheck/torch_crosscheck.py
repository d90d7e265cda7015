#!/usr/bin/env python3
"""Cross-check seqmix against PyTorch's CPU kernels (optional; not part of the CI suite).

    pip install torch numpy && python3 tests/crosscheck/torch_crosscheck.py

Builds tests/crosscheck/seqmix_c.cpp into a shared library with g++ (-O2 -march=native
-fopenmp), then compares
  - softmax_attention with torch.nn.functional.scaled_dot_product_attention (plain, causal,
    GQA through repeat_interleave, a sliding window and a softcap through an explicit mask /
    float64 math), and
  - gated_linear_attention (vector and scalar gates) with the recurrence written in torch
    float64, including the final state.
Prints one line per case and exits non-zero if any error exceeds its tolerance.
"""
import ctypes
import os
import subprocess
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


def build():
    out = os.path.join(tempfile.mkdtemp(prefix="seqmix_xc_"), "libseqmix_c.so")
    cmd = ["g++", "-std=c++17", "-O2", "-march=native", "-fopenmp", "-shared", "-fPIC",
           "-I" + os.path.join(ROOT, "include"), "-I/usr/include/eigen3",
           os.path.join(HERE, "seqmix_c.cpp"), "-o", out]
    subprocess.run(cmd, check=True)
    return ctypes.CDLL(out)


def ptr(t):
    return ctypes.c_void_p(t.data_ptr())


def rel(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()


def attention_reference(q, k, v, causal, window_left, softcap):
    """[B,N,H,D] layout; bottom-right aligned masks; float64 math."""
    B, Nq, Hq, D = q.shape
    Nk, Hkv = k.shape[1], k.shape[2]
    g = Hq // Hkv
    qh = q.double().transpose(1, 2)
    kh = k.double().transpose(1, 2).repeat_interleave(g, dim=1)
    vh = v.double().transpose(1, 2).repeat_interleave(g, dim=1)
    if window_left < 0 and softcap == 0:
        # PyTorch's fused kernel (its is_causal is top-left aligned; Nq == Nk here).
        o = torch.nn.functional.scaled_dot_product_attention(qh, kh, vh, is_causal=causal)
        return o.transpose(1, 2)
    s = qh @ kh.transpose(-1, -2) / D ** 0.5
    if softcap > 0:
        s = softcap * torch.tanh(s / softcap)
    i = torch.arange(Nq)[:, None] + (Nk - Nq)
    j = torch.arange(Nk)[None, :]
    mask = torch.ones(Nq, Nk, dtype=torch.bool)
    if causal:
        mask &= j <= i
    if window_left >= 0:
        mask &= j >= i - window_left
    s = s.masked_fill(~mask, float("-inf"))
    p = torch.softmax(s, dim=-1).nan_to_num(0.0)
    return (p @ vh).transpose(1, 2)


def gla_reference(q, k, v, g, vector_gate):
    B, N, H, D = q.shape
    S = torch.zeros(B, H, D, D, dtype=torch.float64)
    out = torch.empty(B, N, H, D, dtype=torch.float64)
    qd, kd, vd, gd = q.double(), k.double(), v.double(), g.double()
    for t in range(N):
        decay = gd[:, t].exp() if vector_gate else gd[:, t].exp()[..., None].expand(B, H, D)
        S = decay[..., None] * S + kd[:, t][..., None] * vd[:, t][..., None, :]
        out[:, t] = torch.einsum("bhkv,bhk->bhv", S, qd[:, t]) / D ** 0.5
    return out, S


def main():
    torch.manual_seed(0)
    lib = build()
    lib.seqmix_softmax_attention.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_long] * 6 + [
        ctypes.c_int, ctypes.c_int, ctypes.c_double]
    lib.seqmix_gla.argtypes = [ctypes.c_void_p] * 6 + [ctypes.c_long] * 4 + [ctypes.c_int]
    failures = 0

    for (B, N, Hq, Hkv, D, causal, window, cap) in [
        (2, 257, 8, 2, 64, False, -1, 0.0), (1, 1000, 4, 4, 128, True, -1, 0.0),
        (1, 300, 8, 1, 80, True, 64, 0.0), (2, 129, 4, 2, 32, False, -1, 30.0),
    ]:
        q, k, v = (torch.randn(B, N, h, D) for h in (Hq, Hkv, Hkv))
        out = torch.empty(B, N, Hq, D)
        rc = lib.seqmix_softmax_attention(ptr(q), ptr(k), ptr(v), ptr(out), B, N, N, Hq, Hkv, D,
                                          int(causal), window, cap)
        err = rel(out, attention_reference(q, k, v, causal, window, cap))
        ok = rc == 0 and err < 1e-5
        failures += not ok
        print(f"softmax_attention B={B} N={N} Hq={Hq} Hkv={Hkv} D={D} causal={causal} "
              f"window={window} softcap={cap}: rel err {err:.2e} {'ok' if ok else 'FAIL'}")

    for (B, N, H, D, vector_gate) in [(2, 300, 2, 32, True), (1, 500, 2, 64, False)]:
        q, k, v = (torch.randn(B, N, H, D) for _ in range(3))
        g = torch.nn.functional.logsigmoid(torch.randn(B, N, H, D) if vector_gate else torch.randn(B, N, H)) / 4
        out = torch.empty(B, N, H, D)
        state = torch.empty(B, H, D, D)
        rc = lib.seqmix_gla(ptr(q), ptr(k), ptr(v), ptr(g.contiguous()), ptr(out), ptr(state), B, N, H, D,
                            int(vector_gate))
        ref_out, ref_state = gla_reference(q, k, v, g, vector_gate)
        err = max(rel(out, ref_out), rel(state, ref_state))
        ok = rc == 0 and err < 1e-5
        failures += not ok
        print(f"gated_linear_attention B={B} N={N} H={H} D={D} "
              f"{'vector' if vector_gate else 'scalar'} gate: rel err {err:.2e} {'ok' if ok else 'FAIL'}")

    print(f"{6 - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
