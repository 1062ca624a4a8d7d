package model

import "strings"

// Ids of ByteTokenizer: bytes are 0..255, then three special tokens.
const (
	ByteBOS       = 256
	ByteEOS       = 257
	BytePad       = 258
	ByteVocabSize = 259
)

// ByteTokenizer is the tokenizer of TinyRandom (it satisfies tokenizer.Tokenizer): one id per UTF-8 byte, plus <s> (256), </s> (257)
// and <pad> (258). Encode with addSpecial prepends <s>; the literal strings "<s>", "</s>" and
// "<pad>" in text are read as the special tokens. It is exact and reversible, and no substitute for
// a trained vocabulary. Safe for concurrent use.
type ByteTokenizer struct{}

var byteSpecial = []string{ByteBOS - 256: "<s>", ByteEOS - 256: "</s>", BytePad - 256: "<pad>"}

// Encode returns the ids of text (bytes and special tokens); addSpecial prepends BOS.
func (ByteTokenizer) Encode(text string, addSpecial bool) []int {
	var ids []int
	if addSpecial {
		ids = append(ids, ByteBOS)
	}
	for len(text) > 0 {
		matched := false
		for i, s := range byteSpecial {
			if strings.HasPrefix(text, s) {
				ids = append(ids, 256+i)
				text = text[len(s):]
				matched = true
				break
			}
		}
		if !matched {
			ids = append(ids, int(text[0]))
			text = text[1:]
		}
	}
	return ids
}

// Decode returns the text of ids; unknown ids are skipped, special ones too with skipSpecial.
func (ByteTokenizer) Decode(ids []int, skipSpecial bool) string {
	var sb strings.Builder
	for _, id := range ids {
		switch {
		case id >= 0 && id < 256:
			sb.WriteByte(byte(id))
		case id >= 256 && id < ByteVocabSize && !skipSpecial:
			sb.WriteString(byteSpecial[id-256])
		}
	}
	return sb.String()
}

// VocabSize is 259.
func (ByteTokenizer) VocabSize() int { return ByteVocabSize }

// TokenID returns the id of a single byte or special token.
func (ByteTokenizer) TokenID(tok string) (int, bool) {
	for i, s := range byteSpecial {
		if tok == s {
			return 256 + i, true
		}
	}
	if len(tok) == 1 {
		return int(tok[0]), true
	}
	return 0, false
}

// BOS is 256.
func (ByteTokenizer) BOS() int { return ByteBOS }

// EOS is [257].
func (ByteTokenizer) EOS() []int { return []int{ByteEOS} }

// Pad is 258.
func (ByteTokenizer) Pad() int { return BytePad }
