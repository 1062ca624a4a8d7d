package cpu

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/finlora/finlora/quant"
	"github.com/finlora/finlora/runtime/tensor"
)

// quantHosts quantizes random [rows, cols] weights in every layout the backend takes.
func quantHosts(t testing.TB, rows, cols int, seed uint64) map[string]*tensor.QuantHost {
	g := rand.New(rand.NewPCG(seed, 1))
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(g.NormFloat64()) * 0.05
	}
	out := map[string]*tensor.QuantHost{}
	for _, o := range []quant.Options4{
		{Type: quant.NF4}, {Type: quant.NF4, DoubleQuant: true}, {Type: quant.FP4, DoubleQuant: true, BlockSize: 128},
		{Type: quant.NF4, DoubleQuant: true, DType: "bfloat16"}, {Type: quant.FP4, DType: "float16"},
	} {
		v := append([]float32(nil), w...)
		if o.DType != "" {
			if err := quant.RoundToDType(v, o.DType); err != nil {
				t.Fatal(err)
			}
		}
		q, err := quant.Quantize4(v, []int{rows, cols}, o)
		if err != nil {
			t.Fatal(err)
		}
		h, err := q.Host()
		if err != nil {
			t.Fatal(err)
		}
		out[fmt.Sprintf("%s/bs%d/dq=%v/%s", o.Type, q.BlockSize, o.DoubleQuant, q.DType)] = h
	}
	q8, err := quant.QuantizeInt8(w, rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	h8, err := q8.Host()
	if err != nil {
		t.Fatal(err)
	}
	out["int8"] = h8
	return out
}

// TestQuantMatMulEqualsDenseGemm: QuantToFloat32 gives package quant's dequantized values, and
// QuantMatMul in both layouts equals Gemm on the dense dequantized weight bit for bit (same
// kernels, same float64 sums), for odd shapes, partial tiles, alpha and beta.
func TestQuantMatMulEqualsDenseGemm(t *testing.T) {
	for _, workers := range []int{1, 3} {
		b := New(workers)
		for _, sh := range [][3]int{{7, 65, 3}, {37, 130, 70}, {64, 256, 5}} {
			rows, cols, m := sh[0], sh[1], sh[2]
			for name, h := range quantHosts(t, rows, cols, uint64(rows*cols)) {
				t.Run(fmt.Sprintf("w%d/%dx%d/m%d/%s", workers, rows, cols, m, name), func(t *testing.T) {
					before := b.MemStats()
					q, err := b.QuantFromHost(h)
					if err != nil {
						t.Fatal(err)
					}
					deq, err := b.QuantToFloat32(q)
					if err != nil {
						t.Fatal(err)
					}
					want := refDequant(h)
					for i := range want {
						if deq[i] != want[i] && !(deq[i] != deq[i] && want[i] != want[i]) {
							t.Fatalf("element %d: %v, reference %v", i, deq[i], want[i])
						}
					}
					dense, _ := b.FromFloat32(tensor.F32, []int{rows, cols}, deq)
					g := rand.New(rand.NewPCG(3, 4))
					randT := func(r, c int) *tensor.Tensor {
						v := make([]float32, r*c)
						for i := range v {
							v[i] = float32(g.NormFloat64())
						}
						x, _ := b.FromFloat32(tensor.F32, []int{r, c}, v)
						return x
					}
					for _, trans := range []bool{true, false} {
						k, n := cols, rows
						if !trans {
							k, n = rows, cols
						}
						x := randT(m, k)
						for _, ab := range [][2]float32{{1, 0}, {0.5, 1}} {
							got, ref := randT(m, n), randT(m, n)
							if err := b.Copy(ref, got); err != nil {
								t.Fatal(err)
							}
							if err := b.QuantMatMul(got, x, q, trans, ab[0], ab[1]); err != nil {
								t.Fatal(err)
							}
							if err := b.Gemm(ref, x, dense, false, trans, ab[0], ab[1]); err != nil {
								t.Fatal(err)
							}
							gv, _ := b.ToFloat32(got)
							rv, _ := b.ToFloat32(ref)
							for i := range gv {
								if gv[i] != rv[i] {
									t.Fatalf("trans=%v alpha,beta=%v: out[%d] = %v, dense Gemm %v", trans, ab, i, gv[i], rv[i])
								}
							}
							tensor.FreeAll(got, ref)
						}
						x.Free()
					}
					if err := b.QuantMatMul(dense, dense, q, true, 1, 0); !errors.Is(err, tensor.ErrShape) && rows != cols {
						t.Errorf("bad shapes: %v", err)
					}
					dense.Free()
					if err := q.Free(); err != nil {
						t.Fatal(err)
					}
					if after := b.MemStats(); after.Current != before.Current || after.Tensors != before.Tensors {
						t.Errorf("memory not returned: %+v then %+v", before, after)
					}
					if _, err := b.QuantToFloat32(q); !errors.Is(err, tensor.ErrFreed) {
						t.Errorf("use after free: %v", err)
					}
				})
			}
		}
	}
}

// refDequant decodes h with package quant's reference dequantizers.
func refDequant(h *tensor.QuantHost) []float32 {
	if h.Format == tensor.QuantInt8 {
		q := &quant.WeightInt8{Rows: h.Rows, Cols: h.Cols, Q: h.Int8, SCB: h.SCB}
		return q.Dequantize(nil)
	}
	w := &quant.Weight4{Type: quant.NF4, Shape: []int{h.Rows, h.Cols}, BlockSize: h.BlockSize, Packed: h.Packed,
		Absmax: h.Absmax, DType: map[tensor.DType]string{tensor.F32: "float32", tensor.BF16: "bfloat16", tensor.F16: "float16"}[h.Round]}
	if h.Format == tensor.QuantFP4 {
		w.Type = quant.FP4
	}
	if h.Absmax == nil {
		w.Nested = &quant.NestedAbsmax{Codes: h.AbsmaxCodes, Absmax: h.NestedAbsmax, Offset: h.NestedOffset,
			BlockSize: h.NestedBlockSize, Map: h.NestedMap}
	}
	return w.Dequantize(nil)
}

func TestQuantHostCheck(t *testing.T) {
	h := quantHosts(t, 8, 64, 1)["nf4/bs64/dq=true/float32"]
	bad := *h
	bad.AbsmaxCodes = bad.AbsmaxCodes[:1]
	if _, err := New(1).QuantFromHost(&bad); !errors.Is(err, tensor.ErrShape) {
		t.Errorf("short absmax codes: %v", err)
	}
	bad = *h
	bad.BlockSize = 48
	if _, err := New(1).QuantFromHost(&bad); !errors.Is(err, tensor.ErrShape) {
		t.Errorf("block size 48: %v", err)
	}
}
