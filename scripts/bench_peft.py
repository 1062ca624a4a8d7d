#!/usr/bin/env python3
"""bench_peft.py: the PEFT side of `finlora bench`, same flags, same table.

Builds a randomly initialised Hugging Face Llama of the preset's shape in bf16 on the GPU
(transformers, sdpa attention), wraps it with PEFT LoRA, and times AdamW steps on batch x seq
random token ids with labels = ids, gradient checkpointing off and/or on. Peak memory is
torch.cuda.max_memory_allocated (and max_memory_reserved) over the timed run.
MFU uses the same FLOP count and a bf16 GEMM rate measured here with torch.matmul.
"""
import argparse
import statistics
import time

import torch

PRESETS = {
    "llama-3.1-8b": dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=8, head_dim=128, rms_norm_eps=1e-5,
                         max_position_embeddings=131072, rope_theta=500000.0,
                         rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                           original_max_position_embeddings=8192)),
    "tiny": dict(vocab_size=259, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-5, max_position_embeddings=2048, rope_theta=10000.0),
}


def flops(c, batch, seq):
    d, hd = c["hidden_size"], c["head_dim"]
    q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    per_layer = d * q + 2 * d * kv + q * d + 3 * d * c["intermediate_size"]
    n = c["num_hidden_layers"] * per_layer + c["vocab_size"] * d
    tokens = batch * seq
    attn = 2 * 2 * batch * c["num_attention_heads"] * hd * seq * seq / 2 * c["num_hidden_layers"]
    return 4 * n * tokens + 3 * attn


def gemm_rate(n):
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(20):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        a @ b
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e))
    return 2 * n**3 / (statistics.median(times) * 1e-3) / 1e12


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-preset", default="llama-3.1-8b")
    ap.add_argument("-layers", type=int, default=0)
    ap.add_argument("-r", type=int, default=8)
    ap.add_argument("-alpha", type=float, default=32)
    ap.add_argument("-targets", default="q_proj,k_proj,v_proj")
    ap.add_argument("-batch", type=int, default=4)
    ap.add_argument("-seq", type=int, default=512)
    ap.add_argument("-recompute", default="both")
    ap.add_argument("-steps", type=int, default=5)
    ap.add_argument("-warmup", type=int, default=2)
    ap.add_argument("-gemm", type=int, default=8192)
    ap.add_argument("-device", default="")  # accepted for symmetry with finlora bench
    ap.add_argument("-profile", action="store_true")  # accepted for symmetry (no profile here)
    a = ap.parse_args()

    import transformers
    import peft
    from transformers import LlamaConfig, LlamaForCausalLM
    from peft import LoraConfig, get_peft_model

    c = dict(PRESETS[a.preset])
    if a.layers:
        c["num_hidden_layers"] = a.layers
    print(f"peft bench: {a.preset} ({c['num_hidden_layers']} layers), LoRA r={a.r} alpha={a.alpha} on {a.targets}, "
          f"batch {a.batch} x {a.seq}; torch {torch.__version__}, transformers {transformers.__version__}, "
          f"peft {peft.__version__}, {torch.cuda.get_device_name()}", flush=True)
    rate = gemm_rate(a.gemm) if a.gemm else 0
    print(f"measured bf16 GEMM rate (torch.matmul, {a.gemm}^3, median of 20): {rate:.1f} TFLOP/s", flush=True)
    cfg = LlamaConfig(**c, attn_implementation="sdpa", use_cache=False)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg)
    torch.set_default_dtype(torch.float32)
    model.config.use_cache = False
    lc = LoraConfig(r=a.r, lora_alpha=a.alpha, lora_dropout=0.0, target_modules=a.targets.split(","), task_type="CAUSAL_LM")
    model = get_peft_model(model, lc)
    ids = torch.randint(0, c["vocab_size"], (a.steps + a.warmup, a.batch, a.seq), device="cuda")
    modes = {"on": [True], "off": [False], "both": [False, True]}[a.recompute]
    fl = flops(c, a.batch, a.seq)
    results = []
    for rc in modes:
        if rc:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.enable_input_require_grads()
        else:
            model.gradient_checkpointing_disable()
        model.train()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        durs = []
        for s in range(a.steps + a.warmup):
            t0 = time.perf_counter()
            out = model(input_ids=ids[s], labels=ids[s])
            out.loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            print(f"  recompute={rc} step {s + 1}: loss {out.loss.item():.4f}, {dt:.3f} s, {a.batch * a.seq / dt:.0f} tok/s", flush=True)
            if s >= a.warmup:
                durs.append(dt)
        step = statistics.median(durs)
        results.append((rc, a.batch * a.seq / step, step, torch.cuda.max_memory_allocated() / 2**30,
                        torch.cuda.max_memory_reserved() / 2**30, fl / step / (rate * 1e12) if rate else 0))
        del opt
        torch.cuda.empty_cache()
    print(f"\nmodel FLOPs per step: {fl:.3g}")
    print(f"{'impl':<10} {'recompute':<10} {'tok/s':>10} {'step s':>10} {'peak alloc':>12} {'peak resv':>12} {'MFU':>7}")
    for rc, toks, step, pa, pr, mfu in results:
        print(f"{'peft':<10} {str(rc).lower():<10} {toks:10.0f} {step:10.3f} {pa:9.2f} GiB {pr:9.2f} GiB {100 * mfu:6.1f}%")


if __name__ == "__main__":
    main()
