package cuda

import (
	"errors"
	"fmt"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/train"
)

// The CUDA backend has the fused GeGLU ops runtime/train and runtime/model look for.
var _ train.GeGLUBackend = (*Backend)(nil)

// GeGLU and GeGLUBackward equal the host path (runtime/train.GeGLU and GeGLUBackward on the CPU
// backend, which has no GeGLU op: gelu_tanh in float64) on random inputs of several sizes, odd
// ones included, with separate outputs and in place, with FuseConvert off and on; with it on, a
// bf16 product reading the outputs converts nothing (it reads the kernels' bf16 copies) and equals
// the CPU's, off it converts once. The device kernels run (not a host fallback); bad operands fail.
func TestGeGLUMatchesHost(t *testing.T) {
	p := newPair(t)
	defer p.free()
	be := p.g.(*Backend)
	defer func(f, n bool) { be.FuseConvert, be.NoConvCache = f, n }(be.FuseConvert, be.NoConvCache)
	be.NoConvCache = false

	// onGPU copies a CPU tensor to a fresh GPU tensor (operands an in-place op may overwrite).
	onGPU := func(c *tensor.Tensor) *tensor.Tensor {
		t.Helper()
		v, err := p.c.ToFloat32(c)
		if err != nil {
			t.Fatal(err)
		}
		g, err := p.g.FromFloat32(tensor.F32, c.Shape(), v)
		if err != nil {
			t.Fatal(err)
		}
		p.tensor = append(p.tensor, g)
		return g
	}
	// profiled runs f and returns the kernels and products it ran with their calls.
	profiled := func(f func() error) map[string]int {
		t.Helper()
		be.StartProfile()
		err := f()
		prof, perr := be.StopProfile()
		if err != nil {
			t.Fatal(err)
		}
		if perr != nil {
			t.Fatal(perr)
		}
		ran := map[string]int{}
		for _, e := range prof {
			ran[e.Name] += e.Calls
		}
		return ran
	}
	converts := func(ran map[string]int) int { return ran["convert"] + ran["convert_bf16v"] }
	// product checks a bf16 product reading what (GPU g, CPU c) against the CPU's, and how many
	// operand conversions it ran.
	product := func(what string, fuse bool, g, c *tensor.Tensor) {
		t.Helper()
		cols := g.Cols()
		wg, wc := p.rand(tensor.BF16, 1, 8, cols)
		pg, pc := p.zeros(g.Rows(), 8)
		ran := profiled(func() error { return p.g.Gemm(pg, g, wg, false, true, 1, 0) })
		if err := p.c.Gemm(pc, c, wc, false, true, 1, 0); err != nil {
			t.Fatal(err)
		}
		p.same("product on "+what, pg, pc, 5e-3) // bf16 operand rounding over up to 1031 terms
		if want := map[bool]int{true: 0, false: 1}[fuse]; converts(ran) != want {
			t.Errorf("%s: product converted %d times, want %d (ran %v)", what, converts(ran), want, ran)
		}
	}

	for _, fuse := range []bool{false, true} {
		be.FuseConvert = fuse
		fwdKernel, bwdKernel := map[bool]string{false: "geglu", true: "geglu_b"}[fuse], map[bool]string{false: "geglu_bwd", true: "geglu_bwd_b"}[fuse]
		for _, shape := range [][]int{{1, 1}, {3, 1}, {5, 33}, {37, 13}, {7, 1031}, {64, 256}} {
			_, gc := p.rand(tensor.F32, 2, shape...)
			_, uc := p.rand(tensor.F32, 1, shape...)
			_, dyc := p.rand(tensor.F32, 1, shape...)
			oc, _ := p.c.Alloc(tensor.F32, shape...)
			dgc, _ := p.c.Alloc(tensor.F32, shape...)
			duc, _ := p.c.Alloc(tensor.F32, shape...)
			p.tensor = append(p.tensor, oc, dgc, duc)
			if err := train.GeGLU(p.c, oc, gc, uc); err != nil {
				t.Fatal(err)
			}
			if err := train.GeGLUBackward(p.c, dgc, duc, dyc, gc, uc); err != nil {
				t.Fatal(err)
			}

			for _, alias := range []string{"", "gate", "up"} {
				name := fmt.Sprintf("fuse %v %v out=%s", fuse, shape, map[string]string{"": "new", "gate": "gate", "up": "up"}[alias])
				gg, ug := onGPU(gc), onGPU(uc)
				og := map[string]*tensor.Tensor{"gate": gg, "up": ug}[alias]
				if og == nil {
					og, _ = p.zeros(shape...)
				}
				ran := profiled(func() error { return be.GeGLU(og, gg, ug) })
				if ran[fwdKernel] != 1 {
					t.Errorf("%s: geglu ran %v, want %s once", name, ran, fwdKernel)
				}
				p.same(name+": geglu", og, oc, 1e-6)
				product(name+": geglu", fuse, og, oc)
			}

			for _, alias := range []string{"", "gate/up", "up/gate"} {
				name := fmt.Sprintf("fuse %v %v dgate/dup=%s", fuse, shape, map[string]string{"": "new", "gate/up": "gate/up", "up/gate": "up/gate"}[alias])
				gg, ug, dyg := onGPU(gc), onGPU(uc), onGPU(dyc)
				var dgg, dug *tensor.Tensor
				switch alias {
				case "gate/up":
					dgg, dug = gg, ug
				case "up/gate":
					dgg, dug = ug, gg
				default:
					dgg, _ = p.zeros(shape...)
					dug, _ = p.zeros(shape...)
				}
				ran := profiled(func() error { return be.GeGLUBackward(dgg, dug, dyg, gg, ug) })
				if ran[bwdKernel] != 1 {
					t.Errorf("%s: geglu backward ran %v, want %s once", name, ran, bwdKernel)
				}
				p.same(name+": geglu backward dgate", dgg, dgc, 1e-5)
				p.same(name+": geglu backward dup", dug, duc, 1e-6)
				product(name+": geglu backward dgate", fuse, dgg, dgc)
				product(name+": geglu backward dup", fuse, dug, duc)
			}
		}
	}

	// through runtime/train's dispatch (the backend's op, not the host path)
	gg, gc := p.rand(tensor.F32, 2, 4, 6)
	ug, uc := p.rand(tensor.F32, 1, 4, 6)
	og, oc := p.zeros(4, 6)
	if ran := profiled(func() error { return train.GeGLU(p.g, og, gg, ug) }); ran["geglu"]+ran["geglu_b"] != 1 {
		t.Errorf("train.GeGLU on the GPU ran %v, want the geglu kernel", ran)
	}
	if err := train.GeGLU(p.c, oc, gc, uc); err != nil {
		t.Fatal(err)
	}
	p.same("train.GeGLU", og, oc, 1e-6)

	// bad operands
	o2g, _ := p.zeros(4, 6)
	short, _ := p.zeros(4, 5)
	bf, _ := p.rand(tensor.BF16, 1, 4, 6)
	for _, c := range []struct {
		what string
		err  error
		want error
	}{
		{"geglu short up", be.GeGLU(og, gg, short), tensor.ErrShape},
		{"geglu short out", be.GeGLU(short, gg, ug), tensor.ErrShape},
		{"geglu bf16 gate", be.GeGLU(og, bf, ug), tensor.ErrDType},
		{"geglu nil up", be.GeGLU(og, gg, nil), tensor.ErrShape},
		{"geglu cpu gate", be.GeGLU(og, gc, ug), tensor.ErrBackend},
		{"geglu backward short dy", be.GeGLUBackward(og, og, short, gg, ug), tensor.ErrShape},
		{"geglu backward short dup", be.GeGLUBackward(og, short, og, gg, ug), tensor.ErrShape},
		{"geglu backward bf16 up", be.GeGLUBackward(og, o2g, og, gg, bf), tensor.ErrDType},
		{"geglu backward same dgate and dup", be.GeGLUBackward(og, og, og, gg, ug), tensor.ErrShape},
	} {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.what, c.err, c.want)
		} else {
			t.Logf("%s: %v", c.what, c.err)
		}
	}
}
