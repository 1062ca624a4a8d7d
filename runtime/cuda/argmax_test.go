package cuda

import (
	"math/rand/v2"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
)

// TestArgMaxWide: the vectorized argmax (float4 loads, V % 4 == 0) on vocabulary-sized rows with
// the maximum repeated (the first index wins) and on a row width that takes the scalar loop.
func TestArgMaxWide(t *testing.T) {
	b := gpu(t)
	g := rand.New(rand.NewPCG(7, 8))
	for _, v := range []int{128256, 128257, 262144} {
		const rows = 3
		x := make([]float32, rows*v)
		for i := range x {
			x[i] = float32(g.NormFloat64())
		}
		want := make([]int32, rows)
		for r := 0; r < rows; r++ {
			at := g.IntN(v / 2)
			x[r*v+at], x[r*v+v-1-at] = 100, 100 // a tie: the lower index wins
			want[r] = int32(at)
		}
		xt, err := b.FromFloat32(tensor.F32, []int{rows, v}, x)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := b.FromInt32([]int{rows}, make([]int32, rows))
		if err := b.ArgMax(out, xt); err != nil {
			t.Fatal(err)
		}
		got, _ := b.ToInt32(out)
		for r := range want {
			if got[r] != want[r] {
				t.Errorf("V=%d row %d: argmax %d, want %d", v, r, got[r], want[r])
			}
		}
		xt.Free()
		out.Free()
	}
}
