package train

import (
	"fmt"
	"math/rand/v2"

	"github.com/finlora/finlora/runtime/data"

	"github.com/finlora/finlora/runtime/tensor"
)

// IgnoreIndex is HF's label for positions without a loss (prompt tokens, padding).
const IgnoreIndex = data.IgnoreIndex

// Example is one training row (runtime/data's): token ids and labels of the same length; a label
// of −100 is not counted (HF semantics: the logits at t are scored against Labels[t+1]).
type Example = data.Example

// validateExample checks lengths and ids against a vocabulary of size vocab.
func validateExample(e Example, vocab int) error {
	if len(e.InputIDs) == 0 {
		return fmt.Errorf("empty input_ids")
	}
	if len(e.Labels) != len(e.InputIDs) {
		return fmt.Errorf("labels has %d values, input_ids %d", len(e.Labels), len(e.InputIDs))
	}
	for i, id := range e.InputIDs {
		if id < 0 || int(id) >= vocab {
			return fmt.Errorf("input_ids[%d] = %d outside the vocabulary of %d", i, id, vocab)
		}
	}
	for i, l := range e.Labels {
		if l != IgnoreIndex && (l < 0 || int(l) >= vocab) {
			return fmt.Errorf("labels[%d] = %d outside the vocabulary of %d", i, l, vocab)
		}
	}
	return nil
}

// counted returns the number of labels that enter the loss (those of positions 1.. not −100).
func counted(e Example) int {
	n := 0
	for _, l := range e.Labels[1:] {
		if l != IgnoreIndex {
			n++
		}
	}
	return n
}

// epochOrder returns the row order of an epoch: 0..n−1, or a permutation seeded by (seed, epoch).
func epochOrder(n int, shuffle bool, seed uint64, epoch int) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	if shuffle {
		g := rand.New(rand.NewPCG(seed, uint64(epoch)+0x5eed))
		g.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	return order
}

// makeMicroBatch pads rows on the right to the longest (pad id 0, label −100) and uploads ids,
// positions and shifted targets. The caller frees the tensors with freeMicroBatch.
func makeMicroBatch(b tensor.Backend, rows []Example, seed uint64) (*microBatch, error) {
	T := 0
	for _, r := range rows {
		T = max(T, len(r.InputIDs))
	}
	B := len(rows)
	ids, pos, tg := make([]int32, B*T), make([]int32, B*T), make([]int32, B*T)
	for i, r := range rows {
		for t := 0; t < T; t++ {
			pos[i*T+t] = int32(t)
			tg[i*T+t] = IgnoreIndex
			if t < len(r.InputIDs) {
				ids[i*T+t] = r.InputIDs[t]
			}
			if t+1 < len(r.Labels) {
				tg[i*T+t] = r.Labels[t+1]
			}
		}
	}
	mb := &microBatch{B: B, T: T, seed: seed}
	var err error
	if mb.ids, err = b.FromInt32([]int{B, T}, ids); err != nil {
		return nil, err
	}
	if mb.pos, err = b.FromInt32([]int{B, T}, pos); err != nil {
		mb.free()
		return nil, err
	}
	if mb.targets, err = b.FromInt32([]int{B * T}, tg); err != nil {
		mb.free()
		return nil, err
	}
	return mb, nil
}

func (mb *microBatch) free() { tensor.FreeAll(mb.ids, mb.pos, mb.targets) }
