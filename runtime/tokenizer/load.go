package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// tokenizerFile is the part of HF tokenizers' tokenizer.json this package reads.
type tokenizerFile struct {
	AddedTokens   []addedToken    `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         struct {
		Type                    string         `json:"type"`
		Vocab                   map[string]int `json:"vocab"`
		Merges                  []mergeRule    `json:"merges"`
		UnkToken                *string        `json:"unk_token"`
		ContinuingSubwordPrefix *string        `json:"continuing_subword_prefix"`
		EndOfWordSuffix         *string        `json:"end_of_word_suffix"`
		ByteFallback            bool           `json:"byte_fallback"`
		IgnoreMerges            bool           `json:"ignore_merges"`
	} `json:"model"`
}

// mergeRule is one merge: "a b" (older files) or ["a", "b"] (tokenizers >= 0.20).
type mergeRule [2]string

func (m *mergeRule) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		a, c, ok := strings.Cut(s, " ")
		if !ok || strings.Contains(c, " ") {
			return fmt.Errorf("merge %q is not two tokens separated by one space", s)
		}
		*m = mergeRule{a, c}
		return nil
	}
	var pair []string
	if err := json.Unmarshal(b, &pair); err != nil {
		return err
	}
	if len(pair) != 2 {
		return fmt.Errorf("merge %s does not hold two tokens", b)
	}
	*m = mergeRule{pair[0], pair[1]}
	return nil
}

// component is a normalizer, pre-tokenizer, post-processor or decoder entry: its type and fields.
type component struct {
	Type          string            `json:"type"`
	Normalizers   []json.RawMessage `json:"normalizers"`
	Pretokenizers []json.RawMessage `json:"pretokenizers"`
	Processors    []json.RawMessage `json:"processors"`
	Decoders      []json.RawMessage `json:"decoders"`
	Pattern       struct {
		Regex  *string `json:"Regex"`
		String *string `json:"String"`
	} `json:"pattern"`
	Behavior       string `json:"behavior"`
	Invert         bool   `json:"invert"`
	AddPrefixSpace bool   `json:"add_prefix_space"`
	UseRegex       *bool  `json:"use_regex"`
	Single         []struct {
		SpecialToken *struct {
			ID string `json:"id"`
		} `json:"SpecialToken"`
		Sequence *struct {
			ID string `json:"id"`
		} `json:"Sequence"`
	} `json:"single"`
	SpecialTokens map[string]struct {
		IDs []int `json:"ids"`
	} `json:"special_tokens"`
}

// preStep is one effective pre-tokenization step.
type preStep struct {
	split       bool         // a regex split (pattern) ...
	pattern     splitPattern //
	prefixSpace bool         // ... or ByteLevel's add_prefix_space
}

// LoadDir loads the byte-level BPE tokenizer of a Hugging Face model directory: tokenizer.json,
// plus tokenizer_config.json (bos/eos/pad tokens, chat template) and generation_config.json
// (eos_token_id) when present.
func LoadDir(dir string) (*BPE, error) {
	tj, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return nil, fmt.Errorf("tokenizer: load %s: %w", dir, err)
	}
	cfg, err := readOptional(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		return nil, err
	}
	gen, err := readOptional(filepath.Join(dir, "generation_config.json"))
	if err != nil {
		return nil, err
	}
	t, err := Load(tj, cfg, gen)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: load %s: %w", dir, err)
	}
	return t, nil
}

func readOptional(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return b, nil
}

// Load builds a tokenizer from the contents of tokenizer.json and, optionally (nil to skip),
// tokenizer_config.json and generation_config.json. Supported: model BPE over the byte-level
// alphabet (merges as strings or pairs, ignore_merges, byte_fallback, unk_token); normalizer null,
// NFC, NFKC, NFD, NFKD or a Sequence of them; pre-tokenizer Split with the Llama 3, Qwen2 or GPT-2
// regex (behavior Isolated) and ByteLevel, alone or in a Sequence; post-processor ByteLevel and
// TemplateProcessing; decoder ByteLevel. Anything else is an error naming it.
func Load(tokenizerJSON, configJSON, generationJSON []byte) (*BPE, error) {
	var tj tokenizerFile
	if err := json.Unmarshal(tokenizerJSON, &tj); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	if bytes.Contains(tj.PreTokenizer, []byte(`"Metaspace"`)) || bytes.Contains(tj.Normalizer, []byte(`"Prepend"`)) ||
		bytes.Contains(tj.Decoder, []byte(`"ByteFallback"`)) {
		return nil, fmt.Errorf("tokenizer.json: a SentencePiece-style vocabulary (Metaspace/▁, byte fallback: Llama 2, " +
			"Mistral v0.1-v0.3) is not supported yet by this byte-level BPE loader (GGUF files of such models load with LoadGGUF)")
	}
	if tj.Model.Type != "BPE" && tj.Model.Type != "" {
		return nil, fmt.Errorf("tokenizer.json: model type %q not supported (only BPE)", tj.Model.Type)
	}
	if p := tj.Model.ContinuingSubwordPrefix; p != nil && *p != "" {
		return nil, fmt.Errorf("tokenizer.json: continuing_subword_prefix %q not supported", *p)
	}
	if p := tj.Model.EndOfWordSuffix; p != nil && *p != "" {
		return nil, fmt.Errorf("tokenizer.json: end_of_word_suffix %q not supported", *p)
	}
	t := &BPE{model: &bpeModel{
		vocab:        tj.Model.Vocab,
		rawVocab:     make(map[string]int32, len(tj.Model.Vocab)),
		merges:       make(map[uint64]merge, len(tj.Model.Merges)),
		ignoreMerges: tj.Model.IgnoreMerges,
		unkID:        -1,
	}, bos: -1, pad: -1, added: map[string]int{}}
	m := t.model
	if m.vocab == nil {
		return nil, fmt.Errorf("tokenizer.json: model has no vocab")
	}
	maxID := -1
	for tok, id := range m.vocab {
		if id < 0 {
			return nil, fmt.Errorf("tokenizer.json: token %q has negative id %d", tok, id)
		}
		if raw, ok := byteLevelDecode(tok); ok {
			m.rawVocab[raw] = int32(id)
		}
		maxID = max(maxID, id)
	}
	for _, a := range tj.AddedTokens {
		if a.ID < 0 {
			return nil, fmt.Errorf("tokenizer.json: added token %q has negative id %d", a.Content, a.ID)
		}
		maxID = max(maxID, a.ID)
	}
	t.vocabSize = maxID + 1
	for b := 0; b < 256; b++ {
		m.byteID[b] = -1
		if id, ok := m.vocab[string(byteToRune[b])]; ok {
			m.byteID[b] = int32(id)
		}
		m.byteFallback[b] = -1
		if tj.Model.ByteFallback {
			if id, ok := m.vocab[fmt.Sprintf("<0x%02X>", b)]; ok {
				m.byteFallback[b] = int32(id)
			}
		}
	}
	if u := tj.Model.UnkToken; u != nil {
		if id, ok := m.vocab[*u]; ok {
			m.unkID = int32(id)
		}
	}
	for rank, mr := range tj.Model.Merges {
		a, ok1 := m.vocab[mr[0]]
		b, ok2 := m.vocab[mr[1]]
		c, ok3 := m.vocab[mr[0]+mr[1]]
		if !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("tokenizer.json: merge %d (%q %q) uses a token missing from the vocab", rank, mr[0], mr[1])
		}
		k := pairKey(int32(a), int32(b))
		if _, dup := m.merges[k]; !dup { // the first (lowest-rank) rule wins
			m.merges[k] = merge{rank: int32(rank), id: int32(c)}
		}
	}

	// Added tokens: non-normalized ones are matched in the raw text, normalized ones after normalization.
	var raw, normed []addedToken
	t.special = make([]bool, t.vocabSize)
	for _, a := range tj.AddedTokens {
		t.added[a.Content] = a.ID
		if a.Special {
			t.special[a.ID] = true
		}
		if a.Normalized {
			normed = append(normed, a)
		} else {
			raw = append(raw, a)
		}
	}
	t.addedRaw = newAddedMatcher(raw)
	if len(normed) > 0 {
		t.addedNorm = newAddedMatcher(normed)
	}

	var err error
	if t.normalize, err = parseNormalizer(tj.Normalizer); err != nil {
		return nil, err
	}
	if t.pre, err = parsePreTokenizer(tj.PreTokenizer); err != nil {
		return nil, err
	}
	if err := t.parsePostProcessor(tj.PostProcessor); err != nil {
		return nil, err
	}
	if err := checkDecoder(tj.Decoder); err != nil {
		return nil, err
	}

	// Text of every id for decoding.
	t.idText = make([]string, t.vocabSize)
	t.known = make([]bool, t.vocabSize)
	for tok, id := range m.vocab {
		t.idText[id], _ = byteLevelDecode(tok)
		t.known[id] = true
	}
	for _, a := range tj.AddedTokens {
		t.idText[a.ID], _ = byteLevelDecode(a.Content)
		t.known[a.ID] = true
	}
	if err := t.applyConfig(configJSON, generationJSON); err != nil {
		return nil, err
	}
	return t, nil
}

func decodeComponent(raw json.RawMessage) (*component, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// walkSequence decodes each member of a Sequence component (normalizers, pretokenizers or
// processors) and calls walk on it, skipping null members; the first error stops it.
func walkSequence(members []json.RawMessage, walk func(*component) error) error {
	for _, r := range members {
		sub, err := decodeComponent(r)
		if err != nil {
			return err
		}
		if sub != nil {
			if err := walk(sub); err != nil {
				return err
			}
		}
	}
	return nil
}

func parseNormalizer(raw json.RawMessage) (func(string) string, error) {
	c, err := decodeComponent(raw)
	if err != nil || c == nil {
		return nil, err
	}
	var forms []norm.Form
	var walk func(c *component) error
	walk = func(c *component) error {
		switch c.Type {
		case "NFC":
			forms = append(forms, norm.NFC)
		case "NFKC":
			forms = append(forms, norm.NFKC)
		case "NFD":
			forms = append(forms, norm.NFD)
		case "NFKD":
			forms = append(forms, norm.NFKD)
		case "Sequence":
			if err := walkSequence(c.Normalizers, walk); err != nil {
				return err
			}
		default:
			return fmt.Errorf("tokenizer.json: normalizer %q not supported (NFC, NFKC, NFD, NFKD, Sequence)", c.Type)
		}
		return nil
	}
	if err := walk(c); err != nil {
		return nil, err
	}
	if len(forms) == 0 {
		return nil, nil
	}
	return func(s string) string {
		for _, f := range forms {
			s = f.String(s)
		}
		return s
	}, nil
}

func parsePreTokenizer(raw json.RawMessage) ([]preStep, error) {
	c, err := decodeComponent(raw)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.json: pre_tokenizer: %w", err)
	}
	if c == nil {
		return nil, fmt.Errorf("tokenizer.json: no pre_tokenizer; a ByteLevel one is required")
	}
	var steps []preStep
	byteLevel := false
	var walk func(c *component) error
	walk = func(c *component) error {
		switch c.Type {
		case "Sequence":
			if err := walkSequence(c.Pretokenizers, walk); err != nil {
				return err
			}
		case "Split":
			if c.Pattern.Regex == nil {
				return fmt.Errorf("Split pre-tokenizer without a Regex pattern not supported")
			}
			p, ok := knownPatterns[*c.Pattern.Regex]
			if !ok {
				return fmt.Errorf("Split pattern %q not supported (Llama 3, Qwen2 and GPT-2 patterns are)", *c.Pattern.Regex)
			}
			if c.Behavior != "Isolated" || c.Invert {
				return fmt.Errorf("Split behavior %q invert %v not supported (Isolated, not inverted)", c.Behavior, c.Invert)
			}
			steps = append(steps, preStep{split: true, pattern: p})
		case "ByteLevel":
			byteLevel = true
			if c.AddPrefixSpace {
				steps = append(steps, preStep{prefixSpace: true})
			}
			if c.UseRegex == nil || *c.UseRegex {
				steps = append(steps, preStep{split: true, pattern: patGPT2})
			}
		default:
			return fmt.Errorf("pre-tokenizer %q not supported (Sequence, Split, ByteLevel)", c.Type)
		}
		return nil
	}
	if err := walk(c); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	if !byteLevel {
		return nil, fmt.Errorf("tokenizer.json: pre_tokenizer has no ByteLevel step; only byte-level BPE is supported")
	}
	return steps, nil
}

func (t *BPE) parsePostProcessor(raw json.RawMessage) error {
	c, err := decodeComponent(raw)
	if err != nil {
		return fmt.Errorf("tokenizer.json: post_processor: %w", err)
	}
	if c == nil {
		return nil
	}
	var walk func(c *component) error
	walk = func(c *component) error {
		switch c.Type {
		case "ByteLevel": // offsets only
		case "Sequence":
			if err := walkSequence(c.Processors, walk); err != nil {
				return err
			}
		case "TemplateProcessing":
			t.prefix, t.suffix = nil, nil
			seenA := false
			for _, item := range c.Single {
				switch {
				case item.Sequence != nil:
					seenA = true
				case item.SpecialToken != nil:
					st, ok := c.SpecialTokens[item.SpecialToken.ID]
					if !ok {
						return fmt.Errorf("TemplateProcessing: special token %q not in special_tokens", item.SpecialToken.ID)
					}
					if seenA {
						t.suffix = append(t.suffix, st.IDs...)
					} else {
						t.prefix = append(t.prefix, st.IDs...)
					}
				}
			}
		default:
			return fmt.Errorf("post-processor %q not supported (ByteLevel, TemplateProcessing, Sequence)", c.Type)
		}
		return nil
	}
	if err := walk(c); err != nil {
		return fmt.Errorf("tokenizer.json: %w", err)
	}
	for _, id := range append(append([]int(nil), t.prefix...), t.suffix...) {
		if id < 0 || id >= t.vocabSize {
			return fmt.Errorf("tokenizer.json: post-processor id %d outside the vocabulary", id)
		}
	}
	return nil
}

func checkDecoder(raw json.RawMessage) error {
	c, err := decodeComponent(raw)
	if err != nil {
		return fmt.Errorf("tokenizer.json: decoder: %w", err)
	}
	if c == nil || c.Type != "ByteLevel" {
		typ := "null"
		if c != nil {
			typ = c.Type
		}
		return fmt.Errorf("tokenizer.json: decoder %q not supported (ByteLevel)", typ)
	}
	return nil
}

// tokenRef is a token in tokenizer_config.json: a string or an AddedToken object with "content".
type tokenRef struct{ content string }

func (r *tokenRef) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &r.content)
	}
	var obj struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return err
	}
	r.content = obj.Content
	return nil
}

// idList is an int or a list of ints (generation_config.json's eos_token_id).
type idList []int

func (l *idList) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '[' {
		return json.Unmarshal(b, (*[]int)(l))
	}
	var one int
	if err := json.Unmarshal(b, &one); err != nil {
		return err
	}
	*l = idList{one}
	return nil
}

func (t *BPE) applyConfig(configJSON, generationJSON []byte) error {
	if len(configJSON) > 0 {
		var cfg struct {
			BOS          tokenRef `json:"bos_token"`
			EOS          tokenRef `json:"eos_token"`
			Pad          tokenRef `json:"pad_token"`
			ChatTemplate any      `json:"chat_template"`
		}
		if err := json.Unmarshal(configJSON, &cfg); err != nil {
			return fmt.Errorf("tokenizer_config.json: %w", err)
		}
		lookup := func(field string, r tokenRef) (int, error) {
			if r.content == "" {
				return -1, nil
			}
			id, ok := t.TokenID(r.content)
			if !ok {
				return -1, fmt.Errorf("tokenizer_config.json: %s %q is not a token", field, r.content)
			}
			return id, nil
		}
		var err error
		if t.bos, err = lookup("bos_token", cfg.BOS); err != nil {
			return err
		}
		eos, err := lookup("eos_token", cfg.EOS)
		if err != nil {
			return err
		}
		if eos >= 0 {
			t.eos = append(t.eos, eos)
		}
		if t.pad, err = lookup("pad_token", cfg.Pad); err != nil {
			return err
		}
		switch ct := cfg.ChatTemplate.(type) {
		case string:
			t.chatTemplate = ct
		case []any: // [{"name": "default", "template": "..."}, ...]
			for _, e := range ct {
				if m, ok := e.(map[string]any); ok && m["name"] == "default" {
					t.chatTemplate, _ = m["template"].(string)
				}
			}
		}
	}
	if t.bos < 0 && len(t.prefix) > 0 && !explicitNullBOS(configJSON) {
		t.bos = t.prefix[0] // no bos_token configured: the token the post-processor puts first
	}
	if len(generationJSON) > 0 {
		var gen struct {
			EOS idList `json:"eos_token_id"`
			Pad *int   `json:"pad_token_id"`
		}
		if err := json.Unmarshal(generationJSON, &gen); err != nil {
			return fmt.Errorf("generation_config.json: %w", err)
		}
		for _, id := range gen.EOS {
			if id >= 0 && id < t.vocabSize && !containsInt(t.eos, id) {
				t.eos = append(t.eos, id)
			}
		}
		if t.pad < 0 && gen.Pad != nil && *gen.Pad >= 0 && *gen.Pad < t.vocabSize {
			t.pad = *gen.Pad
		}
	}
	sort.Ints(t.eos[min(1, len(t.eos)):]) // the configured eos first, the others in id order
	return nil
}

func containsInt(l []int, v int) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// explicitNullBOS reports whether tokenizer_config.json says "bos_token": null (as Qwen's does).
func explicitNullBOS(configJSON []byte) bool {
	var cfg map[string]json.RawMessage
	if json.Unmarshal(configJSON, &cfg) != nil {
		return false
	}
	v, ok := cfg["bos_token"]
	return ok && string(bytes.TrimSpace(v)) == "null"
}
