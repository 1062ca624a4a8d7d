#!/usr/bin/env python3
"""Reference dequantization of real GGUF tensors by gguf-py (llama.cpp's own Python package).

Usage: python3 make_reference.py MODEL.gguf [MODEL2.gguf ...]
Needs: pip install gguf==0.19.0 numpy (in a venv; see README.md).

Writes two fixtures next to this script:
  blocks.json      for each tensor type present in the models, the first few blocks of the first
                   tensor of that type: raw bytes (hex) and gguf-py's float32 values (as uint32 bit
                   patterns, hex), so the Go test checks bit-exact dequantization without the model.
  blocks-synthetic.json  for every supported quantized type (also those no model here uses): 8 blocks
                   of seeded random bytes whose f16/f32 scale fields are replaced by random finite
                   values, and gguf-py's float32 values for them.
  tensors-<model>.json  for every tensor of each model: type, GGUF dims, and the sha256 of gguf-py's
                   dequantized float32 array (little-endian bytes); the Go test that runs when the
                   model is installed compares every tensor's hash.
"""
import hashlib, json, os, sys
import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
from gguf.constants import GGML_QUANT_SIZES

here = os.path.dirname(os.path.abspath(__file__))
blocks = {}
for path in sys.argv[1:]:
    r = GGUFReader(path)
    model = os.path.basename(os.path.dirname(path)) or os.path.basename(path)
    hashes = {}
    for t in r.tensors:
        raw = np.asarray(t.data).view(np.uint8).reshape(-1)
        ref = dequantize(raw, t.tensor_type).astype(np.float32).reshape(-1)
        hashes[t.name] = {"type": t.tensor_type.name, "dims": [int(d) for d in t.shape],
                          "sha256": hashlib.sha256(ref.astype('<f4').tobytes()).hexdigest()}
        tn = t.tensor_type.name
        if tn not in blocks:
            bs, ts = GGML_QUANT_SIZES[t.tensor_type]
            nb = 6 if bs > 1 else 64  # blocks (or elements) to keep
            nb = min(nb, len(raw) // ts)
            b = raw[: nb * ts]
            vals = dequantize(b, t.tensor_type).astype('<f4').reshape(-1)
            blocks[tn] = {"model": model, "tensor": t.name, "blocks": nb,
                          "raw": b.tobytes().hex(), "f32_bits": vals.view('<u4').tobytes().hex()}
    with open(os.path.join(here, f"tensors-{model}.json"), "w") as f:
        json.dump(hashes, f, indent=0, sort_keys=True)
    print(model, len(hashes), "tensors")
with open(os.path.join(here, "blocks.json"), "w") as f:
    json.dump(blocks, f, indent=1, sort_keys=True)
print("block fixtures:", sorted(blocks))

# Synthetic blocks: (type name, [(byte offset, kind)] of its scale fields; kind f16 or f32).
from gguf.constants import GGMLQuantizationType as Q
scale_fields = {
    "Q4_0": [(0, "f16")], "Q4_1": [(0, "f16"), (2, "f16")],
    "Q5_0": [(0, "f16")], "Q5_1": [(0, "f16"), (2, "f16")], "Q8_0": [(0, "f16")],
    "Q2_K": [(80, "f16"), (82, "f16")], "Q3_K": [(108, "f16")],
    "Q4_K": [(0, "f16"), (2, "f16")], "Q5_K": [(0, "f16"), (2, "f16")], "Q6_K": [(208, "f16")],
    "Q8_K": [(0, "f32")],
}
rng = np.random.default_rng(20261127)
synth = {}
for name, fields in scale_fields.items():
    qt = Q[name]
    bs, ts = GGML_QUANT_SIZES[qt]
    nb = 8
    raw = rng.integers(0, 256, size=(nb, ts), dtype=np.uint8)
    for off, kind in fields:
        if kind == "f16":
            v = (rng.standard_normal(nb) * 0.05).astype('<f2')
            raw[:, off:off + 2] = v.view(np.uint8).reshape(nb, 2)
        else:
            v = (rng.standard_normal(nb) * 0.05).astype('<f4')
            raw[:, off:off + 4] = v.view(np.uint8).reshape(nb, 4)
    try:
        vals = dequantize(raw.reshape(-1), qt).astype('<f4').reshape(-1)
    except NotImplementedError as e:
        print("gguf-py cannot dequantize", name, e)
        continue
    synth[name] = {"blocks": nb, "raw": raw.tobytes().hex(), "f32_bits": vals.view('<u4').tobytes().hex()}
for name in ("F16", "BF16"):
    qt = Q[name]
    v = (rng.standard_normal(256) * 3).astype(np.float32)
    raw = v.astype('<f2').view(np.uint8) if name == "F16" else (v.view('<u4') >> 16).astype('<u2').view(np.uint8)
    vals = dequantize(raw.reshape(-1), qt).astype('<f4').reshape(-1)
    synth[name] = {"blocks": 256, "raw": raw.tobytes().hex(), "f32_bits": vals.view('<u4').tobytes().hex()}
with open(os.path.join(here, "blocks-synthetic.json"), "w") as f:
    json.dump(synth, f, indent=1, sort_keys=True)
print("synthetic fixtures:", sorted(synth))
