package interp

import (
	"unicode"
	"unicode/utf8"
)

// byteOffset converts a position in Unicode code points (as Jupyter counts) into a byte offset
// of s, clamped to [0, len(s)].
func byteOffset(s string, runes int) int {
	if runes <= 0 {
		return 0
	}
	n := 0
	for i := range s {
		if n == runes {
			return i
		}
		n++
	}
	return len(s)
}

// runeOffset converts a byte offset of s into a position in code points.
func runeOffset(s string, b int) int {
	if b > len(s) {
		b = len(s)
	}
	return utf8.RuneCountInString(s[:b])
}

func isIdentRune(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// identBefore returns the start (byte offset) of the identifier characters that end at b.
func identBefore(s string, b int) int {
	for b > 0 {
		r, size := utf8.DecodeLastRuneInString(s[:b])
		if !isIdentRune(r) {
			break
		}
		b -= size
	}
	return b
}

// identAfter returns the end (byte offset) of the identifier characters that start at b.
func identAfter(s string, b int) int {
	for b < len(s) {
		r, size := utf8.DecodeRuneInString(s[b:])
		if !isIdentRune(r) {
			break
		}
		b += size
	}
	return b
}
