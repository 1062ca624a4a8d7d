package generate

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The sampler draws from softmax(logits/T) restricted to top-k and the top-p nucleus, with the
// frequencies that distribution predicts.
func TestSamplerDistribution(t *testing.T) {
	logits := []float32{2, 0.5, 1, -1, 1.5, 0} // order: 0 (2), 4 (1.5), 2 (1), 1 (0.5), 5 (0), 3 (-1)
	probs := func(T float64, keep []int) map[int]float64 {
		p := map[int]float64{}
		var z float64
		for _, i := range keep {
			p[i] = math.Exp(float64(logits[i]) / T)
			z += p[i]
		}
		for i := range p {
			p[i] /= z
		}
		return p
	}
	cases := []struct {
		name string
		opts Options
		want map[int]float64
	}{
		{"temperature", Options{Temperature: 0.8}, probs(0.8, []int{0, 1, 2, 3, 4, 5})},
		{"top-k 3", Options{Temperature: 1, TopK: 3}, probs(1, []int{0, 4, 2})},
		// Full softmax at T=1: p0≈.42, p4≈.25 → cumulative .67 < .7, so the nucleus is {0, 4, 2}.
		{"top-p 0.7", Options{Temperature: 1, TopP: 0.7}, probs(1, []int{0, 4, 2})},
		{"top-k 2 then top-p 0.5", Options{Temperature: 1, TopK: 2, TopP: 0.5}, probs(1, []int{0})},
	}
	for _, tc := range cases {
		s := &sampler{opts: tc.opts}
		r := rand.New(rand.NewPCG(1, 2))
		const n = 40000
		count := map[int]int{}
		for i := 0; i < n; i++ {
			count[s.sample(logits, r)]++
		}
		for id := range count {
			if _, ok := tc.want[id]; !ok {
				t.Errorf("%s: sampled %d, outside the allowed set %v", tc.name, id, tc.want)
			}
		}
		for id, p := range tc.want {
			got := float64(count[id]) / n
			if math.Abs(got-p) > 4*math.Sqrt(p*(1-p)/n)+1e-9 {
				t.Errorf("%s: token %d frequency %.4f, want %.4f", tc.name, id, got, p)
			}
		}
	}
}
