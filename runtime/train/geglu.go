package train

import (
	"fmt"
	"math"

	"github.com/finlora/finlora/runtime/tensor"
)

// GeGLUBackend is implemented by backends with fused GeGLU ops (Gemma's MLP activation); GeGLU and
// GeGLUBackward below use them when present and compute on the host otherwise.
type GeGLUBackend interface {
	// GeGLU sets out = gelu_tanh(gate) ⊙ up (same element count, F32). In place allowed.
	GeGLU(out, gate, up *tensor.Tensor) error
	// GeGLUBackward sets dgate = dy⊙up⊙gelu_tanh'(gate) and dup = dy⊙gelu_tanh(gate).
	GeGLUBackward(dgate, dup, dy, gate, up *tensor.Tensor) error
}

const geluC = 0.7978845608028654 // sqrt(2/π)

// GeluTanh is transformers' gelu_pytorch_tanh: 0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³))).
func GeluTanh(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(geluC*(x+0.044715*x*x*x)))
}

// GeluTanhGrad is the derivative of GeluTanh: with u = sqrt(2/π)·(x + 0.044715·x³), t = tanh(u),
// 0.5·(1 + t) + 0.5·x·(1 − t²)·sqrt(2/π)·(1 + 3·0.044715·x²).
func GeluTanhGrad(x float64) float64 {
	t := math.Tanh(geluC * (x + 0.044715*x*x*x))
	return 0.5*(1+t) + 0.5*x*(1-t*t)*geluC*(1+3*0.044715*x*x)
}

// GeGLU sets out = gelu_tanh(gate) ⊙ up for F32 tensors of the same element count, with the
// backend's GeGLUBackend when it has one, else on the host (gelu in float64 rounded to float32, then
// the float32 product, as runtime/model.Gemma3 computes it).
// out may be gate or up.
func GeGLU(b tensor.Backend, out, gate, up *tensor.Tensor) error {
	if gb, ok := b.(GeGLUBackend); ok {
		return gb.GeGLU(out, gate, up)
	}
	gv, uv, err := hostPair(b, gate, up)
	if err != nil {
		return err
	}
	for i := range gv {
		gv[i] = float32(GeluTanh(float64(gv[i]))) * uv[i] // as runtime/model.Gemma3
	}
	return copyHost(b, out, gv)
}

// GeGLUBackward sets dgate and dup of out = gelu_tanh(gate) ⊙ up given dy (F32, same element
// count), with the backend's GeGLUBackend when it has one, else on the host.
func GeGLUBackward(b tensor.Backend, dgate, dup, dy, gate, up *tensor.Tensor) error {
	if gb, ok := b.(GeGLUBackend); ok {
		return gb.GeGLUBackward(dgate, dup, dy, gate, up)
	}
	gv, uv, err := hostPair(b, gate, up)
	if err != nil {
		return err
	}
	dv, err := b.ToFloat32(dy)
	if err != nil {
		return err
	}
	if len(dv) != len(gv) {
		return fmt.Errorf("geglu backward: dy has %d elements, gate %d: %w", len(dv), len(gv), tensor.ErrShape)
	}
	dg, du := make([]float32, len(gv)), make([]float32, len(gv))
	for i := range gv {
		x, d := float64(gv[i]), float64(dv[i])
		dg[i] = float32(d * float64(uv[i]) * GeluTanhGrad(x))
		du[i] = float32(d * GeluTanh(x))
	}
	if err := copyHost(b, dgate, dg); err != nil {
		return err
	}
	return copyHost(b, dup, du)
}

func hostPair(b tensor.Backend, x, y *tensor.Tensor) ([]float32, []float32, error) {
	xv, err := b.ToFloat32(x)
	if err != nil {
		return nil, nil, err
	}
	yv, err := b.ToFloat32(y)
	if err != nil {
		return nil, nil, err
	}
	if len(xv) != len(yv) {
		return nil, nil, fmt.Errorf("geglu: gate has %d elements, up %d: %w", len(xv), len(yv), tensor.ErrShape)
	}
	return xv, yv, nil
}
