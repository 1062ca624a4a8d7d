#!/usr/bin/env python3
"""Rebuild this folder's sample from FinLoRA's test files (see README.md).

Usage: python3 make_sample.py [SHARED_FINLORA_DIR]   (default: ../../../shared/data/finlora)

For each source file: drop rows whose context repeats an earlier row's (FPB has duplicate
sentences, which would leak between a train and a test split), then keep N rows chosen with
Python's random.Random(SEED).sample, written in their original file order.
"""
import json, os, random, sys

SEED = 20261127
N = 240
src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../../../shared/data/finlora")
here = os.path.dirname(os.path.abspath(__file__))
for name in ["fpb", "tfns"]:
    rows, seen = [], set()
    with open(os.path.join(src, "test", f"{name}_test.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if r["context"] in seen:
                continue
            seen.add(r["context"])
            rows.append(r)
    keep = sorted(random.Random(SEED).sample(range(len(rows)), N))
    with open(os.path.join(here, f"{name}.jsonl"), "w") as f:
        for i in keep:
            f.write(json.dumps({"context": rows[i]["context"], "target": rows[i]["target"]}, ensure_ascii=False) + "\n")
    print(name, len(rows), "unique rows ->", N)
