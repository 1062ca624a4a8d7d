# Writes tiny-llama.golden.json: for every tensor of tiny-llama.safetensors, its dtype, shape,
# the first 4 values and the sum of all values (float64), decoded with Python's struct module only
# (an oracle independent of the Go reader). Run: python3 make_golden.py
import json, struct
b = open("tiny-llama.safetensors", "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
data = b[8 + n:]
out = {"metadata": h.pop("__metadata__", {}), "tensors": {}}
for name, t in sorted(h.items()):
    assert t["dtype"] == "F32"
    s, e = t["data_offsets"]
    vals = struct.unpack("<%df" % ((e - s) // 4), data[s:e])
    out["tensors"][name] = {"dtype": t["dtype"], "shape": t["shape"], "first": list(vals[:4]), "sum": sum(vals)}
json.dump(out, open("tiny-llama.golden.json", "w"), indent=1)
