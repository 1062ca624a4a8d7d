package tokenizer

import (
	"container/heap"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Token types of a GGUF vocabulary (tokenizer.ggml.token_type, llama.cpp's llama_token_type).
const (
	TokenTypeUndefined   = 0
	TokenTypeNormal      = 1
	TokenTypeUnknown     = 2
	TokenTypeControl     = 3
	TokenTypeUserDefined = 4
	TokenTypeUnused      = 5
	TokenTypeByte        = 6
)

// spaceMarker is SentencePiece's whitespace marker ▁ (U+2581), which stands for a space in tokens.
const spaceMarker = "\u2581"

// SentencePieceConfig describes a SentencePiece-style BPE vocabulary, as GGUF files with
// tokenizer.ggml.model "llama" carry it (Gemma, Llama 2, Mistral v0.1...). Tokens, Scores and Types
// are indexed by id and must have the same length (Types may be nil: all normal).
type SentencePieceConfig struct {
	Tokens []string
	Scores []float32
	Types  []int32
	// BOS, EOS, Unknown and Pad are token ids, -1 for none. ExtraEOS are more ids that end
	// generation (e.g. Gemma's <end_of_turn>).
	BOS, EOS, Unknown, Pad int
	ExtraEOS               []int
	// AddBOS and AddEOS: Encode with addSpecial puts BOS before / EOS after the text.
	AddBOS, AddEOS bool
	// AddSpacePrefix puts ▁ before the text (SentencePiece's add_dummy_prefix).
	AddSpacePrefix bool
	// RankByID orders merges by the position of the merged token in the vocabulary (lower id merges
	// first) instead of by its score. Gemma files need it: their scores do not follow the merge order.
	RankByID bool
	// RespellSpaces renames tokens made only of whitespace that contain a space ("  ") to runs of ▁
	// of the same length, the spelling the text has after the space → ▁ normalization (Gemma files
	// store those tokens with real spaces).
	RespellSpaces bool
}

// SentencePiece is the BPE-with-scores tokenizer of SentencePiece vocabularies, matching HF
// tokenizers' conversion of such a GGUF vocabulary (transformers' GGUF tokenizer builders):
//
//   - control tokens (type 3) are special added tokens and user-defined ones (type 4) plain added
//     tokens: both are cut out of the text first, leftmost-longest, wherever they appear;
//   - in the rest, spaces become ▁ (after an optional ▁ prefix), and each piece of text is split
//     into characters that are merged pairwise, always the best-ranked adjacent pair first (rank: the
//     merged token's score, higher first, or its id with RankByID; then the longer left part; then the
//     leftmost position); a pair merges only when both parts and their concatenation are tokens;
//   - a character that is not a token becomes its UTF-8 bytes as <0xNN> tokens (byte fallback), or
//     the unknown token if those are missing (consecutive unknowns fuse into one).
//
// Decode maps ▁ back to a space and <0xNN> tokens to bytes (invalid UTF-8 runs of byte tokens
// become one U+FFFD per byte, as HF's ByteFallback decoder does). It is immutable after
// construction and safe for concurrent use.
type SentencePiece struct {
	tokens  []string // possibly respelled
	types   []int32
	index   map[string]int
	rank    []float64 // per id: merge priority of the token as a merge result, lower first
	byteID  [256]int  // id of <0xNN>, -1 if absent
	special []bool    // per id: a control token (skipped by Decode with skipSpecial)
	added   *spmMatcher

	bos, eos, unk, pad int
	extraEOS           []int
	addBOS, addEOS     bool
	addSpacePrefix     bool
}

var _ Tokenizer = (*SentencePiece)(nil)

// NewSentencePiece builds the tokenizer of cfg. It returns an error if the slices disagree in
// length or a special id is out of range.
func NewSentencePiece(cfg SentencePieceConfig) (*SentencePiece, error) {
	n := len(cfg.Tokens)
	if n == 0 {
		return nil, fmt.Errorf("tokenizer: sentencepiece: empty vocabulary")
	}
	if len(cfg.Scores) != n && !(cfg.RankByID && cfg.Scores == nil) {
		return nil, fmt.Errorf("tokenizer: sentencepiece: %d scores for %d tokens", len(cfg.Scores), n)
	}
	if cfg.Types != nil && len(cfg.Types) != n {
		return nil, fmt.Errorf("tokenizer: sentencepiece: %d token types for %d tokens", len(cfg.Types), n)
	}
	for _, c := range []struct {
		name string
		id   int
	}{{"bos", cfg.BOS}, {"eos", cfg.EOS}, {"unknown", cfg.Unknown}, {"padding", cfg.Pad}} {
		if c.id < -1 || c.id >= n {
			return nil, fmt.Errorf("tokenizer: sentencepiece: %s id %d outside the vocabulary of %d", c.name, c.id, n)
		}
	}
	for _, id := range cfg.ExtraEOS {
		if id < 0 || id >= n {
			return nil, fmt.Errorf("tokenizer: sentencepiece: eos id %d outside the vocabulary of %d", id, n)
		}
	}
	t := &SentencePiece{
		tokens: make([]string, n), types: make([]int32, n), index: make(map[string]int, n),
		rank: make([]float64, n), special: make([]bool, n),
		bos: cfg.BOS, eos: cfg.EOS, unk: cfg.Unknown, pad: cfg.Pad, extraEOS: append([]int(nil), cfg.ExtraEOS...),
		addBOS: cfg.AddBOS, addEOS: cfg.AddEOS, addSpacePrefix: cfg.AddSpacePrefix,
	}
	for id, tok := range cfg.Tokens {
		if cfg.RespellSpaces && strings.Contains(tok, " ") && strings.TrimSpace(tok) == "" {
			tok = strings.Repeat(spaceMarker, utf8.RuneCountInString(tok))
		}
		t.tokens[id] = tok
		t.index[tok] = id // a later duplicate wins, as in a Python dict built from the list
		if cfg.Types != nil {
			t.types[id] = cfg.Types[id]
		} else {
			t.types[id] = TokenTypeNormal
		}
	}
	// The merge rank of a token string is that of its last id (the one index maps to).
	for id, tok := range t.tokens {
		last := t.index[tok]
		if cfg.RankByID {
			t.rank[id] = float64(last)
		} else {
			t.rank[id] = -float64(cfg.Scores[last])
		}
	}
	for b := range t.byteID {
		t.byteID[b] = -1
		if id, ok := t.index[fmt.Sprintf("<0x%02X>", b)]; ok {
			t.byteID[b] = id
		}
	}
	var added []spmAdded
	for id, tok := range cfg.Tokens {
		switch t.types[id] {
		case TokenTypeControl:
			if tok != "" {
				added = append(added, spmAdded{tok, id})
				t.special[id] = true
			}
		case TokenTypeUserDefined:
			// Added only if the spelling survives respelling (HF adds it only if it is in the vocab).
			if id2, ok := t.index[tok]; ok && tok != "" {
				added = append(added, spmAdded{tok, id2})
			}
		}
	}
	t.added = newSPMMatcher(added)
	return t, nil
}

// VocabSize is the number of tokens.
func (t *SentencePiece) VocabSize() int { return len(t.tokens) }

// BOS is the beginning-of-sequence id (-1 if none).
func (t *SentencePiece) BOS() int { return t.bos }

// EOS returns the end-of-sequence id followed by ExtraEOS (a new slice).
func (t *SentencePiece) EOS() []int {
	var out []int
	if t.eos >= 0 {
		out = append(out, t.eos)
	}
	return append(out, t.extraEOS...)
}

// Pad is the padding id (-1 if none).
func (t *SentencePiece) Pad() int { return t.pad }

// TokenID returns the id of a token as spelled in the vocabulary ("▁the", "<start_of_turn>").
func (t *SentencePiece) TokenID(token string) (int, bool) {
	id, ok := t.index[token]
	return id, ok
}

// TokenType returns the GGUF token type of id (TokenTypeNormal ...), -1 if out of range.
func (t *SentencePiece) TokenType(id int) int {
	if id < 0 || id >= len(t.types) {
		return -1
	}
	return int(t.types[id])
}

// Token returns the spelling of id ("" and false if out of range).
func (t *SentencePiece) Token(id int) (string, bool) {
	if id < 0 || id >= len(t.tokens) {
		return "", false
	}
	return t.tokens[id], true
}

// Encode returns the ids of text; with addSpecial, BOS/EOS as configured. Control and
// user-defined tokens written in text are always recognized.
func (t *SentencePiece) Encode(text string, addSpecial bool) []int {
	var ids []int
	if addSpecial && t.addBOS && t.bos >= 0 {
		ids = append(ids, t.bos)
	}
	pos := 0
	for pos <= len(text) {
		start, end, id, ok := t.added.find(text, pos)
		if !ok {
			start, end = len(text), len(text)
		}
		if start > pos {
			ids = t.encodePiece(ids, text[pos:start], pos == 0)
		}
		if !ok {
			break
		}
		ids = append(ids, id)
		pos = end
	}
	if addSpecial && t.addEOS && t.eos >= 0 {
		ids = append(ids, t.eos)
	}
	return ids
}

// spmSymbol is a span of the normalized text during merging, linked to its neighbours.
type spmSymbol struct {
	start, end int // byte span in the normalized text
	id         int // token id, or -1 for a byte-fallback/unknown symbol that never merges
	prev, next int
	chars      int // length in characters (merge tie-break)
}

// spmPair is a candidate merge of the symbol at left with its right neighbour.
type spmPair struct {
	left, right int     // symbol indices
	lid, rid    int     // their ids when the pair was made (to detect stale entries)
	id          int     // id of the merged token
	rank        float64 // rank of the merged token
	leftChars   int
}

type spmHeap []spmPair

func (h spmHeap) Len() int { return len(h) }
func (h spmHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	if a.leftChars != b.leftChars {
		return a.leftChars > b.leftChars
	}
	return a.left < b.left
}
func (h spmHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *spmHeap) Push(x any)   { *h = append(*h, x.(spmPair)) }
func (h *spmHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// encodePiece appends the ids of a stretch of text with no added tokens in it.
func (t *SentencePiece) encodePiece(ids []int, raw string, atStart bool) []int {
	var sb strings.Builder
	if t.addSpacePrefix && atStart {
		sb.WriteString(spaceMarker)
	}
	sb.WriteString(strings.ReplaceAll(raw, " ", spaceMarker))
	s := sb.String()

	// Initial symbols: characters that are tokens, else their bytes (fallback) as unmergeable symbols.
	syms := make([]spmSymbol, 0, len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 { // an invalid byte: no token can hold it
			syms = append(syms, spmSymbol{start: i, end: i + 1, id: -1, chars: 1})
		} else if id, ok := t.index[s[i:i+size]]; ok {
			syms = append(syms, spmSymbol{start: i, end: i + size, id: id, chars: 1})
		} else {
			for k := i; k < i+size; k++ {
				syms = append(syms, spmSymbol{start: k, end: k + 1, id: -1, chars: 1})
			}
		}
		i += size
	}
	for i := range syms {
		syms[i].prev, syms[i].next = i-1, i+1
	}
	if len(syms) > 0 {
		syms[len(syms)-1].next = -1
	}
	h := &spmHeap{}
	tryPair := func(l int) {
		if l < 0 {
			return
		}
		r := syms[l].next
		if r < 0 || syms[l].id < 0 || syms[r].id < 0 {
			return
		}
		id, ok := t.index[s[syms[l].start:syms[r].end]]
		if !ok {
			return
		}
		heap.Push(h, spmPair{left: l, right: r, lid: syms[l].id, rid: syms[r].id, id: id, rank: t.rank[id], leftChars: syms[l].chars})
	}
	for i := range syms {
		tryPair(i)
	}
	for h.Len() > 0 {
		p := heap.Pop(h).(spmPair)
		l, r := &syms[p.left], &syms[p.right]
		if l.id != p.lid || r.id != p.rid || l.next != p.right || l.end == l.start || r.end == r.start {
			continue // stale: one side merged since
		}
		l.end, l.id, l.chars = r.end, p.id, l.chars+r.chars
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = p.left
		}
		r.start, r.end, r.id = 0, 0, -1 // dead
		tryPair(l.prev)
		tryPair(p.left)
	}
	lastUnk := false
	for i := 0; i >= 0 && len(syms) > 0; i = syms[i].next {
		sym := syms[i]
		if sym.id >= 0 {
			ids = append(ids, sym.id)
			lastUnk = false
			continue
		}
		for k := sym.start; k < sym.end; k++ {
			if id := t.byteID[s[k]]; id >= 0 {
				ids = append(ids, id)
				lastUnk = false
			} else if t.unk >= 0 && !lastUnk {
				ids = append(ids, t.unk)
				lastUnk = true
			}
		}
	}
	return ids
}

// Decode returns the text of ids: ▁ becomes a space, <0xNN> tokens bytes; with skipSpecial,
// control tokens are left out. Ids outside the vocabulary are skipped.
func (t *SentencePiece) Decode(ids []int, skipSpecial bool) string {
	var out strings.Builder
	var pending []byte // consecutive byte tokens
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if utf8.Valid(pending) {
			out.Write(pending)
		} else {
			for range pending {
				out.WriteString("\uFFFD")
			}
		}
		pending = pending[:0]
	}
	for _, id := range ids {
		if id < 0 || id >= len(t.tokens) || (skipSpecial && t.special[id]) {
			continue
		}
		tok := t.tokens[id]
		if b, ok := byteToken(tok); ok {
			pending = append(pending, b)
			continue
		}
		flush()
		out.WriteString(strings.ReplaceAll(tok, spaceMarker, " "))
	}
	flush()
	return out.String()
}

// byteToken parses a byte-fallback token "<0xNN>" (two hex digits, either case).
func byteToken(tok string) (byte, bool) {
	if len(tok) != 6 || tok[:3] != "<0x" || tok[5] != '>' {
		return 0, false
	}
	var v byte
	for _, c := range []byte(tok[3:5]) {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | (c - '0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | (c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | (c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return v, true
}

// spmAdded is a token cut out of the text before merging.
type spmAdded struct {
	text string
	id   int
}

// spmMatcher finds added tokens leftmost-longest. Tokens are grouped by length so a position costs
// one map lookup per distinct length starting with that byte.
type spmMatcher struct {
	byText  map[string]int
	lengths [256][]int // per first byte: the distinct token lengths, longest first
}

func newSPMMatcher(tokens []spmAdded) *spmMatcher {
	m := &spmMatcher{byText: make(map[string]int, len(tokens))}
	seen := map[[2]int]bool{}
	for _, t := range tokens {
		m.byText[t.text] = t.id
		k := [2]int{int(t.text[0]), len(t.text)}
		if !seen[k] {
			seen[k] = true
			m.lengths[t.text[0]] = append(m.lengths[t.text[0]], len(t.text))
		}
	}
	for b := range m.lengths {
		sort.Sort(sort.Reverse(sort.IntSlice(m.lengths[b])))
	}
	return m
}

// find returns the leftmost-longest added token at or after from.
func (m *spmMatcher) find(s string, from int) (start, end, id int, ok bool) {
	for i := from; i < len(s); i++ {
		for _, n := range m.lengths[s[i]] {
			if i+n <= len(s) {
				if id, ok := m.byText[s[i:i+n]]; ok {
					return i, i + n, id, true
				}
			}
		}
	}
	return 0, 0, 0, false
}
