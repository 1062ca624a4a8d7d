package cuda

import (
	"strings"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
)

// GemmLowRank (the adapter products) equals the CPU's float32 product within TF32's rounding when
// LowRankTF32 is on, and within float32's when it is off; the profile names which ran.
func TestGemmLowRank(t *testing.T) {
	p := newPair(t)
	defer p.free()
	be := p.g.(*Backend)
	defer func(v bool) { be.LowRankTF32 = v }(be.LowRankTF32)
	type tc struct {
		name           string
		m, n, k        int // out [m, n]
		transA, transB bool
		alpha, beta    float32
	}
	cases := []tc{
		{"x·Aᵀ", 512, 8, 1024, false, true, 1, 0},
		{"xa·Bᵀ accumulated", 512, 1024, 8, false, true, 4, 1},
		{"dy·B", 512, 8, 1024, false, false, 4, 0},
		{"dyᵀ·xa (dB)", 1024, 8, 512, true, false, 4, 1},
		{"dxaᵀ·x (dA)", 8, 1024, 512, true, false, 1, 1},
		{"dxa·A into dx", 512, 1024, 8, false, false, 1, 1},
		{"odd shapes", 37, 3, 100, false, true, 1, 0},
		{"odd shapes, transposed a", 3, 100, 37, true, false, 1, 1},
	}
	for _, tf32 := range []bool{true, false} {
		be.LowRankTF32 = tf32
		tol, want := 1e-4, "gemm f32 "
		if tf32 {
			tol, want = 4e-3, "gemm tf32 "
		}
		for _, c := range cases {
			ar, ac := c.m, c.k
			if c.transA {
				ar, ac = c.k, c.m
			}
			wr, wc := c.n, c.k
			if !c.transB {
				wr, wc = c.k, c.n
			}
			ag, acpu := p.rand(tensor.F32, 1, ar, ac)
			wg, wcpu := p.rand(tensor.F32, 1, wr, wc)
			og, ocpu := p.rand(tensor.F32, 1, c.m, c.n)
			be.StartProfile()
			if err := be.GemmLowRank(og, ag, wg, c.transA, c.transB, c.alpha, c.beta); err != nil {
				t.Fatalf("%s (tf32 %v): %v", c.name, tf32, err)
			}
			prof, err := be.StopProfile()
			if err != nil {
				t.Fatal(err)
			}
			p.c.Gemm(ocpu, acpu, wcpu, c.transA, c.transB, c.alpha, c.beta)
			p.same(c.name, og, ocpu, tol)
			ran := false
			for _, e := range prof {
				ran = ran || strings.HasPrefix(e.Name, want)
			}
			if !ran {
				t.Errorf("%s (tf32 %v): no %q in the profile %+v", c.name, tf32, want, prof)
			}
		}
	}
	// Gemm itself stays exact float32 whatever LowRankTF32 says.
	be.LowRankTF32 = true
	ag, acpu := p.rand(tensor.F32, 1, 64, 256)
	wg, wcpu := p.rand(tensor.F32, 1, 32, 256)
	og, ocpu := p.zeros(64, 32)
	if err := be.Gemm(og, ag, wg, false, true, 1, 0); err != nil {
		t.Fatal(err)
	}
	p.c.Gemm(ocpu, acpu, wcpu, false, true, 1, 0)
	p.same("Gemm after GemmLowRank", og, ocpu, 1e-5)
}
