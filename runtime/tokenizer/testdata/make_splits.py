# Writes splits.json: how the Split pre-tokenizer regexes of Llama 3, Qwen2 and GPT-2 cut a set of hard
# strings, computed with the Python `regex` module (which, like Oniguruma in HF tokenizers, supports
# \p{..}, look-ahead and (?i:..)). The Go scanners in pretokenize.go are checked against it.
# Run: python3 make_splits.py   (regex 2026.5.9 made the committed file)
import json, random, regex
PATS = {
    "llama3": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "qwen2": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "gpt2": r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
}
fixed = [
    "", " ", "  ", "a", "Hello world", "Hello  world", "Hello   world  ", "I'm you're we'VE he'LL it'S 'd 'x",
    "don't'sa ''s '", "1234567 89 0.5 1,000,000", "x\n\ny", "x \n \n y", "\r\n\r\n", " \n", "\t\tindented\ttabs",
    "a\u3000b\u00a0c", "trailing ", "end\n", "(hello) [x] {y}", " ((a)) ", "...'s", "?!\n\nNext", "$AAPL @ 189.82",
    "naïve café", "x²³⁴ Ⅻ ½", "日本語のテキスト", "emoji 😀😀 ok", "e\u0301", "ſ 'ſ 'S", "\u2028x\u2029",
    "https://t.co/G9Zdi1boy5", "a\r\r\nb", " 'hello", "12abc34", "\x0b\x0c x",
]
alphabet = list(" \t\n\r\u3000\u00a0") + list("aZé日ſ") + list("0912²Ⅻ") + list("'.,!?-$(%—’") + ["\u0301", "😀"]
random.seed(7)
rand = ["".join(random.choice(alphabet) for _ in range(random.randint(1, 24))) for _ in range(600)]
# A wider alphabet: other Unicode spaces (NEL, line/paragraph separators, ideographic and thin spaces,
# vertical tab, form feed), format characters (ZWSP, BOM, Mongolian vowel separator), modifier
# letters, marks, letter-numbers, other numbers, currency and math symbols, Arabic, Devanagari, Hangul.
alphabet2 = list("\x85\u2028\u2029\u2009\u200a\u205f\u1680\x0b\x0c\u200b\ufeff\u180e") + \
    list("ʰˆ\u0300\u0903ⅫⅣ①¼๓\u0663€£¥∑≠«»¿¡٫") + list("مرحبانमस्तेहं한국어") + list(" \n'sStT0a")
random.seed(11)
rand += ["".join(random.choice(alphabet2) for _ in range(random.randint(1, 20))) for _ in range(800)]
out = []
for s in fixed + rand:
    row = {"text": s}
    for k, p in PATS.items():
        row[k] = regex.findall(p, s)
        assert "".join(row[k]) == s, (k, s)
    out.append(row)
json.dump(out, open("splits.json", "w"), ensure_ascii=False, indent=0)
print(len(out), "rows")
