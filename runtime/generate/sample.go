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

// tailCut: tokens whose scaled logit is this far below the maximum have probability below
// e^-40 ≈ 4e-18 of the top token's and are left out of the sort (their total mass over a 128k
// vocabulary is under 1e-12, far below what top-p thresholds resolve).
const tailCut = 40

// sample returns a token id drawn from logits (one row, length V) using r.
func (s *sampler) sample(logits []float32, r *rand.Rand) int {
	V := len(logits)
	if cap(s.idx) < V {
		s.idx, s.probs = make([]int, V), make([]float64, V)
	}
	t := s.opts.Temperature
	mx := math.Inf(-1)
	for _, l := range logits {
		mx = math.Max(mx, float64(l))
	}
	mx /= t
	topP := s.opts.TopP > 0 && s.opts.TopP < 1
	if s.opts.TopK <= 0 && !topP { // plain temperature sampling: no ordering needed
		probs := s.probs[:V]
		var sum float64
		for i, l := range logits {
			probs[i] = math.Exp(float64(l)/t - mx)
			sum += probs[i]
		}
		return draw(probs, nil, sum, r)
	}
	// Candidates: every token not in the negligible tail, ordered by logit (ties by id).
	idx := s.idx[:0]
	for i, l := range logits {
		if float64(l)/t-mx > -tailCut {
			idx = append(idx, i)
		}
	}
	sort.Slice(idx, func(a, b int) bool {
		la, lb := logits[idx[a]], logits[idx[b]]
		if la != lb {
			return la > lb
		}
		return idx[a] < idx[b]
	})
	n := len(idx)
	if k := s.opts.TopK; k > 0 && k < n {
		n = k
	}
	probs := s.probs[:n]
	var sum float64
	for j := 0; j < n; j++ {
		probs[j] = math.Exp(float64(logits[idx[j]])/t - mx)
		sum += probs[j]
	}
	if topP {
		var cum float64
		for j := 0; j < n; j++ {
			cum += probs[j] / sum
			if cum >= s.opts.TopP {
				n = j + 1
				break
			}
		}
		probs = probs[:n]
		sum = 0
		for _, p := range probs {
			sum += p
		}
	}
	return draw(probs, idx[:n], sum, r)
}

// draw picks position j with probability probs[j]/sum and returns ids[j] (or j when ids is nil).
func draw(probs []float64, ids []int, sum float64, r *rand.Rand) int {
	u := r.Float64() * sum
	j := 0
	for ; j < len(probs)-1; j++ {
		u -= probs[j]
		if u < 0 {
			break
		}
	}
	if ids == nil {
		return j
	}
	return ids[j]
}
