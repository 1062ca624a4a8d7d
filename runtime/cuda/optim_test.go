package cuda

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
)

// The multi-tensor optimizer kernels against the host formula (train.AdamW.Update's, float32):
// sizes span several 4096-element chunks, one element, and a chunk boundary; clipping and weight
// decay on. Gradients must come back zeroed; ReadAll must return every tensor.
func TestOptimizerKernels(t *testing.T) {
	b := gpu(t)
	r := rand.New(rand.NewPCG(3, 5))
	sizes := [][]int{{8, 4096}, {1}, {4096}, {4097}, {1000, 8}}
	var ps, gs, ms, vs []*tensor.Tensor
	var hp, hg, hm, hv [][]float32
	mk := func(shape []int, scale float64, list *[]*tensor.Tensor, host *[][]float32) {
		v := make([]float32, tensor.Numel(shape))
		for i := range v {
			v[i] = float32(r.NormFloat64() * scale)
			if scale < 0 { // second moments are non-negative
				v[i] = float32(math.Abs(r.NormFloat64() * -scale))
			}
		}
		x, err := b.FromFloat32(tensor.F32, shape, v)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { x.Free() })
		*list, *host = append(*list, x), append(*host, v)
	}
	for _, s := range sizes {
		mk(s, 0.1, &ps, &hp)
		mk(s, 1, &gs, &hg)
		mk(s, 0.01, &ms, &hm)
		mk(s, -0.001, &vs, &hv)
	}
	var want float64
	for _, g := range hg {
		for _, x := range g {
			want += float64(x) * float64(x)
		}
	}
	got, err := b.SumSquaresAll(gs)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got-want) > 1e-12*want {
		t.Errorf("SumSquaresAll %.15g, want %.15g", got, want)
	}
	clip, stepSize, bc2Sqrt, b1, b2, eps, decay := float32(0.7), float32(1e-3/0.19), float32(math.Sqrt(1-math.Pow(0.999, 2))), float32(0.9), float32(0.999), float32(1e-8), float32(1-1e-3*0.01)
	if err := b.AdamWUpdate(ps, gs, ms, vs, clip, stepSize, bc2Sqrt, b1, b2, eps, decay); err != nil {
		t.Fatal(err)
	}
	for i := range hp {
		p, g, m, v := hp[i], hg[i], hm[i], hv[i]
		for j := range p {
			gj := g[j] * clip
			p[j] *= decay
			m[j] += (1 - b1) * (gj - m[j])
			v[j] = v[j]*b2 + (1-b2)*gj*gj
			p[j] += -stepSize * (m[j] / (float32(math.Sqrt(float64(v[j])))/bc2Sqrt + eps))
		}
	}
	for i := range ps {
		dst := [][]float32{make([]float32, ps[i].Numel()), make([]float32, ps[i].Numel()), make([]float32, ps[i].Numel()), make([]float32, ps[i].Numel())}
		if err := b.ReadAll([]*tensor.Tensor{ps[i], gs[i], ms[i], vs[i]}, dst); err != nil {
			t.Fatal(err)
		}
		for k, want := range [][]float32{hp[i], nil, hm[i], hv[i]} {
			for j := range dst[k] {
				w := float32(0)
				if want != nil {
					w = want[j]
				}
				if d := math.Abs(float64(dst[k][j] - w)); d > 1e-6*math.Max(1e-3, math.Abs(float64(w))) || math.IsNaN(float64(dst[k][j])) {
					t.Fatalf("tensor %d (%v), part %d (p, g, m, v), element %d: got %g, want %g", i, sizes[i], k, j, dst[k][j], w)
				}
			}
		}
	}
}
