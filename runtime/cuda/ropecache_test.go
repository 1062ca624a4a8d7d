package cuda

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tensor/cpu"
)

// TestRopeQKCache: RopeQKCache (one launch of rope_qk_cache) leaves q, k and both caches with the
// same bits as Rope(q), Rope(k), SetSlice(ck, k), SetSlice(cv, v) on the GPU (the slots outside
// start..start+T−1 untouched), and matches the CPU backend's RopeQKCache, at a Llama-3.1-8B decode
// step (B 1, T 1, 32/8 heads of 128), a batched prefill and a first chunk at slot 0.
func TestRopeQKCache(t *testing.T) {
	b := gpu(t)
	c := cpu.New(0)
	for _, s := range []struct{ B, T, Hq, Hkv, D, C, P, start int }{
		{1, 1, 32, 8, 128, 64, 80, 17},
		{2, 5, 4, 2, 16, 12, 20, 3},
		{3, 4, 6, 3, 8, 4, 9, 0},
	} {
		t.Run(fmt.Sprintf("B%d_T%d_Hq%d_Hkv%d_D%d_C%d_start%d", s.B, s.T, s.Hq, s.Hkv, s.D, s.C, s.start), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(s.D), uint64(s.T)))
			vals := func(n int) []float32 {
				v := make([]float32, n)
				for i := range v {
					v[i] = float32(r.NormFloat64())
				}
				return v
			}
			shapes := [][]int{{s.B, s.T, s.Hq, s.D}, {s.B, s.T, s.Hkv, s.D}, {s.B, s.T, s.Hkv, s.D}, {s.B, s.C, s.Hkv, s.D}, {s.B, s.C, s.Hkv, s.D}}
			names := []string{"q", "k", "v", "ck", "cv"}
			host := make([][]float32, len(shapes))
			for i, sh := range shapes {
				host[i] = vals(tensor.Numel(sh))
			}
			angles := make([]float32, s.P*s.D/2)
			cosv, sinv := make([]float32, len(angles)), make([]float32, len(angles))
			for i := range angles {
				a := float64(i/(s.D/2)) * math.Pow(500000, -float64(2*(i%(s.D/2)))/float64(s.D))
				cosv[i], sinv[i] = float32(math.Cos(a)), float32(math.Sin(a))
			}
			posv := make([]int32, s.B*s.T)
			for i := range posv {
				posv[i] = int32(r.IntN(s.P))
			}
			var free []*tensor.Tensor
			defer func() { tensor.FreeAll(free...) }()
			mk := func(be tensor.Backend) [5]*tensor.Tensor {
				var ts [5]*tensor.Tensor
				for i, sh := range shapes {
					x, err := be.FromFloat32(tensor.F32, sh, host[i])
					if err != nil {
						t.Fatal(err)
					}
					ts[i] = x
					free = append(free, x)
				}
				return ts
			}
			tables := func(be tensor.Backend) (cos, sin, pos *tensor.Tensor) {
				var err error
				if cos, err = be.FromFloat32(tensor.F32, []int{s.P, s.D / 2}, cosv); err != nil {
					t.Fatal(err)
				}
				sin, _ = be.FromFloat32(tensor.F32, []int{s.P, s.D / 2}, sinv)
				pos, _ = be.FromInt32([]int{s.B, s.T}, posv)
				free = append(free, cos, sin, pos)
				return
			}
			cos, sin, pos := tables(b)
			fused, four := mk(b), mk(b)
			for i := 0; i < 2; i++ { // the second call takes the validated-positions path (posvalid.go)
				if i == 1 {
					fused = mk(b)
				}
				if err := b.RopeQKCache(fused[0], fused[1], fused[2], pos, cos, sin, fused[3], fused[4], s.start); err != nil {
					t.Fatal(err)
				}
			}
			for _, err := range []error{b.Rope(four[0], pos, cos, sin), b.Rope(four[1], pos, cos, sin),
				b.SetSlice(four[3], four[1], 1, s.start), b.SetSlice(four[4], four[2], 1, s.start)} {
				if err != nil {
					t.Fatal(err)
				}
			}
			ccos, csin, cpos := tables(c)
			ref := mk(c)
			if err := c.RopeQKCache(ref[0], ref[1], ref[2], cpos, ccos, csin, ref[3], ref[4], s.start); err != nil {
				t.Fatal(err)
			}
			for i, n := range names {
				got, err := b.ToFloat32(fused[i])
				if err != nil {
					t.Fatal(err)
				}
				want, _ := b.ToFloat32(four[i])
				cv, _ := c.ToFloat32(ref[i])
				worst := 0.0
				for j := range got {
					if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
						t.Fatalf("%s[%d] = %g, the four ops give %g", n, j, got[j], want[j])
					}
					worst = math.Max(worst, math.Abs(float64(got[j])-float64(cv[j])))
				}
				if worst > 1e-6 {
					t.Errorf("%s: max difference from the CPU backend %.3g", n, worst)
				} else {
					t.Logf("%s: equal to the four ops; max difference from the CPU %.3g", n, worst)
				}
			}
		})
	}
}

// TestRopeQKCachePositions: RopeQKCache reports a position outside the table as ErrShape, as Rope
// does, remembers positions it found valid (posvalid.go) and keeps them validated across its own
// launch, and checks again after they are written.
func TestRopeQKCachePositions(t *testing.T) {
	b := gpu(t)
	const B, T, Hq, Hkv, D, C, P = 1, 2, 4, 2, 8, 6, 8
	tab := make([]float32, P*D/2)
	for i := range tab {
		tab[i] = float32(i%7) * 0.1
	}
	cos, err := b.FromFloat32(tensor.F32, []int{P, D / 2}, tab)
	if err != nil {
		t.Fatal(err)
	}
	defer cos.Free()
	var ts []*tensor.Tensor
	for _, sh := range [][]int{{B, T, Hq, D}, {B, T, Hkv, D}, {B, T, Hkv, D}, {B, C, Hkv, D}, {B, C, Hkv, D}} {
		x, err := b.Alloc(tensor.F32, sh...)
		if err != nil {
			t.Fatal(err)
		}
		defer x.Free()
		ts = append(ts, x)
	}
	pos, _ := b.FromInt32([]int{B, T}, []int32{1, 3})
	defer pos.Free()
	bad, _ := b.FromInt32([]int{B, T}, []int32{1, P})
	defer bad.Free()
	call := func(start int, wantBad bool) {
		t.Helper()
		err := b.RopeQKCache(ts[0], ts[1], ts[2], pos, cos, cos, ts[3], ts[4], start)
		if wantBad != errors.Is(err, tensor.ErrShape) || (!wantBad && err != nil) {
			t.Fatalf("rope qk cache: %v, want bad position %v", err, wantBad)
		}
	}
	blk := pos.Data().(*Block)
	call(0, false)
	if !b.dev.posChecked(blk, P) {
		t.Fatal("valid positions not remembered")
	}
	call(2, false) // the validated path
	if !b.dev.posChecked(blk, P) {
		t.Fatal("rope_qk_cache's own launch dropped the validated positions")
	}
	if err := b.Copy(pos, bad); err != nil {
		t.Fatal(err)
	}
	if b.dev.posChecked(blk, P) {
		t.Fatal("a copy into the positions kept them validated")
	}
	call(0, true)
	if err := b.RopeQKCache(ts[0], ts[1], ts[2], pos, cos, cos, ts[3], ts[4], C-T+1); !errors.Is(err, tensor.ErrShape) {
		t.Fatalf("slots past the cache capacity: %v, want ErrShape", err)
	}
}
