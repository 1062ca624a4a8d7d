package cuda

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
)

// convert_bf16v (aligned float32 → bf16, 8 a thread) gives the same bits as the host's
// tensor.Float32ToBF16 for every value class (ties, NaN, infinities, zeros, subnormals) and every
// length's tail; an unaligned source falls back to convert with the same bits.
func TestConvertBF16Vec(t *testing.T) {
	b := gpu(t)
	r := rand.New(rand.NewPCG(5, 6))
	special := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), math.Float32frombits(0x7f800001), math.Float32frombits(0x3f808000), // tie, even
		math.Float32frombits(0x3f818000), math.Float32frombits(0x3f80ffff), math.Float32frombits(0x00000001),
		math.Float32frombits(0x807fffff), math.MaxFloat32, -math.MaxFloat32}
	for _, n := range []int{1, 7, 8, 9, 15, 16, 17, 1000, 3*4096 + 5} {
		for _, off := range []int{0, 1} { // off 1: the source starts 4 bytes into its block
			v := make([]float32, n+off)
			for i := range v {
				v[i] = float32(r.NormFloat64() * math.Exp(r.NormFloat64()*8))
				if r.IntN(8) == 0 {
					v[i] = special[r.IntN(len(special))]
				}
			}
			src, err := b.FromFloat32(tensor.F32, []int{n + off}, v)
			if err != nil {
				t.Fatal(err)
			}
			dst, err := b.Alloc(tensor.BF16, n)
			if err != nil {
				t.Fatal(err)
			}
			b.StartProfile()
			func() {
				defer b.lock()()
				err = b.convertF32(dst.Data().(*Block).Ptr, dtypeCode(tensor.BF16), src.Data().(*Block).Ptr+uintptr(4*off), n)
			}()
			prof, perr := b.StopProfile()
			if err != nil || perr != nil {
				t.Fatal(err, perr)
			}
			wantKernel := map[int]string{0: "convert_bf16v", 1: "convert"}[off]
			if len(prof) != 1 || prof[0].Name != wantKernel {
				t.Errorf("n %d offset %d: ran %+v, want %s", n, off, prof, wantKernel)
			}
			got, err := b.ToFloat32(dst)
			if err != nil {
				t.Fatal(err)
			}
			bad := 0
			for i := 0; i < n; i++ {
				want := tensor.Float32ToBF16(v[i+off])
				g := math.Float32bits(got[i])
				if g != uint32(want)<<16 && !(math.IsNaN(float64(got[i])) && math.IsNaN(float64(v[i+off]))) {
					if bad++; bad <= 5 {
						t.Errorf("n %d offset %d [%d]: %#08x → %#04x, want %#04x", n, off, i, math.Float32bits(v[i+off]), g>>16, want)
					}
				}
			}
			src.Free()
			dst.Free()
		}
	}
}
