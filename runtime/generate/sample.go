package generate

import (
	"math"
	"math/rand/v2"
	"sort"
)

// sampler draws a token from logits with temperature, top-k and top-p (in that order, as
// transformers applies its logits warpers). It reuses its buffers between calls.
type sampler struct {
	opts  Options
	idx   []int
	probs []float64
}

// sample returns a token id drawn from logits (one row, length V) using r.
func (s *sampler) sample(logits []float32, r *rand.Rand) int {
	V := len(logits)
	if cap(s.idx) < V {
		s.idx, s.probs = make([]int, V), make([]float64, V)
	}
	idx, probs := s.idx[:V], s.probs[:V]
	for i := range idx {
		idx[i] = i
	}
	// Order by logit, highest first (ties by id, so the order is deterministic).
	sort.Slice(idx, func(a, b int) bool {
		la, lb := logits[idx[a]], logits[idx[b]]
		if la != lb {
			return la > lb
		}
		return idx[a] < idx[b]
	})
	n := V
	if k := s.opts.TopK; k > 0 && k < n {
		n = k
	}
	t := s.opts.Temperature
	mx := float64(logits[idx[0]]) / t
	var sum float64
	for j := 0; j < n; j++ {
		p := math.Exp(float64(logits[idx[j]])/t - mx)
		probs[j] = p
		sum += p
	}
	if p := s.opts.TopP; p > 0 && p < 1 {
		var cum float64
		for j := 0; j < n; j++ {
			cum += probs[j] / sum
			if cum >= p {
				n = j + 1
				break
			}
		}
		sum = 0
		for j := 0; j < n; j++ {
			sum += probs[j]
		}
	}
	u := r.Float64() * sum
	for j := 0; j < n; j++ {
		u -= probs[j]
		if u < 0 {
			return idx[j]
		}
	}
	return idx[n-1]
}
