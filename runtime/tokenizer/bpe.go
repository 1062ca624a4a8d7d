package tokenizer

import (
	"math"
	"strings"
	"sync"
)

// merge is the rank of a merge rule (its line in the merges list) and the id of the token it makes.
type merge struct {
	rank int32
	id   int32
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// bpeModel is the "BPE" model of tokenizer.json over the byte-level alphabet.
type bpeModel struct {
	vocab        map[string]int   // token (byte-level spelling) -> id
	rawVocab     map[string]int32 // raw bytes of a token -> id (for ignore_merges)
	merges       map[uint64]merge // (left id, right id) -> rule
	byteID       [256]int32       // id of the single-byte token of each byte, -1 if absent
	ignoreMerges bool
	unkID        int32 // -1 if none
	byteFallback [256]int32

	shards [cacheShards]cacheShard // per-word cache: raw piece -> ids
}

// cacheShards splits the per-word cache so concurrent encoders rarely share a lock.
const cacheShards = 16

type cacheShard struct {
	mu sync.RWMutex
	m  map[string][]int32
}

func shardOf(piece string) int {
	return (len(piece)*31 + int(piece[0]) + int(piece[len(piece)-1])*7) & (cacheShards - 1)
}

// clearCache empties the per-word cache (for benchmarks).
func (m *bpeModel) clearCache() {
	for i := range m.shards {
		m.shards[i].mu.Lock()
		m.shards[i].m = nil
		m.shards[i].mu.Unlock()
	}
}

// maxCacheEntries bounds the per-word cache; it is cleared when full.
const maxCacheEntries = 1 << 17

// encodePiece appends the ids of one pre-tokenized piece (raw bytes) to dst.
func (m *bpeModel) encodePiece(dst []int, piece string) []int {
	if piece == "" {
		return dst
	}
	if m.ignoreMerges { // most words are one token: no cache needed
		if id, ok := m.rawVocab[piece]; ok {
			return append(dst, int(id))
		}
	}
	sh := &m.shards[shardOf(piece)]
	sh.mu.RLock()
	ids, ok := sh.m[piece]
	sh.mu.RUnlock()
	if !ok {
		ids = m.bpe(piece)
		sh.mu.Lock()
		if sh.m == nil || len(sh.m) >= maxCacheEntries/cacheShards {
			sh.m = make(map[string][]int32)
		}
		sh.m[strings.Clone(piece)] = ids // piece may point into a large input text
		sh.mu.Unlock()
	}
	for _, id := range ids {
		dst = append(dst, int(id))
	}
	return dst
}

// bpe runs the merges on one piece: start from one symbol per byte, then repeatedly merge the
// adjacent pair of lowest rank (the leftmost among equal ranks), as HF tokenizers' Word::merge_all.
func (m *bpeModel) bpe(piece string) []int32 {
	if m.ignoreMerges {
		if id, ok := m.rawVocab[piece]; ok {
			return []int32{id}
		}
	}
	syms := make([]int32, 0, len(piece))
	for i := 0; i < len(piece); i++ {
		if id := m.byteID[piece[i]]; id >= 0 {
			syms = append(syms, id)
		} else if id := m.byteFallback[piece[i]]; id >= 0 {
			syms = append(syms, id)
		} else if m.unkID >= 0 {
			syms = append(syms, m.unkID)
		} // else: dropped, as HF does for a character outside a vocabulary without unk
	}
	if len(syms) < 2 {
		return syms
	}
	if len(syms) > longWord {
		return m.mergeHeap(syms)
	}
	return m.mergeScan(syms)
}

// longWord is the symbol count above which merging uses a heap (O(n log n)) rather than
// repeated scans (O(n²), faster for the short words that make up nearly all text).
const longWord = 48

// mergeScan merges syms in place by repeated scans for the lowest-rank pair.
func (m *bpeModel) mergeScan(syms []int32) []int32 {
	const none = math.MaxInt32
	ranks := make([]int32, len(syms)-1)
	rankAt := func(p int) int32 {
		if r, ok := m.merges[pairKey(syms[p], syms[p+1])]; ok {
			return r.rank
		}
		return none
	}
	for p := range ranks {
		ranks[p] = rankAt(p)
	}
	for len(syms) > 1 {
		best, bestRank := -1, int32(none)
		for p, r := range ranks {
			if r < bestRank {
				best, bestRank = p, r
			}
		}
		if best < 0 {
			break
		}
		syms[best] = m.merges[pairKey(syms[best], syms[best+1])].id
		syms = append(syms[:best+1], syms[best+2:]...)
		ranks = append(ranks[:best], ranks[best+1:]...)
		if best < len(ranks) {
			ranks[best] = rankAt(best)
		}
		if best > 0 {
			ranks[best-1] = rankAt(best - 1)
		}
	}
	return syms
}

// heapItem is a candidate merge of the symbols at pos and the next live one, valid while they still
// hold left and right.
type heapItem struct {
	rank, pos, left, right int32
}

func (a heapItem) less(b heapItem) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos)
}

// mergeHeap merges syms as mergeScan does, with a priority queue ordered by (rank, position) and a
// linked list of live symbols, as HF tokenizers' Word::merge_all.
func (m *bpeModel) mergeHeap(syms []int32) []int32 {
	n := int32(len(syms))
	prev := make([]int32, n)
	next := make([]int32, n)
	for i := range n {
		prev[i], next[i] = i-1, i+1
	}
	var h []heapItem
	push := func(it heapItem) {
		h = append(h, it)
		for i := len(h) - 1; i > 0; {
			p := (i - 1) / 2
			if !h[i].less(h[p]) {
				break
			}
			h[i], h[p] = h[p], h[i]
			i = p
		}
	}
	pop := func() heapItem {
		top := h[0]
		last := len(h) - 1
		h[0] = h[last]
		h = h[:last]
		for i := 0; ; {
			l, r, s := 2*i+1, 2*i+2, i
			if l < len(h) && h[l].less(h[s]) {
				s = l
			}
			if r < len(h) && h[r].less(h[s]) {
				s = r
			}
			if s == i {
				break
			}
			h[i], h[s] = h[s], h[i]
			i = s
		}
		return top
	}
	candidate := func(p int32) {
		q := next[p]
		if q >= n {
			return
		}
		if r, ok := m.merges[pairKey(syms[p], syms[q])]; ok {
			push(heapItem{rank: r.rank, pos: p, left: syms[p], right: syms[q]})
		}
	}
	for i := int32(0); i+1 < n; i++ {
		candidate(i)
	}
	for len(h) > 0 {
		it := pop()
		p := it.pos
		q := next[p]
		if syms[p] != it.left || q >= n || syms[q] != it.right {
			continue // stale: one side was merged since
		}
		syms[p] = m.merges[pairKey(it.left, it.right)].id
		syms[q] = -1
		next[p] = next[q]
		if next[q] < n {
			prev[next[q]] = p
		}
		if prev[p] >= 0 {
			candidate(prev[p])
		}
		candidate(p)
	}
	out := syms[:0]
	for i := int32(0); i < n; i = next[i] {
		out = append(out, syms[i])
	}
	return out
}
