#!/usr/bin/env python3
"""Reference logits of the real GGUF models, made by HF transformers (CPU, float32).

Usage: python3 make_reference.py OUT_DIR MODEL_DIR:NAME [...]
Needs (venv): torch (CPU is enough), transformers==5.24.0, gguf==0.19.0, numpy.
transformers dequantizes the GGUF weights itself (its own GGUF loader) and runs its own Gemma 3 /
Llama modeling code in float32, eager attention. For each prompt the fixture keeps, per position:
logsumexp of the logits, the top 10 (id, logit), and the logits at 512 fixed ids (seeded) --
enough to check every position without storing 262144 floats per position. A fourth, long prompt
(the first 3000 characters of the first FinanceBench test context, longer than Gemma 3's 512-token
window) keeps only its last 48 positions ("positions" lists the positions kept).
Writes OUT_DIR/<NAME>-logits.json.gz.
"""
import gzip, json, os, sys

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

PROMPTS = [
    "The company reported quarterly revenue of $4.2 billion, up 12% from a year earlier.",
    "Instruction: What is the sentiment of this news? Please choose an answer from {negative/neutral/positive}.\n"
    "Input: Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period in 2007.\nAnswer: ",
    "def f(x):\n    return x * 2\n\n# 日本語 😀",
]

# A long prompt (> the 512-token sliding window of Gemma 3's local layers): a FinanceBench context.
with open("/work/shared/data/finlora/test/financebench_test.jsonl") as f:
    LONG = json.loads(f.readline())["context"][:3000]
PROMPTS.append(LONG)
KEEP_LAST = 48  # for the long prompt only the last 48 positions are stored

torch.manual_seed(0)
out_dir = sys.argv[1]
for spec in sys.argv[2:]:
    model_dir, name = spec.rsplit(":", 1)
    model_dir = os.path.expanduser(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir, gguf_file="model.gguf")
    model = AutoModelForCausalLM.from_pretrained(model_dir, gguf_file="model.gguf", torch_dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    V = model.config.vocab_size
    probe = np.random.default_rng(7).choice(V, size=512, replace=False).tolist()
    rows = []
    for p in PROMPTS:
        ids = tok(p, add_special_tokens=True)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].float()
        keep = list(range(len(ids)))
        if p is LONG:
            keep = keep[-KEEP_LAST:]
        logits = logits[keep]
        lse = torch.logsumexp(logits, dim=-1)
        top = torch.topk(logits, 10, dim=-1)
        rows.append({"prompt": p, "ids": ids, "positions": keep, "logsumexp": lse.tolist(),
                     "top_ids": top.indices.tolist(), "top_logits": top.values.tolist(),
                     "probe_logits": logits[:, probe].tolist()})
    cfg = model.config.to_dict()
    with gzip.open(os.path.join(out_dir, f"{name}-logits.json.gz"), "wt") as f:
        json.dump({"probe_ids": probe, "config": {k: v for k, v in cfg.items() if isinstance(v, (int, float, str, bool, list)) or v is None},
                   "rows": rows}, f)
    print(name, "positions:", sum(len(r["ids"]) for r in rows), "top1 last:", [r["top_ids"][-1][0] for r in rows])
