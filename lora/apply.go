package lora

import (
	"fmt"

	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/tensor"
)

// hook is the forward of one adapter module attached to a model.Linear (a model.LinearAdapter).
// It reads the Module's host weights at every call, so training updates show without re-attaching;
// DoRA's per-row factor magnitude/‖W + s·B·A‖ is computed at attach time (re-attach after changing
// a DoRA adapter's weights).
type hook struct {
	m      *Module
	mscale []float32      // DoRA only
	bias   *tensor.Tensor // the Linear's bias (DoRA only: the factor must not scale it)
}

var (
	_ model.LinearAdapter   = (*hook)(nil)
	_ model.AdditiveAdapter = (*hook)(nil)
)

// AddsOnly reports whether Forward only adds a delta computed from x (plain LoRA), so that the
// model may fold a residual into out first (model.AdditiveAdapter); DoRA rescales out: false.
func (h *hook) AddsOnly() bool { return h.mscale == nil }

// Forward adds the adapter's delta to out (which holds x·Wᵀ + bias): out += scale·(x·Aᵀ)·Bᵀ, or for
// DoRA out = mscale⊙(x·Wᵀ + scale·(x·Aᵀ)·Bᵀ) + bias. No dropout (inference). x is [.., In] F32,
// out [.., Out] F32; scratch is freed before returning. Errors name the module.
func (h *hook) Forward(b tensor.Backend, x, out *tensor.Tensor) error {
	if err := h.forward(b, x, out); err != nil {
		return fmt.Errorf("lora %s: %w", h.m.Path, err)
	}
	return nil
}

// forward is Forward without the module's name on its errors.
func (h *hook) forward(b tensor.Backend, x, out *tensor.Tensor) error {
	m := h.m
	if x.Cols() != m.In || out.Cols() != m.Out {
		return fmt.Errorf("x %v, out %v for a module [%d, %d]: %w", x, out, m.Out, m.In, tensor.ErrShape)
	}
	var scratch []*tensor.Tensor
	defer func() { tensor.FreeAll(scratch...) }()
	mk := func(shape []int, v []float32) (*tensor.Tensor, error) {
		t, err := b.FromFloat32(tensor.F32, shape, v)
		if err == nil {
			scratch = append(scratch, t)
		}
		return t, err
	}
	A, err := mk([]int{m.R, m.In}, m.A)
	if err != nil {
		return err
	}
	B, err := mk([]int{m.Out, m.R}, m.B)
	if err != nil {
		return err
	}
	xa, err := b.Alloc(tensor.F32, x.Rows(), m.R)
	if err != nil {
		return err
	}
	scratch = append(scratch, xa)
	if err := b.Gemm(xa, x, A, false, true, 1, 0); err != nil {
		return err
	}
	o2 := out.MustView(-1, m.Out)
	if h.mscale == nil {
		return b.Gemm(o2, xa, B, false, true, m.Scale, 1)
	}
	bw, ok := b.(tensor.Backward)
	if !ok {
		return fmt.Errorf("DoRA needs the backend's MulCols (tensor.Backward): %w", tensor.ErrUnsupported)
	}
	if h.bias != nil {
		nb, err := b.ToFloat32(h.bias)
		if err != nil {
			return err
		}
		for i := range nb {
			nb[i] = -nb[i]
		}
		neg, err := mk([]int{m.Out}, nb)
		if err != nil {
			return err
		}
		if err := b.AddBias(o2, neg); err != nil {
			return err
		}
	}
	if err := b.Gemm(o2, xa, B, false, true, m.Scale, 1); err != nil {
		return err
	}
	ms, err := mk([]int{m.Out}, h.mscale)
	if err != nil {
		return err
	}
	if err := bw.MulCols(o2, o2, ms); err != nil {
		return err
	}
	if h.bias != nil {
		return b.AddBias(o2, h.bias)
	}
	return nil
}

