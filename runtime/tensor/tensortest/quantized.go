package tensortest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/finlora/finlora/quant"
	"github.com/finlora/finlora/runtime/tensor"
)

// QuantHosts quantizes random [rows, cols] weights (N(0, 0.05²), seeded) in every layout of
// tensor.QuantHost, keyed by a name such as "nf4/bs64/dq=true/float32" or "int8", with package
// quant's reference coders. For backend tests and benchmarks.
func QuantHosts(tb testing.TB, rows, cols int, seed uint64) map[string]*tensor.QuantHost {
	tb.Helper()
	r := rng(fmt.Sprint("quant", rows, cols, seed))
	w := randn(r, rows*cols)
	for i := range w {
		w[i] *= 0.05
	}
	return QuantizeHosts(tb, w, rows, cols)
}

// QuantizeHosts quantizes the [rows, cols] weights w (row-major; left unchanged) in every layout
// of tensor.QuantHost, keyed as by QuantHosts, with package quant's reference coders: 4-bit NF4 and
// FP4 with and without double quantization, block sizes 64 and 128, rounding dtypes float32,
// bfloat16 and float16 (w rounded to the dtype first), and int8. For backend tests that draw their
// own weights.
func QuantizeHosts(tb testing.TB, w []float32, rows, cols int) map[string]*tensor.QuantHost {
	tb.Helper()
	out := map[string]*tensor.QuantHost{}
	for _, o := range []quant.Options4{
		{Type: quant.NF4}, {Type: quant.NF4, DoubleQuant: true}, {Type: quant.FP4, DoubleQuant: true, BlockSize: 128},
		{Type: quant.NF4, DoubleQuant: true, DType: "bfloat16"}, {Type: quant.FP4, DType: "float16"},
	} {
		v := append([]float32(nil), w...)
		if o.DType != "" {
			if err := quant.RoundToDType(v, o.DType); err != nil {
				tb.Fatal(err)
			}
		}
		q, err := quant.Quantize4(v, []int{rows, cols}, o)
		if err != nil {
			tb.Fatal(err)
		}
		h, err := q.Host()
		if err != nil {
			tb.Fatal(err)
		}
		out[fmt.Sprintf("%s/bs%d/dq=%v/%s", o.Type, q.BlockSize, o.DoubleQuant, q.DType)] = h
	}
	q8, err := quant.QuantizeInt8(w, rows, cols)
	if err != nil {
		tb.Fatal(err)
	}
	h8, err := q8.Host()
	if err != nil {
		tb.Fatal(err)
	}
	out["int8"] = h8
	return out
}

// RefDequantize decodes h with package quant's reference dequantizers (bitsandbytes' values).
func RefDequantize(h *tensor.QuantHost) []float32 {
	if h.Format == tensor.QuantInt8 {
		return (&quant.WeightInt8{Rows: h.Rows, Cols: h.Cols, Q: h.Int8, SCB: h.SCB}).Dequantize(nil)
	}
	w := &quant.Weight4{Type: quant.NF4, Shape: []int{h.Rows, h.Cols}, BlockSize: h.BlockSize, Packed: h.Packed,
		Absmax: h.Absmax, DType: map[tensor.DType]string{tensor.Invalid: "float32", tensor.F32: "float32", tensor.BF16: "bfloat16", tensor.F16: "float16"}[h.Round]}
	if h.Format == tensor.QuantFP4 {
		w.Type = quant.FP4
	}
	if h.Absmax == nil {
		w.Nested = &quant.NestedAbsmax{Codes: h.AbsmaxCodes, Absmax: h.NestedAbsmax, Offset: h.NestedOffset,
			BlockSize: h.NestedBlockSize, Map: h.NestedMap}
	}
	return w.Dequantize(nil)
}

