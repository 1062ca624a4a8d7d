package tokenizer

import "strings"

// BPE is a byte-level BPE tokenizer loaded from a tokenizer.json (LoadDir, Load). It is immutable
// after loading except for an internal per-word cache, and safe for concurrent use.
type BPE struct {
	model     *bpeModel
	vocabSize int
	added     map[string]int // content -> id of added tokens
	special   []bool         // per id: an added token marked special
	addedRaw  *addedMatcher  // added tokens matched in the raw text
	addedNorm *addedMatcher  // normalized added tokens, matched after normalization (nil if none)
	normalize func(string) string
	pre       []preStep
	prefix    []int // ids the post-processor puts before the text (addSpecial)
	suffix    []int // ... and after it
	idText    []string
	known     []bool

	bos, pad     int
	eos          []int
	chatTemplate string
}

var _ Tokenizer = (*BPE)(nil)

// VocabSize is the largest id + 1 (model vocabulary and added tokens).
func (t *BPE) VocabSize() int { return t.vocabSize }

// BOS is the tokenizer_config.json bos_token (when that file does not name one, and does not set it
// to null, the first token the post-processor adds), -1 if none.
func (t *BPE) BOS() int { return t.bos }

// EOS returns tokenizer_config.json's eos_token first, then the other eos_token_id values of
// generation_config.json in id order (a new slice).
func (t *BPE) EOS() []int { return append([]int(nil), t.eos...) }

// Pad is tokenizer_config.json's pad_token (else generation_config.json's pad_token_id), -1 if none.
func (t *BPE) Pad() int { return t.pad }

// ChatTemplate returns the Jinja chat template of tokenizer_config.json ("" if none). It is not
// executed by this package.
func (t *BPE) ChatTemplate() string { return t.chatTemplate }

// TokenID returns the id of a token spelled as in tokenizer.json (byte-level alphabet, "Ġthe") or the
// content of an added token ("<|eot_id|>").
func (t *BPE) TokenID(token string) (int, bool) {
	if id, ok := t.added[token]; ok {
		return id, true
	}
	id, ok := t.model.vocab[token]
	return id, ok
}

// IsSpecial reports whether id is an added token marked special.
func (t *BPE) IsSpecial(id int) bool { return id >= 0 && id < len(t.special) && t.special[id] }

// TokenText returns the raw text (bytes) that id decodes to, ok false for an unused id.
func (t *BPE) TokenText(id int) (string, bool) {
	if id < 0 || id >= len(t.known) || !t.known[id] {
		return "", false
	}
	return t.idText[id], true
}

// Encode returns the ids of text as HF tokenizers' encode(text, add_special_tokens=addSpecial).ids:
// added tokens are matched first (special ones too, wherever they appear in text), the rest is
// normalized, pre-tokenized and merged. Invalid UTF-8 bytes are encoded byte by byte.
func (t *BPE) Encode(text string, addSpecial bool) []int {
	ids := make([]int, 0, len(text)/3+4)
	if addSpecial {
		ids = append(ids, t.prefix...)
	}
	t.addedRaw.split(text, func(seg segment) {
		if seg.id >= 0 {
			ids = append(ids, seg.id)
			return
		}
		s := seg.text
		if t.normalize != nil {
			s = t.normalize(s)
		}
		if t.addedNorm == nil {
			ids = t.encodePlain(ids, s)
			return
		}
		t.addedNorm.split(s, func(seg segment) {
			if seg.id >= 0 {
				ids = append(ids, seg.id)
			} else {
				ids = t.encodePlain(ids, seg.text)
			}
		})
	})
	if addSpecial {
		ids = append(ids, t.suffix...)
	}
	return ids
}

// encodePlain pre-tokenizes normalized text without added tokens and appends the BPE ids of each piece.
func (t *BPE) encodePlain(ids []int, s string) []int {
	if s == "" {
		return ids
	}
	// The common case (Llama 3, Qwen): a single split step feeding BPE directly.
	if len(t.pre) == 1 && t.pre[0].split {
		emit := func(p string) { ids = t.model.encodePiece(ids, p) }
		runSplit(t.pre[0].pattern, s, emit)
		return ids
	}
	pieces := []string{s}
	for _, st := range t.pre {
		var out []string
		for _, p := range pieces {
			switch {
			case st.prefixSpace:
				if !strings.HasPrefix(p, " ") {
					p = " " + p
				}
				out = append(out, p)
			default:
				runSplit(st.pattern, p, func(q string) { out = append(out, q) })
			}
		}
		pieces = out
	}
	for _, p := range pieces {
		ids = t.model.encodePiece(ids, p)
	}
	return ids
}

func runSplit(p splitPattern, s string, emit func(string)) {
	switch p {
	case patLlama3:
		splitLlama3(s, 3, emit)
	case patQwen2:
		splitLlama3(s, 1, emit)
	case patGPT2:
		splitGPT2(s, emit)
	default:
		panic("tokenizer: unknown split pattern") // parsePreTokenizer only makes the ones above
	}
}

// Decode concatenates the text of ids (the ByteLevel decoder of HF tokenizers); with skipSpecial,
// added tokens marked special are left out; ids outside the vocabulary are skipped. The result holds
// the raw bytes: where ids cut a UTF-8 character (e.g. a prefix of generated ids), the bytes are
// kept as they are rather than replaced by U+FFFD as HF does. As HF tokenizers' decode (and unlike
// transformers with clean_up_tokenization_spaces), no spaces are removed, so Decode(Encode(x)) == x
// for a tokenizer without normalizer.
func (t *BPE) Decode(ids []int, skipSpecial bool) string {
	var b strings.Builder
	for _, id := range ids {
		if id < 0 || id >= t.vocabSize || !t.known[id] || (skipSpecial && t.special[id]) {
			continue
		}
		b.WriteString(t.idText[id])
	}
	return b.String()
}
