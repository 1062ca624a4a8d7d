package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/finlora/finlora/runtime/gguf"
)

// LoadGGUF builds the tokenizer described by the metadata of the GGUF file at path (see FromGGUF).
// The file is closed before returning; the tokenizer keeps no reference to it.
func LoadGGUF(path string) (Tokenizer, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	defer f.Close()
	t, err := FromGGUF(f.Metadata())
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return t, nil
}

// FromGGUF builds a tokenizer from GGUF metadata (tokenizer.ggml.*), as transformers converts it:
//
//   - model "llama": a *SentencePiece (tokens, scores, token_type; bos/eos/unknown/padding ids;
//     add_bos_token (default true), add_eos_token, add_space_prefix). For architectures gemma,
//     gemma2 and gemma3, merges are ranked by token position and whitespace tokens are respelled
//     with ▁ (see SentencePieceConfig), and <end_of_turn> is an extra EOS.
//   - model "gpt2": a *BPE (byte-level, from tokenizer.ggml.merges), built by handing Load an
//     equivalent tokenizer.json: control tokens are special added tokens, user-defined ones plain
//     added tokens; the pre-tokenizer follows tokenizer.ggml.pre ("llama-bpe"/"llama3"/... the
//     Llama 3 split, "qwen2"/... the Qwen2 split, anything else ByteLevel's GPT-2 regex);
//     add_bos_token (default false) adds BOS.
//
// Other models (t5, bert, rwkv...) are an error naming the model.
func FromGGUF(md *gguf.Metadata) (Tokenizer, error) {
	model, err := md.String("tokenizer.ggml.model")
	if err != nil {
		return nil, err
	}
	tokens, err := md.Strings("tokenizer.ggml.tokens")
	if err != nil {
		return nil, err
	}
	var types []int32
	if md.Has("tokenizer.ggml.token_type") {
		ts, err := md.Ints("tokenizer.ggml.token_type")
		if err != nil {
			return nil, err
		}
		if len(ts) != len(tokens) {
			return nil, fmt.Errorf("tokenizer.ggml.token_type has %d entries for %d tokens", len(ts), len(tokens))
		}
		types = make([]int32, len(ts))
		for i, v := range ts {
			types[i] = int32(v)
		}
	}
	id := func(key string) (int, error) {
		if !md.Has(key) {
			return -1, nil
		}
		v, err := md.Uint(key)
		if err != nil {
			return -1, err
		}
		if v >= uint64(len(tokens)) {
			return -1, fmt.Errorf("%s = %d is outside the vocabulary of %d tokens", key, v, len(tokens))
		}
		return int(v), nil
	}
	flag := func(key string, def bool) (bool, error) {
		if !md.Has(key) {
			return def, nil
		}
		return md.Bool(key)
	}
	var ids [4]int
	for i, k := range []string{"bos_token_id", "eos_token_id", "unknown_token_id", "padding_token_id"} {
		if ids[i], err = id("tokenizer.ggml." + k); err != nil {
			return nil, err
		}
	}
	arch, _ := md.Arch()
	switch model {
	case "llama":
		var scores []float32
		if md.Has("tokenizer.ggml.scores") {
			if scores, err = md.Float32s("tokenizer.ggml.scores"); err != nil {
				return nil, err
			}
		}
		cfg := SentencePieceConfig{Tokens: tokens, Scores: scores, Types: types,
			BOS: ids[0], EOS: ids[1], Unknown: ids[2], Pad: ids[3]}
		if scores == nil {
			scores = make([]float32, len(tokens)) // no scores: every merge ties, position decides
			cfg.Scores = scores
		}
		if cfg.AddBOS, err = flag("tokenizer.ggml.add_bos_token", true); err != nil {
			return nil, err
		}
		if cfg.AddEOS, err = flag("tokenizer.ggml.add_eos_token", false); err != nil {
			return nil, err
		}
		if cfg.AddSpacePrefix, err = flag("tokenizer.ggml.add_space_prefix", true); err != nil {
			return nil, err
		}
		switch arch {
		case "gemma", "gemma2", "gemma3":
			cfg.RankByID, cfg.RespellSpaces = true, true
			for i, tok := range tokens {
				if tok == "<end_of_turn>" && i != cfg.EOS {
					cfg.ExtraEOS = append(cfg.ExtraEOS, i)
				}
			}
		}
		return NewSentencePiece(cfg)
	case "gpt2":
		return byteLevelFromGGUF(md, tokens, types, ids)
	}
	return nil, fmt.Errorf("tokenizer.ggml.model %q is not supported (llama, gpt2)", model)
}