// Attach sets the adapter hook of every linear layer of mdl that a has a module for (matched by
// the HF module name), replacing any hook already there. It returns detach, which restores the
// previous hooks. The model does not own a; a must stay alive while attached. A module without a
// linear layer in the model, or with other shapes, is an error and nothing is attached.
func Attach(mdl *model.Model, a *Adapter) (detach func(), err error) {
	type change struct {
		lin  *model.Linear
		prev model.LinearAdapter
		h    *hook
	}
	var changes []change
	for _, p := range a.Paths() {
		m := a.Modules[p]
		lin, ok := mdl.Linear(p)
		if !ok {
			return nil, fmt.Errorf("lora: attach: the model has no linear layer %s", p)
		}
		if lin.In != m.In || lin.Out != m.Out {
			return nil, fmt.Errorf("lora: attach %s: module is [%d, %d], the layer [%d, %d]", p, m.Out, m.In, lin.Out, lin.In)
		}
		h := &hook{m: m}
		if m.Magnitude != nil {
			var w []float32
			var err error
			switch pw, ok := lin.Packed.(interface {
				Float32(tensor.Backend) ([]float32, error)
			}); {
			case lin.Weight != nil:
				w, err = mdl.Backend.ToFloat32(lin.Weight)
			case ok: // a quantized weight that dequantizes (runtime/qmodel.Linear): DoRA's norm reads its values
				w, err = pw.Float32(mdl.Backend)
			default:
				return nil, fmt.Errorf("lora: attach %s: DoRA needs the base weight, and the packed %T cannot be read back", p, lin.Packed)
			}
			if err != nil {
				return nil, fmt.Errorf("lora: attach %s: %w", p, err)
			}
			norm := m.WeightNorm(w)
			h.mscale = make([]float32, m.Out)
			for i := range norm {
				h.mscale[i] = m.Magnitude[i] / norm[i]
			}
			h.bias = lin.Bias
		}
		changes = append(changes, change{lin: lin, prev: lin.Adapter, h: h})
	}
	for _, c := range changes {
		c.lin.Adapter = c.h
	}
	return func() {
		for _, c := range changes {
			if c.lin.Adapter == c.h {
				c.lin.Adapter = c.prev
			}
		}
	}, nil
}

// Use attaches the adapter called name (or the active one when name is "") to mdl for the calls
// that follow, until detach. With no such adapter (or none active and name "") it attaches nothing
// and returns a no-op detach and an error for an unknown name.
func (s *Set) Use(mdl *model.Model, name string) (detach func(), err error) {
	var a *Adapter
	if name == "" {
		_, a = s.Active()
		if a == nil {
			return func() {}, nil
		}
	} else {
		var ok bool
		if a, ok = s.Get(name); !ok {
			return func() {}, fmt.Errorf("lora: no adapter %q (have %v)", name, s.Names())
		}
	}
	return Attach(mdl, a)
}

// MergeInto merges every module of a into the matching dense weights of mdl (see Module.Merge):
// the model then computes the adapted function without hooks. UnmergeFrom undoes it.
func MergeInto(mdl *model.Model, a *Adapter) error { return mergeModel(mdl, a, true) }

// UnmergeFrom undoes MergeInto on the same model.
func UnmergeFrom(mdl *model.Model, a *Adapter) error { return mergeModel(mdl, a, false) }

func mergeModel(mdl *model.Model, a *Adapter, merge bool) error {
	b := mdl.Backend
	for _, p := range a.Paths() {
		m := a.Modules[p]
		lin, ok := mdl.Linear(p)
		if !ok || lin.Weight == nil {
			return fmt.Errorf("lora: merge %s: no dense linear layer of that name in the model", p)
		}
		w, err := b.ToFloat32(lin.Weight)
		if err != nil {
			return fmt.Errorf("lora: merge %s: %w", p, err)
		}
		if merge {
			err = m.Merge(w)
		} else {
			err = m.Unmerge(w)
		}
		if err != nil {
			return err
		}
		src, err := b.FromFloat32(tensor.F32, lin.Weight.Shape(), w)
		if err != nil {
			return fmt.Errorf("lora: merge %s: %w", p, err)
		}
		err = b.Copy(lin.Weight, src) // rounds to the weight's dtype (bf16 merges lose precision, as in PEFT)
		src.Free()
		if err != nil {
			return fmt.Errorf("lora: merge %s: %w", p, err)
		}
	}
	return nil
}
