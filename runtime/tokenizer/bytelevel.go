package tokenizer

import "unicode/utf8"

// The byte-level alphabet of GPT-2 (used by Llama 3, Qwen and most tokenizer.json BPE files): every
// byte maps to one printable rune, the printable Latin-1 bytes to themselves and the rest to
// U+0100 and up, in byte order. Tokens in the vocabulary are spelled in this alphabet (a space is 'Ġ').
var (
	byteToRune [256]rune
	runeToByte = map[rune]byte{}
)

func init() {
	n := 0
	for b := 0; b < 256; b++ {
		if ('!' <= b && b <= '~') || (0xA1 <= b && b <= 0xAC) || (0xAE <= b && b <= 0xFF) {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = rune(256 + n)
			n++
		}
		runeToByte[byteToRune[b]] = byte(b)
	}
}

// byteLevelEncode spells raw bytes in the byte-level alphabet.
func byteLevelEncode(raw string) string {
	buf := make([]byte, 0, 2*len(raw))
	for i := 0; i < len(raw); i++ {
		buf = utf8.AppendRune(buf, byteToRune[raw[i]])
	}
	return string(buf)
}

// byteLevelDecode maps a token spelled in the byte-level alphabet back to raw bytes. As in the
// ByteLevel decoder of HF tokenizers, a token holding any rune outside the alphabet is returned as
// is (ok false).
func byteLevelDecode(tok string) (raw string, ok bool) {
	buf := make([]byte, 0, len(tok))
	for _, r := range tok {
		b, in := runeToByte[r]
		if !in {
			return tok, false
		}
		buf = append(buf, b)
	}
	return string(buf), true
}
