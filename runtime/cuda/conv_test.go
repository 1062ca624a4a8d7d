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

// SwiGLU and its backward write bf16 copies of their outputs and keep them as conversions
// (FuseConvert): the down projection after SwiGLU and the gate and up input-gradient products
// after the backward convert nothing and equal the CPU's; the float32 outputs are unchanged; a
// launch in between, or FuseConvert off, makes the Gemm convert again.
func TestSwiGLUFusedConversion(t *testing.T) {
	p := newPair(t)
	defer p.free()
	be := p.g.(*Backend)
	defer func(v, w bool) { be.FuseConvert, be.VecElementwise = v, w }(be.FuseConvert, be.VecElementwise)
	bwg, ok := p.g.(tensor.Backward)
	bwc, ok2 := p.c.(tensor.Backward)
	if !ok || !ok2 {
		t.Fatal("backends without tensor.Backward")
	}
	const n, inter, hid = 64, 256, 96
	gg, gc := p.rand(tensor.F32, 2, n, inter)
	ug, uc := p.rand(tensor.F32, 1, n, inter)
	dyg, dyc := p.rand(tensor.F32, 1, n, inter)
	wdg, wdc := p.rand(tensor.BF16, 1, hid, inter) // down [hid, inter]
	wgg, wgc := p.rand(tensor.BF16, 1, inter, hid) // gate/up [inter, hid]
	wug, wuc := p.rand(tensor.BF16, 1, inter, hid)
	actg, actc := p.zeros(n, inter)
	dgg, dgc := p.zeros(n, inter)
	dug, duc := p.zeros(n, inter)
	og, oc := p.zeros(n, hid)
	converts := func(f func() error) int {
		be.StartProfile()
		if err := f(); err != nil {
			t.Fatal(err)
		}
		prof, err := be.StopProfile()
		if err != nil {
			t.Fatal(err)
		}
		c := 0
		for _, e := range prof {
			if e.Name == "convert" || e.Name == "convert_bf16v" {
				c += e.Calls
			}
		}
		return c
	}
	for _, mode := range []struct{ fuse, vec bool }{{true, false}, {false, false}, {true, true}} {
		fuse := mode.fuse
		be.FuseConvert, be.VecElementwise = fuse, mode.vec
		want := map[bool]int{true: 0, false: 1}[fuse]
		if err := p.g.SwiGLU(actg, gg, ug); err != nil {
			t.Fatal(err)
		}
		p.c.SwiGLU(actc, gc, uc)
		p.same("swiglu", actg, actc, 1e-5)
		c := converts(func() error { return p.g.Gemm(og, actg, wdg, false, true, 1, 0) })
		p.c.Gemm(oc, actc, wdc, false, true, 1, 0)
		p.same("down after swiglu", og, oc, 3e-3)
		if c != want {
			t.Errorf("fuse %v: down after swiglu converted %d times, want %d", fuse, c, want)
		}
		if err := bwg.SwiGLUBackward(dgg, dug, dyg, gg, ug); err != nil {
			t.Fatal(err)
		}
		if err := bwc.SwiGLUBackward(dgc, duc, dyc, gc, uc); err != nil {
			t.Fatal(err)
		}
		p.same("swiglu backward dgate", dgg, dgc, 1e-5)
		p.same("swiglu backward dup", dug, duc, 1e-5)
		c = converts(func() error {
			if err := p.g.Gemm(og, dgg, wgg, false, false, 1, 0); err != nil {
				return err
			}
			return p.g.Gemm(og, dug, wug, false, false, 1, 1)
		})
		p.c.Gemm(oc, dgc, wgc, false, false, 1, 0)
		p.c.Gemm(oc, duc, wuc, false, false, 1, 1)
		p.same("gate+up input gradient after swiglu backward", og, oc, 3e-3)
		if c != 2*want {
			t.Errorf("fuse %v: gate/up products after swiglu backward converted %d times, want %d", fuse, c, 2*want)
		}
		// a launch between producer and product drops the copies
		if err := bwg.SwiGLUBackward(dgg, dug, dyg, gg, ug); err != nil {
			t.Fatal(err)
		}
		if err := p.g.Scale(actg, actg, 1); err != nil {
			t.Fatal(err)
		}
		if c := converts(func() error { return p.g.Gemm(og, dgg, wgg, false, false, 1, 0) }); c != 1 {
			t.Errorf("fuse %v: product after an intervening launch converted %d times, want 1", fuse, c)
		}
		p.c.Gemm(oc, dgc, wgc, false, false, 1, 0)
		p.same("gate input gradient after an intervening launch", og, oc, 3e-3)
	}
}

// The vectorized elementwise kernels (VecElementwise: add_v, swiglu_bv, swiglu_bwd_bv) equal the
// CPU on lengths that are not a multiple of 4 (the tail), and run where selected.
func TestVecElementwise(t *testing.T) {
	p := newPair(t)
	defer p.free()
	be := p.g.(*Backend)
	defer func(v, w bool) { be.FuseConvert, be.VecElementwise = v, w }(be.FuseConvert, be.VecElementwise)
	be.FuseConvert, be.VecElementwise = true, true
	bwg := p.g.(tensor.Backward)
	bwc := p.c.(tensor.Backward)
	for _, shape := range [][]int{{37, 13}, {3, 1}, {64, 256}} {
		xg, xc := p.rand(tensor.F32, 2, shape...)
		yg, yc := p.rand(tensor.F32, 1, shape...)
		dg, dc := p.rand(tensor.F32, 1, shape...)
		og, oc := p.zeros(shape...)
		o2g, o2c := p.zeros(shape...)
		be.StartProfile()
		if err := p.g.Add(og, xg, yg, -0.5); err != nil {
			t.Fatal(err)
		}
		p.c.Add(oc, xc, yc, -0.5)
		p.same("add", og, oc, 1e-6)
		if err := p.g.SwiGLU(og, xg, yg); err != nil {
			t.Fatal(err)
		}
		p.c.SwiGLU(oc, xc, yc)
		p.same("swiglu", og, oc, 1e-5)
		if err := bwg.SwiGLUBackward(og, o2g, dg, xg, yg); err != nil {
			t.Fatal(err)
		}
		if err := bwc.SwiGLUBackward(oc, o2c, dc, xc, yc); err != nil {
			t.Fatal(err)
		}
		p.same("swiglu backward dgate", og, oc, 1e-5)
		p.same("swiglu backward dup", o2g, o2c, 1e-5)
		prof, err := be.StopProfile()
		if err != nil {
			t.Fatal(err)
		}
		ran := map[string]bool{}
		for _, e := range prof {
			ran[e.Name] = true
		}
		for _, k := range []string{"add_v", "swiglu_bv", "swiglu_bwd_bv"} {
			if !ran[k] {
				t.Errorf("shape %v: %s did not run (ran %v)", shape, k, ran)
			}
		}
		// the bf16 copies equal the float32 outputs rounded: a bf16 product reading them equals
		// one reading a fresh conversion
		wg, wc := p.rand(tensor.BF16, 1, 8, shape[1])
		pg, pc := p.zeros(shape[0], 8)
		if err := p.g.Gemm(pg, og, wg, false, true, 1, 0); err != nil {
			t.Fatal(err)
		}
		p.c.Gemm(pc, oc, wc, false, true, 1, 0)
		p.same("product on swiglu_bwd_bv's bf16 dgate", pg, pc, 3e-3)
	}
}
