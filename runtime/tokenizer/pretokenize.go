package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// splitPattern names a pre-tokenizer regex implemented here as a hand-written scanner (Go's regexp
// lacks the look-ahead these patterns use).
type splitPattern int

const (
	// patLlama3 is `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// (Llama 3.x, the cl100k family).
	patLlama3 splitPattern = iota
	// patQwen2 is the same with `\p{N}` (one digit per piece) in place of `\p{N}{1,3}` (Qwen2, Qwen2.5, Qwen3).
	patQwen2
	// patGPT2 is `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, the
	// ByteLevel pre-tokenizer's own regex (use_regex true).
	patGPT2
)

// knownPatterns maps the exact regex strings of tokenizer.json Split pre-tokenizers to scanners.
var knownPatterns = map[string]splitPattern{
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`: patLlama3,
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`:      patQwen2,
	`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`:                                          patGPT2,
}

// Character classes of the patterns: \p{L}, \p{N}, \s split into [\r\n] and the rest, and
// everything else (punctuation, symbols, marks, invalid UTF-8 bytes).
const (
	clsOther uint8 = iota
	clsLetter
	clsNumber
	clsSpace   // \s other than \r and \n
	clsNewline // \r or \n
)

var asciiClass [128]uint8

func init() {
	for r := rune(0); r < 128; r++ {
		asciiClass[r] = classOfSlow(r)
	}
}

func classOfSlow(r rune) uint8 {
	switch {
	case r == '\r' || r == '\n':
		return clsNewline
	case unicode.IsSpace(r): // the White_Space property plus \t\n\v\f\r, as \s of the regex engines
		return clsSpace
	case unicode.IsLetter(r):
		return clsLetter
	case unicode.IsNumber(r):
		return clsNumber
	}
	return clsOther
}

// next decodes the rune at s[i] and its class; an invalid byte is one clsOther rune of width 1.
func next(s string, i int) (rune, int, uint8) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1, asciiClass[c]
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && n == 1 {
		return r, 1, clsOther
	}
	return r, n, classOfSlow(r)
}

// classAt returns the class of the rune at s[i], or 255 past the end.
func classAt(s string, i int) uint8 {
	if i >= len(s) {
		return 255
	}
	_, _, c := next(s, i)
	return c
}

// skipClass advances i over runes of class c.
func skipClass(s string, i int, c uint8) int {
	for i < len(s) {
		_, n, cl := next(s, i)
		if cl != c {
			break
		}
		i += n
	}
	return i
}

// contraction returns the byte length of the contraction suffix at s[0:] ('s 't 're 've 'm 'll 'd
// after the apostrophe), 0 if none. Case-insensitive when fold (as (?i:...) in Oniguruma, where
// U+017F LATIN SMALL LETTER LONG S folds to s).
func contraction(s string, fold bool) int {
	lower := func(i int) (byte, int) {
		if i >= len(s) {
			return 0, 0
		}
		c := s[i]
		if fold {
			if 'A' <= c && c <= 'Z' {
				return c + 32, 1
			}
			if c == 0xC5 && i+1 < len(s) && s[i+1] == 0xBF { // ſ
				return 's', 2
			}
		}
		return c, 1
	}
	c0, n0 := lower(0)
	switch c0 {
	case 's', 't', 'm', 'd':
		return n0
	case 'r', 'v', 'l':
		c1, n1 := lower(n0)
		want := byte('e')
		if c0 == 'l' {
			want = 'l'
		}
		if c1 == want {
			return n0 + n1
		}
	}
	return 0
}

// splitLlama3 cuts s into the pieces the regex patLlama3 (maxDigits 3) or patQwen2 (maxDigits 1)
// finds with leftmost-first alternation and backtracking, calling emit for each in order. The
// pieces cover s exactly.
func splitLlama3(s string, maxDigits int, emit func(string)) {
	i := 0
	for i < len(s) {
		r, n, c := next(s, i)
		// 1. (?i:'s|'t|'re|'ve|'m|'ll|'d)
		if r == '\'' {
			if l := contraction(s[i+1:], true); l > 0 {
				emit(s[i : i+1+l])
				i += 1 + l
				continue
			}
		}
		// 2. [^\r\n\p{L}\p{N}]?\p{L}+
		if c == clsLetter {
			j := skipClass(s, i+n, clsLetter)
			emit(s[i:j])
			i = j
			continue
		}
		if (c == clsOther || c == clsSpace) && classAt(s, i+n) == clsLetter {
			j := skipClass(s, i+n, clsLetter)
			emit(s[i:j])
			i = j
			continue
		}
		// 3. \p{N}{1,maxDigits}
		if c == clsNumber {
			j := i + n
			for k := 1; k < maxDigits && j < len(s); k++ {
				_, n2, c2 := next(s, j)
				if c2 != clsNumber {
					break
				}
				j += n2
			}
			emit(s[i:j])
			i = j
			continue
		}
		// 4. ' '?[^\s\p{L}\p{N}]+[\r\n]*
		if c == clsOther || (r == ' ' && classAt(s, i+1) == clsOther) {
			j := i
			if r == ' ' {
				j++
			}
			j = skipClass(s, j, clsOther)
			for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
				j++
			}
			emit(s[i:j])
			i = j
			continue
		}
		// Whitespace from here: scan the run, noting the end of its last \r/\n and its last rune.
		j, lastNL, lastStart := i, -1, i
		for j < len(s) {
			_, n2, c2 := next(s, j)
			if c2 != clsSpace && c2 != clsNewline {
				break
			}
			if c2 == clsNewline {
				lastNL = j + n2
			}
			lastStart = j
			j += n2
		}
		switch {
		case lastNL >= 0: // 5. \s*[\r\n]+
			emit(s[i:lastNL])
			i = lastNL
		case j == len(s): // 6. \s+(?!\S) at the end
			emit(s[i:j])
			i = j
		case lastStart > i: // 6. \s+(?!\S): all but the last whitespace rune
			emit(s[i:lastStart])
			i = lastStart
		default: // 7. \s+
			emit(s[i:j])
			i = j
		}
	}
}

// splitGPT2 cuts s as the regex patGPT2 does.
func splitGPT2(s string, emit func(string)) {
	i := 0
	for i < len(s) {
		r, n, c := next(s, i)
		if r == '\'' {
			if l := contraction(s[i+1:], false); l > 0 {
				emit(s[i : i+1+l])
				i += 1 + l
				continue
			}
		}
		start := i
		if r == ' ' && i+1 < len(s) {
			if c2 := classAt(s, i+1); c2 == clsLetter || c2 == clsNumber || c2 == clsOther {
				i++
				_, n, c = next(s, i)
			}
		}
		if c == clsLetter || c == clsNumber || c == clsOther {
			j := skipClass(s, i+n, c)
			emit(s[start:j])
			i = j
			continue
		}
		j, lastStart := i, i
		for j < len(s) {
			_, n2, c2 := next(s, j)
			if c2 != clsSpace && c2 != clsNewline {
				break
			}
			lastStart = j
			j += n2
		}
		if j < len(s) && lastStart > i {
			j = lastStart
		}
		emit(s[i:j])
		i = j
	}
}
