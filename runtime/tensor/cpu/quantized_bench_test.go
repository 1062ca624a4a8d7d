package cpu

import (
	"fmt"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
)

// BenchmarkQuantMatMul reports GFLOP/s of QuantMatMul on NF4 (double quantized), FP4 and LLM.int8
// weights next to Gemm on F32 and BF16 weights of the same shape, in the forward (x·Wᵀ; m = 1 is a
// decode step, m = 64 prefill/training) and backward (dy·W) layouts, with the weight's resident
// bytes per element ("B/weight"):
//
//	go test -run - -bench QuantMatMul ./runtime/tensor/cpu/
func BenchmarkQuantMatMul(b *testing.B) {
	be := New(0)
	const rows, cols = 2048, 2048
	hosts := quantHosts(b, rows, cols, 7)
	formats := []string{"f32", "bf16", "nf4/bs64/dq=true/float32", "fp4/bs128/dq=true/float32", "int8"}
	for _, tc := range []struct {
		m     int
		trans bool
	}{{1, true}, {64, true}, {64, false}} {
		for _, f := range formats {
			name := fmt.Sprintf("m=%d/transW=%v/%s", tc.m, tc.trans, f[:min(len(f), 4)])
			b.Run(name, func(b *testing.B) {
				k, n := cols, rows
				if !tc.trans {
					k, n = rows, cols
				}
				x, _ := be.Alloc(tensor.F32, tc.m, k)
				out, _ := be.Alloc(tensor.F32, tc.m, n)
				defer tensor.FreeAll(x, out)
				var run func() error
				var bytes int64
				switch f {
				case "f32", "bf16":
					dt := map[string]tensor.DType{"f32": tensor.F32, "bf16": tensor.BF16}[f]
					w, _ := be.Alloc(dt, rows, cols)
					defer w.Free()
					bytes = w.Bytes()
					run = func() error { return be.Gemm(out, x, w, false, tc.trans, 1, 0) }
				default:
					q, err := be.QuantFromHost(hosts[f])
					if err != nil {
						b.Fatal(err)
					}
					defer q.Free()
					bytes = q.Bytes()
					run = func() error { return be.QuantMatMul(out, x, q, tc.trans, 1, 0) }
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := run(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(2*float64(tc.m*rows*cols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				b.ReportMetric(float64(bytes)/float64(rows*cols), "B/weight")
			})
		}
	}
}

// BenchmarkDequantTile reports the cost of dequantizing one 16-row tile of a 2048-wide weight
// (what QuantMatMul adds to a dense Gemm per weight element and row block).
func BenchmarkDequantTile(b *testing.B) {
	hosts := quantHosts(b, 2048, 2048, 7)
	for _, f := range []string{"nf4/bs64/dq=true/float32", "int8"} {
		h := hosts[f]
		s := &qstore{h: *h, lut: h.Codebook}
		dst := make([]float32, tileN*2048)
		b.Run(f[:4], func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				s.dequant((i%(2048/tileN))*tileN*2048, dst)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(dst)), "ns/elem")
		})
	}
}
