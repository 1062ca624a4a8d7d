package lora

import (
	"errors"
	"strings"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tensor/cpu"
)

var errUpload = errors.New("upload refused")

// uploadFails is the CPU backend with every host-to-device upload failing.
type uploadFails struct{ tensor.Backend }

func (uploadFails) FromFloat32(tensor.DType, []int, []float32) (*tensor.Tensor, error) {
	return nil, errUpload
}

// Every error of a module's forward names the module and keeps its cause.
func TestHookErrorsNameTheModule(t *testing.T) {
	b := cpu.New(1)
	m := &Module{Path: "model.layers.0.self_attn.q_proj", In: 4, Out: 3, R: 2, Scale: 1,
		A: make([]float32, 8), B: make([]float32, 6)}
	x, err := b.Alloc(tensor.F32, 2, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Free()
	out, err := b.Alloc(tensor.F32, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Free()
	h := &hook{m: m}
	for _, c := range []struct {
		name    string
		b       tensor.Backend
		x, out  *tensor.Tensor
		wantErr error
	}{
		{"shapes", b, out, x, tensor.ErrShape},
		{"upload", uploadFails{b}, x, out, errUpload},
	} {
		err := h.Forward(c.b, c.x, c.out)
		if !errors.Is(err, c.wantErr) || !strings.Contains(err.Error(), m.Path) {
			t.Errorf("%s: %v, want %v naming %s", c.name, err, c.wantErr, m.Path)
		}
	}
	if err := h.Forward(b, x, out); err != nil {
		t.Errorf("valid forward: %v", err)
	}
}