// RunQuantized is the conformance suite of the tensor.Quantized extension (b must implement it):
// for every layout and a few shapes (odd element counts, partial tiles),
//
//   - QuantToFloat32 equals package quant's dequantization exactly (bitsandbytes' float32
//     arithmetic: products rounded to float32, no fused multiply-add, then rounding to the
//     weight's dtype);
//   - QuantMatMul in both layouts (x·Wᵀ and x·W), with alpha and beta, is within tol (relative to
//     max(1, max |want|)) of a float64 product with those dequantized values; with tol = 0 it must
//     equal b.Gemm on the dequantized dense weight bit for bit (the CPU reference's contract);
//   - freeing returns the bytes to MemStats, and a freed QTensor is ErrFreed; bad layouts are
//     ErrShape.
//
// A GPU backend that dequantizes into bf16 before its GEMM needs a tol of about 1e-2; one that
// computes in float32 passes with the Gemm tolerance (2e-5).
func RunQuantized(t *testing.T, b tensor.Backend, tol float64) {
	qb, ok := b.(tensor.Quantized)
	if !ok {
		t.Fatalf("backend %s does not implement tensor.Quantized", b.Name())
	}
	for _, sh := range [][3]int{{7, 65, 3}, {37, 130, 70}, {64, 256, 1}} {
		rows, cols, m := sh[0], sh[1], sh[2]
		for name, h := range QuantHosts(t, rows, cols, uint64(rows*cols)) {
			t.Run(fmt.Sprintf("%dx%d/m%d/%s", rows, cols, m, name), func(t *testing.T) {
				runQuantCase(t, b, qb, h, m, tol)
			})
		}
	}
	h := QuantHosts(t, 8, 64, 1)["nf4/bs64/dq=true/float32"]
	bad := *h
	bad.AbsmaxCodes = bad.AbsmaxCodes[:1]
	if _, err := qb.QuantFromHost(&bad); !errors.Is(err, tensor.ErrShape) {
		t.Errorf("short absmax codes: %v, want ErrShape", err)
	}
	bad = *h
	bad.BlockSize = 48
	if _, err := qb.QuantFromHost(&bad); !errors.Is(err, tensor.ErrShape) {
		t.Errorf("block size 48: %v, want ErrShape", err)
	}
}

func runQuantCase(t *testing.T, b tensor.Backend, qb tensor.Quantized, h *tensor.QuantHost, m int, tol float64) {
	e := &env{t: t, b: b}
	defer e.free()
	before := b.MemStats()
	q, err := qb.QuantFromHost(h)
	if err != nil {
		t.Fatal(err)
	}
	deq, err := qb.QuantToFloat32(q)
	if err != nil {
		t.Fatal(err)
	}
	want := RefDequantize(h)
	for i := range want {
		if deq[i] != want[i] && !(deq[i] != deq[i] && want[i] != want[i]) {
			t.Fatalf("dequantized element %d: %v, reference %v", i, deq[i], want[i])
		}
	}
	dense := e.from(tensor.F32, []int{h.Rows, h.Cols}, deq)
	r := rng(fmt.Sprint(h.Format, h.Rows, h.Cols, m))
	for _, trans := range []bool{true, false} {
		k, n := h.Cols, h.Rows
		if !trans {
			k, n = h.Rows, h.Cols
		}
		xv := randn(r, m*k)
		x := e.from(tensor.F32, []int{m, k}, xv)
		for _, ab := range [][2]float32{{1, 0}, {0.5, 1}} {
			init := randn(r, m*n)
			got := e.from(tensor.F32, []int{m, n}, init)
			if err := qb.QuantMatMul(got, x, q, trans, ab[0], ab[1]); err != nil {
				t.Fatal(err)
			}
			gv := e.host(got)
			ref := make([]float64, m*n)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					var s float64
					for p := 0; p < k; p++ {
						var wv float32
						if trans {
							wv = deq[j*h.Cols+p] // x·Wᵀ: W[j, p]
						} else {
							wv = deq[p*h.Cols+j] // x·W: W[p, j]
						}
						s += float64(xv[i*k+p]) * float64(wv)
					}
					ref[i*n+j] = float64(ab[0])*s + float64(ab[1])*float64(init[i*n+j])
				}
			}
			near(t, fmt.Sprintf("QuantMatMul trans=%v alpha,beta=%v", trans, ab), gv, ref, max(tol, 2e-6))
			if tol == 0 {
				dg := e.from(tensor.F32, []int{m, n}, init)
				if err := b.Gemm(dg, x, dense, false, trans, ab[0], ab[1]); err != nil {
					t.Fatal(err)
				}
				for i, v := range e.host(dg) {
					if gv[i] != v {
						t.Fatalf("trans=%v alpha,beta=%v: out[%d] = %v, Gemm on the dequantized weight %v", trans, ab, i, gv[i], v)
					}
				}
			}
		}
	}
	if err := q.Free(); err != nil {
		t.Fatal(err)
	}
	var scratch int64
	for _, x := range e.live {
		scratch += x.Bytes()
	}
	if after := b.MemStats(); after.Current != before.Current+scratch || after.Tensors != before.Tensors+len(e.live) {
		t.Errorf("memory not returned: %+v then %+v (%d scratch tensors of %d bytes live)", before, after, len(e.live), scratch)
	}
	if _, err := qb.QuantToFloat32(q); !errors.Is(err, tensor.ErrFreed) {
		t.Errorf("use after free: %v, want ErrFreed", err)
	}
}
