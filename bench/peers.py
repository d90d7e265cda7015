#!/usr/bin/env python3
"""Times what a user would otherwise run on the CPU, at the seqmix_bench shapes (optional; not CI).

    pip install torch transformers
    python3 bench/peers.py [--threads 1 2] [--out build/release/peers.json] [--quick]

Run it after `bash bench/run.sh` on the same machine, then rerun
`python3 bench/report.py build/release/full.json --out docs`: report.py reads
build/release/peers.json (next to the run's JSON) and puts the peers beside seqmix's rows.

Peers, each named after the seqmix_bench row whose shapes it runs (B = 1 everywhere):
  - torch.nn.functional.scaled_dot_product_attention in fp32 and bf16: the softmax prefill rows
    (H8, D 64/128, N 512/2048/8192, full/causal; GQA 32/8 D128 N2048 with enable_gqa) on
    token-major [1, N, H, D] tensors passed transposed, as transformers' attention layers pass
    them, and the decode rows Hq32/Hkv8/D128 Nk 4096/32768 against a contiguous head-major
    [1, Hkv, Nk, D] cache (transformers' DynamicCache layout; the bytes read are the same).
    torch's bf16 also stands beside seqmix's bf16 prefill rows and its bf16 head-major decode.
  - transformers' torch_chunk_gated_delta_rule (Qwen3-Next's PyTorch path; chunk 64, q and k
    l2-normalized in the kernel): gated_delta_rule/chunk/scalar_gate rows, and the delta_rule
    rows with g = 0.
  - transformers' mamba_selective_scan (Mamba's PyTorch path, channel-major [1, Din, N]; D skip,
    z gate, dt bias and softplus on): selective_scan Din1536 S16 rows.
  - transformers' mamba2_chunk_scan (Mamba-2's PyTorch path, its default chunk 256; D skip, dt
    bias and softplus on) followed by the silu(z) gate seqmix's ssd_scan applies (Mamba-2 applies
    it in its gated RMSNorm): ssd_scan H24 P64 S128 G1 rows.
Each time is the median of 5 calls after 2 warm-up calls under torch.no_grad() and
torch.set_num_threads(t) (--quick: a few shapes, 1 warm-up and 1 timed call, for testing).
A peer that fails records its error instead of a time. Prints one line per timing.
"""
import argparse
import datetime
import importlib
import inspect
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F


