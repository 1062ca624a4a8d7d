package tokenizer

import (
	"math"
	"strings"
	"sync"
	"sync/atomic"
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

	cache  sync.Map     // raw piece (string) -> []int32 ids
	cached atomic.Int64 // entries stored since the last clear
}

// maxCacheEntries bounds the per-word cache; it is cleared when full.
const maxCacheEntries = 1 << 17

// encodePiece appends the ids of one pre-tokenized piece (raw bytes) to dst.
func (m *bpeModel) encodePiece(dst []int, piece string) []int {
	if piece == "" {
		return dst
	}
	var ids []int32
	if v, ok := m.cache.Load(piece); ok {
		ids = v.([]int32)
	} else {
		ids = m.bpe(piece)
		if m.cached.Add(1) > maxCacheEntries {
			m.cache.Clear()
			m.cached.Store(1)
		}
		m.cache.Store(strings.Clone(piece), ids) // piece may point into a large input text
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
