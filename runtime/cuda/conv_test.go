package cuda

import (
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
)

// The Gemm operand-conversion cache (conv.go): a second product reading the same F32 operand
// converts nothing, and every way of writing the operand in between (a kernel, a float32 Gemm's
// output, a device copy, a fill) makes the next product convert again, so results always equal the
// CPU's on the current values.
func TestGemmConversionCache(t *testing.T) {
	p := newPair(t)
	defer p.free()
	be := p.g.(*Backend)
	ag, ac := p.rand(tensor.F32, 1, 64, 256)
	w1g, w1c := p.rand(tensor.BF16, 1, 128, 256)
	w2g, w2c := p.rand(tensor.BF16, 1, 96, 256)
	wfg, wfc := p.rand(tensor.F32, 0.1, 256, 256)
	xg, xc := p.rand(tensor.F32, 1, 64, 256)
	o1g, o1c := p.zeros(64, 128)
	o2g, o2c := p.zeros(64, 96)
	converts := func(f func()) int {
		be.StartProfile()
		f()
		prof, err := be.StopProfile()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range prof {
			if e.Name == "convert" || e.Name == "convert_bf16v" {
				n += e.Calls
			}
		}
		return n
	}
	check := func(what string, wantConverts int) {
		t.Helper()
		n := converts(func() {
			if err := p.g.Gemm(o1g, ag, w1g, false, true, 1, 0); err != nil {
				t.Fatal(err)
			}
		})
		p.c.Gemm(o1c, ac, w1c, false, true, 1, 0)
		p.same(what, o1g, o1c, 3e-3)
		if n != wantConverts {
			t.Errorf("%s: %d conversions, want %d", what, n, wantConverts)
		}
	}
	check("first product", 1)
	n := converts(func() {
		if err := p.g.Gemm(o2g, ag, w2g, false, true, 1, 0); err != nil {
			t.Fatal(err)
		}
	})
	p.c.Gemm(o2c, ac, w2c, false, true, 1, 0)
	p.same("second weight, same operand", o2g, o2c, 3e-3)
	if n != 0 {
		t.Errorf("second product on the same operand converted %d times, want 0", n)
	}
	// writers of the operand between products
	if err := p.g.Scale(ag, ag, 0.5); err != nil {
		t.Fatal(err)
	}
	p.c.Scale(ac, ac, 0.5)
	check("after a kernel wrote it", 1)
	if err := p.g.Gemm(ag, xg, wfg, false, false, 1, 0); err != nil {
		t.Fatal(err)
	}
	p.c.Gemm(ac, xc, wfc, false, false, 1, 0)
	check("after a float32 Gemm wrote it", 1)
	if err := p.g.Copy(ag, xg); err != nil {
		t.Fatal(err)
	}
	p.c.Copy(ac, xc)
	check("after a device copy wrote it", 1)
	if err := p.g.Fill(ag, 0.25); err != nil {
		t.Fatal(err)
	}
	p.c.Fill(ac, 0.25)
	check("after a fill", 1)
	check("again, unchanged", 0)
}
