package cuda

import (
	"fmt"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
)

// TestRMSNormWide: rmsnorm4 (d ≥ 1024, d % 4 == 0: the model widths) against the CPU, out of place
// and in place, bf16 and f32 weights, with and without the 1 + w form, at the float32 bound.
func TestRMSNormWide(t *testing.T) {
	for _, d := range []int{1024, 4096, 5120} {
		for _, wdt := range []tensor.DType{tensor.BF16, tensor.F32} {
			for _, addOne := range []bool{false, true} {
				t.Run(fmt.Sprintf("d%d/%s/addOne=%v", d, wdt, addOne), func(t *testing.T) {
					p := newPair(t)
					defer p.free()
					xg, xc := p.rand(tensor.F32, 2, 3, d)
					wg, wc := p.rand(wdt, 0.5, d)
					og, oc := p.zeros(3, d)
					be := p.g.(*Backend)
					be.StartProfile()
					if err := p.g.RMSNorm(og, xg, wg, 1e-5, addOne); err != nil {
						t.Fatal(err)
					}
					prof, err := be.StopProfile()
					if err != nil {
						t.Fatal(err)
					}
					if len(prof) != 1 || prof[0].Name != "rmsnorm4" {
						t.Errorf("kernels run: %v, want rmsnorm4", prof)
					}
					if err := p.c.RMSNorm(oc, xc, wc, 1e-5, addOne); err != nil {
						t.Fatal(err)
					}
					p.same("rmsnorm", og, oc, 1e-5)
					if err := p.g.RMSNorm(xg, xg, wg, 1e-5, addOne); err != nil {
						t.Fatal(err)
					}
					p.same("rmsnorm in place", xg, oc, 1e-5)
				})
			}
		}
	}
}
