// Package tensortest is the conformance suite every tensor.Backend runs: each op on fresh random
// inputs against a float64 reference written here, with per-dtype error bounds. A backend's test
// calls Run(t, backend).
package tensortest

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
)

// Tolerance is the allowed max |got − want| / max(1, max |want|) of an op's output, by the dtype of
// its weight operand (the compute is float32 everywhere; narrow storage only rounds the inputs,
// and the reference sees the same rounded inputs).
var Tolerance = map[tensor.DType]float64{tensor.F32: 2e-5, tensor.F16: 2e-5, tensor.BF16: 2e-5}

// rng returns a deterministic generator per test name.
func rng(name string) *rand.Rand {
	var h uint64 = 1469598103934665603
	for _, c := range name {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return rand.New(rand.NewPCG(h, 7))
}

func randn(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// rounded returns what the values become once stored as dtype (the reference uses these).
func rounded(dt tensor.DType, v []float32) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		switch dt {
		case tensor.BF16:
			out[i] = tensor.BF16ToFloat32(tensor.Float32ToBF16(x))
		case tensor.F16:
			out[i] = tensor.F16ToFloat32(tensor.Float32ToF16(x))
		default:
			out[i] = x
		}
	}
	return out
}

type env struct {
	t    *testing.T
	b    tensor.Backend
	live []*tensor.Tensor
}

func (e *env) from(dt tensor.DType, shape []int, v []float32) *tensor.Tensor {
	e.t.Helper()
	x, err := e.b.FromFloat32(dt, shape, v)
	if err != nil {
		e.t.Fatalf("FromFloat32(%s, %v): %v", dt, shape, err)
	}
	e.live = append(e.live, x)
	return x
}

func (e *env) ints(shape []int, v []int32) *tensor.Tensor {
	e.t.Helper()
	x, err := e.b.FromInt32(shape, v)
	if err != nil {
		e.t.Fatalf("FromInt32(%v): %v", shape, err)
	}
	e.live = append(e.live, x)
	return x
}

func (e *env) zeros(dt tensor.DType, shape ...int) *tensor.Tensor {
	e.t.Helper()
	x, err := e.b.Alloc(dt, shape...)
	if err != nil {
		e.t.Fatalf("Alloc(%s, %v): %v", dt, shape, err)
	}
	e.live = append(e.live, x)
	return x
}

func (e *env) host(x *tensor.Tensor) []float32 {
	e.t.Helper()
	v, err := e.b.ToFloat32(x)
	if err != nil {
		e.t.Fatalf("ToFloat32(%v): %v", x, err)
	}
	return v
}

func (e *env) free() {
	if err := tensor.FreeAll(e.live...); err != nil {
		e.t.Errorf("free: %v", err)
	}
}

// near fails the test when got and want differ by more than tol relative to max(1, max |want|).
func near(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	scale, worst, at := 1.0, 0.0, 0
	for _, w := range want {
		scale = math.Max(scale, math.Abs(w))
	}
	for i := range got {
		d := math.Abs(float64(got[i]) - want[i])
		if math.IsNaN(float64(got[i])) {
			d = math.Inf(1)
		}
		if d > worst {
			worst, at = d, i
		}
	}
	if worst/scale > tol {
		t.Errorf("%s: max error %.3g at %d (got %g, want %g), relative %.3g > %.3g", what, worst, at, got[at], want[at], worst/scale, tol)
	}
}

// Run runs the whole suite on b.
func Run(t *testing.T, b tensor.Backend) {
	t.Run("memory", func(t *testing.T) { testMemory(t, b) })
	t.Run("gemm", func(t *testing.T) { testGemm(t, b) })
	t.Run("elementwise", func(t *testing.T) { testElementwise(t, b) })
	t.Run("rmsnorm", func(t *testing.T) { testRMSNorm(t, b) })
	t.Run("rope", func(t *testing.T) { testRope(t, b) })
	t.Run("attention", func(t *testing.T) { testAttention(t, b) })
	t.Run("embedding", func(t *testing.T) { testEmbedding(t, b) })
	t.Run("softmax-ce-argmax", func(t *testing.T) { testSoftmaxCE(t, b) })
	t.Run("slice", func(t *testing.T) { testSlice(t, b) })
	t.Run("errors", func(t *testing.T) { testErrors(t, b) })
}

// NLL is the negative log-likelihood −log softmax(row)[label] of one row of logits, in float64 with
// the row's max subtracted before the exponentials: the host reference of a cross-entropy term.
func NLL(row []float32, label int) float64 {
	mx := math.Inf(-1)
	for _, x := range row {
		mx = math.Max(mx, float64(x))
	}
	var z float64
	for _, x := range row {
		z += math.Exp(float64(x) - mx)
	}
	return mx + math.Log(z) - float64(row[label])
}
