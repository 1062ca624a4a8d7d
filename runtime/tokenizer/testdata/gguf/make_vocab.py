#!/usr/bin/env python3
"""Copy the tokenizer metadata of a GGUF model into a small vocabulary-only GGUF (no tensors), gzipped.

Usage: python3 make_vocab.py MODEL.gguf OUT.gguf.gz   (needs gguf==0.19.0)
Keeps general.architecture and every tokenizer.* key except tokenizer.chat_template, with their types.
"""
import gzip, os, sys, tempfile
from gguf import GGUFReader, GGUFWriter, GGUFValueType

src, dst = sys.argv[1], sys.argv[2]
r = GGUFReader(src)
arch = r.fields["general.architecture"].contents()
tmp = tempfile.mktemp(suffix=".gguf")
w = GGUFWriter(tmp, arch)  # writes general.architecture itself
for key, field in r.fields.items():
    if not key.startswith("tokenizer.") or key == "tokenizer.chat_template":
        continue
    vtype = field.types[0]
    if vtype == GGUFValueType.ARRAY:
        w.add_key_value(key, field.contents(), vtype, sub_type=field.types[-1])
    else:
        w.add_key_value(key, field.contents(), vtype)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
with open(tmp, "rb") as f, gzip.open(dst, "wb", compresslevel=9) as g:
    g.write(f.read())
os.remove(tmp)
print(dst, os.path.getsize(dst))