// ggufPreSplits maps tokenizer.ggml.pre names to the Split regexes Load knows (as transformers'
// GGUF_PRE_TOKENIZER_SPLITS does); names not listed use ByteLevel's own GPT-2 regex.
var ggufPreSplits = map[string]string{
	"llama3": splitRegexLlama3, "llama-v3": splitRegexLlama3, "llama-bpe": splitRegexLlama3,
	"falcon3": splitRegexLlama3, "pixtral": splitRegexLlama3, "dbrx": splitRegexLlama3,
	"smaug-bpe": splitRegexLlama3,
	"qwen2":     splitRegexQwen2, "deepseek-r1-qwen": splitRegexQwen2,
}

const (
	splitRegexLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	splitRegexQwen2  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// byteLevelSpelling returns tok as the byte-level alphabet spells it: unchanged if every rune is in
// the alphabet, else the alphabet's spelling of its UTF-8 bytes.
func byteLevelSpelling(tok string) string {
	if inByteAlphabet(tok) {
		return tok
	}
	return byteLevelEncode(tok)
}

// inByteAlphabet reports whether every rune of tok is in the byte-level alphabet.
func inByteAlphabet(tok string) bool {
	for _, r := range tok {
		if _, ok := runeToByte[r]; !ok {
			return false
		}
	}
	return true
}

// byteLevelFromGGUF writes the tokenizer.json and tokenizer_config.json that transformers would
// build from the metadata and loads them with Load.
func byteLevelFromGGUF(md *gguf.Metadata, tokens []string, types []int32, ids [4]int) (Tokenizer, error) {
	merges, err := md.Strings("tokenizer.ggml.merges")
	if err != nil {
		return nil, err
	}
	vocab := make(map[string]int, len(tokens))
	for i, tok := range tokens {
		vocab[byteLevelSpelling(tok)] = i
	}
	pairs := make([][2]string, 0, len(merges))
	for i, m := range merges {
		a, b, ok := strings.Cut(m, " ")
		if !ok {
			return nil, fmt.Errorf("tokenizer.ggml.merges[%d] %q is not two tokens separated by a space", i, m)
		}
		pairs = append(pairs, [2]string{byteLevelSpelling(a), byteLevelSpelling(b)})
	}
	var addedTokens []addedToken
	for i, tok := range tokens {
		if types == nil {
			break
		}
		switch types[i] {
		case TokenTypeControl:
			// A control token outside the byte alphabet is a llama.cpp mislabel; transformers skips it.
			if tok != "" && inByteAlphabet(tok) {
				addedTokens = append(addedTokens, addedToken{ID: i, Content: tok, Special: true})
			}
		case TokenTypeUserDefined:
			if j, ok := vocab[tok]; ok && tok != "" {
				addedTokens = append(addedTokens, addedToken{ID: j, Content: tok})
			}
		}
	}
	pre, _ := md.String("tokenizer.ggml.pre")
	var preTok any = map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}
	if re, ok := ggufPreSplits[pre]; ok {
		preTok = map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": re}, "behavior": "Isolated", "invert": false},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false},
		}}
	}
	addBOS := false
	if md.Has("tokenizer.ggml.add_bos_token") {
		if addBOS, err = md.Bool("tokenizer.ggml.add_bos_token"); err != nil {
			return nil, err
		}
	}
	single := []any{map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}}
	special := map[string]any{}
	if addBOS && ids[0] >= 0 {
		b := tokens[ids[0]]
		single = append([]any{map[string]any{"SpecialToken": map[string]any{"id": b, "type_id": 0}}}, single...)
		special[b] = map[string]any{"id": b, "ids": []int{ids[0]}, "tokens": []string{b}}
	}
	tj := map[string]any{
		"added_tokens":  addedTokens,
		"normalizer":    nil,
		"pre_tokenizer": preTok,
		"post_processor": map[string]any{"type": "TemplateProcessing", "single": single,
			"special_tokens": special},
		"decoder": map[string]any{"type": "ByteLevel", "add_prefix_space": true, "use_regex": true},
		"model": map[string]any{"type": "BPE", "vocab": vocab, "merges": pairs, "byte_fallback": false,
			"ignore_merges": false},
	}
	cfg := map[string]any{}
	for i, k := range []string{"bos_token", "eos_token", "", "pad_token"} {
		if k != "" && ids[i] >= 0 {
			cfg[k] = tokens[ids[i]]
		}
	}
	tjb, err := json.Marshal(tj)
	if err != nil {
		return nil, err
	}
	cfgb, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	t, err := Load(tjb, cfgb, nil)
	if err != nil {
		return nil, fmt.Errorf("byte-level vocabulary from GGUF: %w", err)
	}
	return t, nil
}