def cpu_model():
    """The CPU as bench/run.sh names it in the benchmark context."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "?"
    fields = {}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("Model name", "?")
    if "CPU family" in fields and "Model" in fields:
        name += f" (family {fields['CPU family']} model {fields['Model']})"
    return name


def time_ms(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def uniform(shape, lo, hi, gen, dtype=torch.float32):
    return (torch.rand(shape, generator=gen) * (hi - lo) + lo).to(dtype)


# ------------------------------------------------------------------ softmax attention (torch SDPA)

def sdpa_supports_gqa():
    try:
        q, k = torch.zeros(1, 4, 2, 8), torch.zeros(1, 2, 2, 8)
        F.scaled_dot_product_attention(q, k, k, enable_gqa=True)
        return True
    except (TypeError, RuntimeError):
        return False


GQA = sdpa_supports_gqa()


def sdpa_call(q, k, v, causal):
    """q [1, Hq, Nq, D], k and v [1, Hkv, Nk, D]; GQA through enable_gqa, else repeat_interleave."""
    hq, hkv = q.shape[1], k.shape[1]
    if hq == hkv:
        return lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    if GQA:
        return lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
    g = hq // hkv
    return lambda: F.scaled_dot_product_attention(q, k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1),
                                                  is_causal=causal)


def sdpa_prefill(hq, hkv, n, d, causal, dtype, gen):
    # Token-major [1, N, H, D] storage, passed as the [1, H, N, D] view transformers passes.
    q = uniform((1, n, hq, d), -0.5, 0.5, gen, dtype).transpose(1, 2)
    k = uniform((1, n, hkv, d), -0.5, 0.5, gen, dtype).transpose(1, 2)
    v = uniform((1, n, hkv, d), -0.5, 0.5, gen, dtype).transpose(1, 2)
    return sdpa_call(q, k, v, causal)


def sdpa_decode(hq, hkv, nk, d, dtype, gen):
    q = uniform((1, hq, 1, d), -0.5, 0.5, gen, dtype)
    k = uniform((1, hkv, nk, d), -0.5, 0.5, gen, dtype)
    v = uniform((1, hkv, nk, d), -0.5, 0.5, gen, dtype)
    return sdpa_call(q, k, v, False)


# ------------------------------------------------------------------ delta rule (transformers)

def gated_delta(h, n, d, gated, gen):
    from transformers.models.qwen3_next.modeling_qwen3_next import torch_chunk_gated_delta_rule
    q, k, v = (uniform((1, n, h, d), -1, 1, gen) for _ in range(3))
    g = uniform((1, n, h), -0.1, 0, gen) if gated else torch.zeros(1, n, h)
    beta = uniform((1, n, h), 0.1, 0.9, gen)
    return lambda: torch_chunk_gated_delta_rule(q, k, v, g=g, beta=beta, use_qk_l2norm_in_kernel=True)


# ------------------------------------------------------------------ state-space scans (transformers)

def mamba1_scan(n, din, s, gen):
    from transformers.models.mamba.modeling_mamba import mamba_selective_scan
    u = uniform((1, din, n), -1, 1, gen)       # [B, Din, L], Mamba's layout
    dt = uniform((1, din, n), -4, 0, gen)
    z = uniform((1, din, n), -2, 2, gen)
    A = uniform((din, s), -16, -1, gen)
    B = uniform((1, s, n), -1, 1, gen)         # [B, S, L], the kernel layout it takes
    C = uniform((1, s, n), -1, 1, gen)
    D = torch.full((din,), 0.5)
    bias = torch.full((din,), 0.1)
    return lambda: mamba_selective_scan(u, dt, A, B, C, D=D, z=z, delta_bias=bias, delta_softplus=True)


def mamba2_scan(n, h, p, s, gen, chunk=256):
    from transformers.models.mamba2.modeling_mamba2 import mamba2_chunk_scan
    x = uniform((1, n, h, p), -1, 1, gen)
    z = uniform((1, n, h, p), -2, 2, gen)
    B = uniform((1, n, 1, s), -1, 1, gen)
    C = uniform((1, n, 1, s), -1, 1, gen)
    dt = uniform((1, n, h), -4, 0, gen)
    A = uniform((h,), -16, -1, gen)
    D = torch.full((h,), 0.5)
    bias = torch.full((h,), 0.1)

    def run():
        y = mamba2_chunk_scan(x, dt, A, B, C, chunk_size=chunk, D=D, dt_bias=bias, dt_softplus=True)
        return y * F.silu(z)
    return run


# ------------------------------------------------------------------ the rows

def cases(quick):
    """(seqmix row without /threads, peer, maker(gen) -> callable)."""
    out = []
    dtypes = (("fp32", torch.float32), ("bf16", torch.bfloat16))
    prefill = [(8, 8, n, d, c) for d in (64, 128) for n in (512, 2048, 8192) for c in (False, True)]
    prefill += [(32, 8, 2048, 128, c) for c in (False, True)]
    if quick:
        prefill = [(8, 8, 512, 64, True), (32, 8, 2048, 128, True)]
    for hq, hkv, n, d, causal in prefill:
        shape = f"H{hq}" if hq == hkv else f"GQA{hq}x{hkv}"
        name = f"softmax_attention/prefill/{shape}/D{d}/N{n}/{'causal' if causal else 'full'}"
        for tag, dt in dtypes:
            out.append((name, f"torch SDPA {tag}",
                        lambda gen, a=(hq, hkv, n, d, causal, dt): sdpa_prefill(*a, gen)))
    for nk in ((4096,) if quick else (4096, 32768)):
        name = f"softmax_attention/decode/Hq32/Hkv8/D128/Nk{nk}/token_major"
        for tag, dt in dtypes:
            out.append((name, f"torch SDPA {tag}", lambda gen, a=(32, 8, nk, 128, dt): sdpa_decode(*a, gen)))
    # seqmix's 16-bit rows beside torch's bf16: bf16 prefill, and decode over a bf16 head-major cache.
    for causal in ((True,) if quick else (False, True)):
        name = f"softmax_attention/prefill/H8/D128/N2048/{'causal' if causal else 'full'}/bf16"
        out.append((name, "torch SDPA bf16", lambda gen, c=causal: sdpa_prefill(8, 8, 2048, 128, c, torch.bfloat16, gen)))
    if not quick:
        out.append(("softmax_attention/decode/Hq32/Hkv8/D128/kv_bf16/Nk32768/head_major", "torch SDPA bf16",
                    lambda gen: sdpa_decode(32, 8, 32768, 128, torch.bfloat16, gen)))
    delta_shapes = [(64, 2048)] if quick else [(d, n) for d in (64, 128) for n in (2048, 8192)]
    for gated in (True, False):
        for d, n in delta_shapes:
            name = f"{'gated_delta_rule/chunk/scalar_gate' if gated else 'delta_rule/chunk'}/H4/D{d}/N{n}"
            peer = "transformers torch_chunk_gated_delta_rule" + ("" if gated else " (g = 0)")
            out.append((name, peer, lambda gen, a=(4, n, d, gated): gated_delta(*a, gen)))
    for n in ((512,) if quick else (512, 2048)):
        # Mamba's PyTorch path takes channel-major [1, Din, N]: the same call stands beside the
        # channel_major row of the same shape.
        names = [f"selective_scan/token_major/Din1536/S16/N{n}"]
        if n == 2048:
            names.append(f"selective_scan/channel_major/Din1536/S16/N{n}")
        out.append((names, "transformers mamba_selective_scan", lambda gen, n=n: mamba1_scan(n, 1536, 16, gen)))
    out.append(("ssd_scan/H24/P64/S128/G1/N2048", "transformers mamba2_chunk_scan + silu(z)",
                lambda gen: mamba2_scan(2048, 24, 64, 128, gen)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", default=os.path.join("build", "release", "peers.json"))
    ap.add_argument("--quick", action="store_true", help="a few shapes, one timed call each (testing)")
    args = ap.parse_args()
    warmup, reps = (1, 1) if args.quick else (2, 5)

    def where(module, name):
        """file:line of `def name(` in a transformers module (the names are kernels' Func modules)."""
        try:
            m = importlib.import_module(f"transformers.models.{module}")
            path = inspect.getsourcefile(m)
            line = next(i for i, l in enumerate(open(path), 1) if l.startswith(f"def {name}("))
            return f"{m.__name__.replace('.', '/')}.py:{line}"
        except Exception as e:  # transformers missing or moved: the rows record the error too
            return f"{type(e).__name__}: {e}".splitlines()[0][:200]

    try:
        import transformers
        from transformers.utils import logging as hf_logging
        hf_logging.set_verbosity_error()  # the "falling back to its reference PyTorch implementation" notices
        hf_version = transformers.__version__
    except Exception as e:
        hf_version = f"not importable ({type(e).__name__})"
    ctx = {
        "torch": torch.__version__,
        "transformers": hf_version,
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "threads": args.threads,
        "quick": args.quick,
        "warmup": warmup,
        "reps": reps,
        "statistic": "median",
        "sdpa_gqa": "enable_gqa" if GQA else "repeat_interleave",
        # On CPU inputs transformers' wrappers run these reference bodies (fla and mamba_ssm run on GPUs only).
        "functions": {name: where(module, name) for module, name in (
            ("qwen3_next.modeling_qwen3_next", "torch_chunk_gated_delta_rule"),
            ("mamba.modeling_mamba", "mamba_selective_scan"),
            ("mamba2.modeling_mamba2", "mamba2_chunk_scan"))},
    }
    rows = []
    todo = cases(args.quick)
    with torch.no_grad():
        for t in args.threads:
            torch.set_num_threads(t)
            for names, peer, make in todo:
                names = names if isinstance(names, list) else [names]
                row = {"peer": peer}
                try:
                    fn = make(torch.Generator().manual_seed(0))
                    row["ms"] = time_ms(fn, warmup, reps)
                    msg = f"{row['ms']:10.3f} ms"
                except Exception as e:  # a missing function, an unsupported dtype, memory: record it
                    row["ms"] = None
                    row["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:300]
                    msg = f"     error {row['error']}"
                finally:
                    fn = None
                for name in names:
                    rows.append(dict(name=f"{name}/threads:{t}", **row))
                print(f"{msg}  {peer:<50} {names[0]}/threads:{t}", flush=True)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"context": ctx, "rows": rows}, f, indent=1)
    print(f"wrote {args.out}: {len(rows)} rows, {sum(r['ms'] is None for r in rows)} with an error")
    return 0


if __name__ == "__main__":
    sys.exit(main())
