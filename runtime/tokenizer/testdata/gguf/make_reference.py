#!/usr/bin/env python3
"""Reference token ids of the GGUF tokenizers, made by HF transformers from the GGUF files themselves.

Usage: python3 make_reference.py OUT_DIR MODEL_DIR:NAME [MODEL_DIR:NAME ...]
  e.g. make_reference.py . ~/.cache/finlora/models/gemma3-270m:gemma3-270m ~/.cache/finlora/models/smollm2-135m:smollm2-135m
Needs (in a venv): transformers==5.24.0 tokenizers==0.23.3 gguf==0.19.0 sentencepiece protobuf numpy.

torch is not installed: transformers' GGUF path imports torch only for tensor dtypes, which the tokenizer
never touches, so a stub module stands in for it and the torch check of load_gguf_checkpoint is
bypassed (it then reads only metadata: return_tensors=False). The tokenizer that results is the one
`AutoTokenizer.from_pretrained(dir, gguf_file="model.gguf")` builds with torch present.

Texts: the 332 texts of /work/shared/fixtures/hf-reference/tokenizer-llama-3.1-reference.json
(FinLoRA prompts from every task plus hard strings) and the extra strings below (Gemma specials,
whitespace runs, tabs, scripts, emoji, byte fallback).
Writes OUT_DIR/<NAME>.json.gz: {"texts": [...], "rows": [{"ids", "ids_plain", "decoded", "decoded_skip"}]}
(ids with add_special_tokens=True, ids_plain with False; decode of ids without and with skip_special_tokens).
"""
import gzip, json, os, sys, types

import transformers  # noqa: F401  (must be imported before the torch stub)
from transformers import AutoTokenizer


class _Stub(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {})


sys.modules["torch"] = _Stub("torch")
import transformers.modeling_gguf_pytorch_utils as mg  # noqa: E402

mg.is_torch_available = lambda: True

EXTRA = [
    "", " ", "  ", "   leading spaces", "trailing spaces   ", "a  b   c    d", "\t\ttabs\tand\n\n\nnewlines\r\n",
    "<start_of_turn>user\nWhat is the sentiment of this news?<end_of_turn>\n<start_of_turn>model\n",
    "<bos><eos><pad><unk><mask>", "<start_of_turn", "text<start_of_image>more", "[multimodal]",
    "Ünïcödé façade naïve – “quotes” — ‘single’ …", "日本語のテキストと中文文本", "한국어 텍스트", "Русский текст, Ελληνικά",
    "עברית ועربي", "emoji 😀🚀📈💰🇺🇸 👩‍💻", "math ∑∫√∞ ≤ ≥ ≠", "\u200b\u200d zero width", "\x00\x01\x7f controls",
    "$1,234.56 (−3.4%) 1e-9 0x1F 2024-11-27T04:20:00Z", "EBITDA/EV=12.3x; P/E~15", "don't won't it's we'll I'd they're",
    "https://example.com/path?q=1&r=2#frag", "<html><div class=\"x\">&amp;</div></html>", "    def f(x):\n        return x**2\n",
    "A" * 300, "ab" * 150 + " end", "\U0001F600" * 20, "🇺🇸🇬🇧🇯🇵", "ﬁﬂ ligatures and ½ ² ³", "tab\tseparated\tvalues",
    "Mixed<0x41>byte<0xFF>tokens", "▁already▁marked▁", "<|im_start|>user\nHi<|im_end|>\n<|endoftext|>",
]


def main():
    out_dir = sys.argv[1]
    with open("/work/shared/fixtures/hf-reference/tokenizer-llama-3.1-reference.json") as f:
        texts = [row["text"] for row in json.load(f)] + EXTRA
    for spec in sys.argv[2:]:
        model_dir, name = spec.rsplit(":", 1)
        tok = AutoTokenizer.from_pretrained(os.path.expanduser(model_dir), gguf_file="model.gguf")
        rows = []
        for t in texts:
            ids = tok(t, add_special_tokens=True)["input_ids"]
            plain = tok(t, add_special_tokens=False)["input_ids"]
            rows.append({"ids": ids, "ids_plain": plain, "decoded": tok.decode(ids),
                         "decoded_skip": tok.decode(ids, skip_special_tokens=True)})
        meta = {"class": type(tok).__name__, "transformers": transformers.__version__,
                "bos": tok.bos_token_id, "eos": tok.eos_token_id, "pad": tok.pad_token_id, "unk": tok.unk_token_id,
                "vocab_size": len(tok)}
        with gzip.open(os.path.join(out_dir, f"{name}.json.gz"), "wt") as f:
            json.dump({"meta": meta, "texts": texts, "rows": rows}, f)
        print(name, meta, sum(len(r["ids"]) for r in rows), "ids")


main()
