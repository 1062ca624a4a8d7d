package data

import (
	"fmt"
	"sort"
)

// BatchOptions control how examples are grouped and padded into batches.
type BatchOptions struct {
	// BatchSize is the number of rows per batch (required, > 0).
	BatchSize int
	// PadID is the token id written into padding positions of InputIDs (labels get -100 there).
	PadID int32
	// PadLeft puts padding before the tokens (as for generation); default right padding
	// (as for training).
	PadLeft bool
	// Shuffle visits rows in Permutation(n, Seed) order and then permutes the batch order with
	// Permutation(numBatches, Seed+1); default: file order, batches in order.
	Shuffle bool
	Seed    uint64
	// GroupByLength sorts rows by length (descending, stable) within consecutive groups of
	// GroupSize rows of the visiting order, so each batch holds rows of similar length and
	// little padding (Hugging Face's group_by_length idea).
	GroupByLength bool
	// GroupSize is the group ("mega-batch") size for GroupByLength (default 50*BatchSize).
	GroupSize int
	// DropLast drops a final batch smaller than BatchSize.
	DropLast bool
}

// Batch is one padded batch as plain Go slices, ready for the trainer. All rows are padded to the
// batch's longest row: InputIDs[b][t] and Labels[b][t] for b < Size(), t < Width().
type Batch struct {
	InputIDs      [][]int32 // [B][T] token ids, PadID on padding
	Labels        [][]int32 // [B][T] labels, -100 on padding and masked prompt tokens
	AttentionMask [][]int32 // [B][T] 1 on real tokens, 0 on padding
	Lengths       []int     // [B] real tokens of each row
	Rows          []int     // [B] the dataset row each batch row came from
	PadLeft       bool      // padding is at the start of each row
}

// Size is the number of rows (B).
func (b *Batch) Size() int { return len(b.InputIDs) }

// Width is the padded length (T).
func (b *Batch) Width() int {
	if len(b.InputIDs) == 0 {
		return 0
	}
	return len(b.InputIDs[0])
}

// Tokens is the number of real (non-padding) tokens.
func (b *Batch) Tokens() int {
	n := 0
	for _, l := range b.Lengths {
		n += l
	}
	return n
}

// BatchOrder returns the rows of each batch (indices into lengths) by the algorithm of
// BatchOptions: visiting order (file order, or Permutation(n, Seed) with Shuffle); with
// GroupByLength a stable descending sort by length inside each consecutive group of GroupSize;
// consecutive BatchSize cuts of that sequence (the last one possibly short, dropped with
// DropLast); with Shuffle the batch order is then permuted by Permutation(numBatches, Seed+1).
func BatchOrder(lengths []int, opts BatchOptions) ([][]int, error) {
	if opts.BatchSize <= 0 {
		return nil, fmt.Errorf("batch: batch size %d must be > 0", opts.BatchSize)
	}
	n := len(lengths)
	var order []int
	if opts.Shuffle {
		order = Permutation(n, opts.Seed)
	} else {
		order = make([]int, n)
		for i := range order {
			order[i] = i
		}
	}
	if opts.GroupByLength {
		g := opts.GroupSize
		if g <= 0 {
			g = 50 * opts.BatchSize
		}
		for lo := 0; lo < n; lo += g {
			grp := order[lo:min(lo+g, n)]
			sort.SliceStable(grp, func(a, b int) bool { return lengths[grp[a]] > lengths[grp[b]] })
		}
	}
	var batches [][]int
	for lo := 0; lo < n; lo += opts.BatchSize {
		hi := min(lo+opts.BatchSize, n)
		if hi-lo < opts.BatchSize && opts.DropLast {
			break
		}
		batches = append(batches, order[lo:hi])
	}
	if opts.Shuffle {
		perm := Permutation(len(batches), opts.Seed+1)
		shuffled := make([][]int, len(batches))
		for i, p := range perm {
			shuffled[i] = batches[p]
		}
		batches = shuffled
	}
	return batches, nil
}

// MakeBatches groups and pads examples into batches (see BatchOrder and Pad).
func MakeBatches(examples []Example, opts BatchOptions) ([]Batch, error) {
	lengths := make([]int, len(examples))
	for i, e := range examples {
		if len(e.Labels) != len(e.InputIDs) {
			return nil, fmt.Errorf("batch: example %d has %d input_ids but %d labels", i, len(e.InputIDs), len(e.Labels))
		}
		lengths[i] = len(e.InputIDs)
	}
	order, err := BatchOrder(lengths, opts)
	if err != nil {
		return nil, err
	}
	out := make([]Batch, len(order))
	for i, rows := range order {
		out[i] = Pad(examples, rows, opts.PadID, opts.PadLeft)
	}
	return out, nil
}

// Pad builds one batch from examples[rows], padded to the longest: InputIDs with padID,
// Labels with -100, AttentionMask 0, on the left or the right.
func Pad(examples []Example, rows []int, padID int32, padLeft bool) Batch {
	width := 0
	for _, r := range rows {
		width = max(width, len(examples[r].InputIDs))
	}
	b := Batch{
		InputIDs:      make([][]int32, len(rows)),
		Labels:        make([][]int32, len(rows)),
		AttentionMask: make([][]int32, len(rows)),
		Lengths:       make([]int, len(rows)),
		Rows:          append([]int(nil), rows...),
		PadLeft:       padLeft,
	}
	for i, r := range rows {
		e := examples[r]
		n := len(e.InputIDs)
		ids := make([]int32, width)
		lab := make([]int32, width)
		mask := make([]int32, width)
		off := 0
		if padLeft {
			off = width - n
		}
		for t := 0; t < width; t++ {
			ids[t], lab[t] = padID, IgnoreIndex
		}
		copy(ids[off:], e.InputIDs)
		copy(lab[off:], e.Labels)
		for t := off; t < off+n; t++ {
			mask[t] = 1
		}
		b.InputIDs[i], b.Labels[i], b.AttentionMask[i], b.Lengths[i] = ids, lab, mask, n
	}
	return b
}

// Batches reads the dataset's examples (see Examples) and returns MakeBatches of them.
func (d *Dataset) Batches(opts BatchOptions) ([]Batch, error) {
	ex, err := d.Examples()
	if err != nil {
		return nil, err
	}
	bs, err := MakeBatches(ex, opts)
	if err != nil {
		return nil, fmt.Errorf("dataset %s: %w", d.name, err)
	}
	return bs, nil
}
