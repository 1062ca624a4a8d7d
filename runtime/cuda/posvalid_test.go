package cuda

import (
	"errors"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
)

// TestRopePositionCache: Rope skips re-checking a position tensor it found valid only while
// nothing may have written it: a copy into it, a launch that is given it, or a smaller table makes
// the next Rope check again (and a bad position is then reported as ErrShape).
func TestRopePositionCache(t *testing.T) {
	b := gpu(t)
	const P, H, D = 8, 2, 4
	tab := make([]float32, P*D/2)
	for i := range tab {
		tab[i] = float32(i%5) * 0.1
	}
	cos, err := b.FromFloat32(tensor.F32, []int{P, D / 2}, tab)
	if err != nil {
		t.Fatal(err)
	}
	defer cos.Free()
	small, _ := b.FromFloat32(tensor.F32, []int{2, D / 2}, tab[:D])
	defer small.Free()
	x, _ := b.Alloc(tensor.F32, 1, 2, H, D)
	defer x.Free()
	pos, _ := b.FromInt32([]int{1, 2}, []int32{1, 3})
	defer pos.Free()
	good, _ := b.FromInt32([]int{1, 2}, []int32{1, 3})
	defer good.Free()
	bad, _ := b.FromInt32([]int{1, 2}, []int32{1, P})
	defer bad.Free()
	blk := pos.Data().(*Block)
	rope := func(c *tensor.Tensor, wantBad bool) {
		t.Helper()
		err := b.Rope(x, pos, c, c)
		if wantBad != errors.Is(err, tensor.ErrShape) || (!wantBad && err != nil) {
			t.Fatalf("rope: %v, want bad position %v", err, wantBad)
		}
	}
	rope(cos, false)
	if !b.dev.posChecked(blk, P) {
		t.Fatal("valid positions not remembered")
	}
	rope(cos, false) // the cached path
	if !b.dev.posChecked(blk, P) {
		t.Fatal("rope's own launch dropped the validated positions")
	}
	rope(small, true) // a smaller table: checked again
	rope(cos, false)
	if err := b.Copy(pos, bad); err != nil {
		t.Fatal(err)
	}
	if b.dev.posChecked(blk, P) {
		t.Fatal("a copy into the positions kept them validated")
	}
	rope(cos, true)
	if err := b.Copy(pos, good); err != nil {
		t.Fatal(err)
	}
	rope(cos, false)
	out, _ := b.Alloc(tensor.F32, 2, D/2)
	defer out.Free()
	if err := b.Embedding(out, cos, pos); err != nil { // a launch given the positions
		t.Fatal(err)
	}
	if b.dev.posChecked(blk, P) {
		t.Fatal("a launch given the positions kept them validated")
	}
}
