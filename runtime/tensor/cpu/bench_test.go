package cpu

import (
	"fmt"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
)

// BenchmarkGemm reports GFLOP/s of the two Gemm layouts the model uses: x·Wᵀ (forward) and dy·W
// (backward), for SmolLM2-135M-sized weights.
//
//	go test -run - -bench Gemm ./runtime/tensor/cpu/
func BenchmarkGemm(b *testing.B) {
	be := New(0)
	for _, tc := range []struct {
		m, n, k int
		transB  bool
		dt      tensor.DType
	}{
		{64, 1536, 576, true, tensor.BF16},
		{64, 1536, 576, true, tensor.F32},
		{1, 1536, 576, true, tensor.BF16},
		{64, 576, 1536, false, tensor.BF16},
		{64, 576, 1536, false, tensor.F32},
	} {
		name := fmt.Sprintf("%dx%dx%d/transB=%v/%s", tc.m, tc.n, tc.k, tc.transB, tc.dt)
		b.Run(name, func(b *testing.B) {
			a, _ := be.Alloc(tensor.F32, tc.m, tc.k)
			ws := []int{tc.k, tc.n}
			if tc.transB {
				ws = []int{tc.n, tc.k}
			}
			w, _ := be.Alloc(tc.dt, ws...)
			out, _ := be.Alloc(tensor.F32, tc.m, tc.n)
			defer tensor.FreeAll(a, w, out)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := be.Gemm(out, a, w, false, tc.transB, 1, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(2*float64(tc.m*tc.n*tc.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
