package tokenizer

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// addedToken is an entry of tokenizer.json's added_tokens: matched in the text before any
// pre-tokenization, as HF tokenizers does.
type addedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// addedMatcher finds added tokens in text, leftmost then longest (as the Aho-Corasick automaton of
// HF tokenizers with MatchKind::LeftmostLongest).
type addedMatcher struct {
	tokens  []addedToken
	byFirst [256][]int32 // indices into tokens by first byte, longest content first
	first   string       // the distinct first bytes, for a fast scan
}

func newAddedMatcher(tokens []addedToken) *addedMatcher {
	m := &addedMatcher{tokens: tokens}
	for i, t := range tokens {
		if t.Content == "" {
			continue
		}
		b := t.Content[0]
		m.byFirst[b] = append(m.byFirst[b], int32(i))
	}
	for b := range m.byFirst {
		l := m.byFirst[b]
		if len(l) > 0 {
			m.first += string([]byte{byte(b)})
		}
		sort.SliceStable(l, func(i, j int) bool { return len(tokens[l[i]].Content) > len(tokens[l[j]].Content) })
	}
	return m
}

// find returns the leftmost-longest match at or after from: its span and token index, or ok false.
func (m *addedMatcher) find(s string, from int) (start, end, tok int, ok bool) {
	for i := from; i < len(s); i++ {
		if len(m.first) == 1 { // e.g. every Llama 3 added token starts with '<'
			j := strings.IndexByte(s[i:], m.first[0])
			if j < 0 {
				break
			}
			i += j
		}
		for _, k := range m.byFirst[s[i]] {
			if c := m.tokens[k].Content; strings.HasPrefix(s[i:], c) {
				return i, i + len(c), int(k), true
			}
		}
	}
	return 0, 0, 0, false
}

// segment is a span of text that is either an added token (id >= 0) or plain text (id -1).
type segment struct {
	text string
	id   int
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }

// split cuts s into plain and added-token segments with the rules of HF tokenizers'
// AddedVocabulary::find_matches: a single_word token only matches between non-word characters, lstrip
// and rstrip tokens absorb the whitespace beside them.
func (m *addedMatcher) split(s string, emit func(segment)) {
	if m == nil || len(m.tokens) == 0 {
		emit(segment{s, -1})
		return
	}
	startOffset := 0
	for pos := 0; pos < len(s); {
		start, stop, k, ok := m.find(s, pos)
		if !ok {
			break
		}
		pos = stop // the automaton resumes after the match, whatever stripping does
		t := &m.tokens[k]
		if t.SingleWord {
			r1, _ := utf8.DecodeLastRuneInString(s[:start])
			r2, _ := utf8.DecodeRuneInString(s[stop:])
			startSpace := start == 0 || !isWordRune(r1)
			stopSpace := stop == len(s) || !isWordRune(r2)
			if !startSpace || !stopSpace {
				continue
			}
		}
		if t.LStrip {
			ns := len(strings.TrimRightFunc(s[:start], unicode.IsSpace))
			start = max(ns, startOffset)
		}
		if t.RStrip {
			stop = len(s) - len(strings.TrimLeftFunc(s[stop:], unicode.IsSpace))
		}
		if startOffset < start {
			emit(segment{s[startOffset:start], -1})
		}
		emit(segment{s[start:stop], t.ID})
		startOffset = stop
	}
	if startOffset < len(s) {
		emit(segment{s[startOffset:], -1})
	}
}
