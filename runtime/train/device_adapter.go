package train

import (
	"fmt"
	"math"

	"github.com/finlora/finlora/lora"
	"github.com/finlora/finlora/runtime/tensor"
)

// devModule is one adapter module on the backend: its weights (uploaded from the host lora.Module
// before each step) and its gradient accumulators (zeroed at the start of each step).
type devModule struct {
	mod    *lora.Module
	A, B   *tensor.Tensor // [r, in], [out, r]
	dA, dB *tensor.Tensor // gradients, same shapes
	// DoRA only (nil otherwise): the magnitude's gradient and the per-output factors of this step.
	dMag    *tensor.Tensor // [out]
	mscale  *tensor.Tensor // [out]: magnitude/‖W + s·B·A‖, the norm treated as a constant (PEFT detaches it)
	invNorm *tensor.Tensor // [out]: 1/‖W + s·B·A‖
}

// devAdapter is an adapter on the backend. It owns its tensors (close frees them).
type devAdapter struct {
	b       tensor.Backend
	a       *lora.Adapter
	mods    map[string]*devModule
	dropout float64
}

func newDevAdapter(b tensor.Backend, a *lora.Adapter) (*devAdapter, error) {
	d := &devAdapter{b: b, a: a, mods: map[string]*devModule{}, dropout: a.Config.LoraDropout}
	for _, p := range a.Paths() {
		m := a.Modules[p]
		dm := &devModule{mod: m}
		var err error
		alloc := func(shape ...int) *tensor.Tensor {
			if err != nil {
				return nil
			}
			var t *tensor.Tensor
			t, err = b.Alloc(tensor.F32, shape...)
			return t
		}
		dm.A, dm.B, dm.dA, dm.dB = alloc(m.R, m.In), alloc(m.Out, m.R), alloc(m.R, m.In), alloc(m.Out, m.R)
		if m.Magnitude != nil {
			dm.dMag, dm.mscale, dm.invNorm = alloc(m.Out), alloc(m.Out), alloc(m.Out)
		}
		d.mods[p] = dm
		if err != nil {
			d.close()
			return nil, fmt.Errorf("train: adapter %s on %s: %w", p, b.Name(), err)
		}
	}
	return d, nil
}

func (d *devAdapter) close() {
	for _, m := range d.mods {
		tensor.FreeAll(m.A, m.B, m.dA, m.dB, m.dMag, m.mscale, m.invNorm)
	}
	d.mods = nil
}

// upload copies the host weights into the backend tensors, zeroes the gradients and, for DoRA,
// computes this step's norms from the base weights (base.Layers[l]) on the host.
func (d *devAdapter) upload(base *Base) error {
	b := d.b
	for p, dm := range d.mods {
		m := dm.mod
		if err := copyHost(b, dm.A, m.A); err != nil {
			return fmt.Errorf("train: upload %s: %w", p, err)
		}
		if err := copyHost(b, dm.B, m.B); err != nil {
			return fmt.Errorf("train: upload %s: %w", p, err)
		}
		if err := b.Fill(dm.dA, 0); err != nil {
			return err
		}
		if err := b.Fill(dm.dB, 0); err != nil {
			return err
		}
		if m.Magnitude == nil {
			continue
		}
		w, err := base.frozenWeight(p)
		if err != nil {
			return err
		}
		wf, err := w.float32(b)
		if err != nil {
			return fmt.Errorf("train: DoRA norm of %s: %w", p, err)
		}
		norm := m.WeightNorm(wf)
		ms, inv := make([]float32, m.Out), make([]float32, m.Out)
		for o, n := range norm {
			ms[o] = m.Magnitude[o] / n
			inv[o] = float32(1 / math.Max(float64(n), 1e-30))
		}
		if err := copyHost(b, dm.mscale, ms); err != nil {
			return err
		}
		if err := copyHost(b, dm.invNorm, inv); err != nil {
			return err
		}
		if err := b.Fill(dm.dMag, 0); err != nil {
			return err
		}
	}
	return nil
}

// copyHost writes host values into an existing F32 tensor of the same element count.
func copyHost(b tensor.Backend, dst *tensor.Tensor, v []float32) error {
	src, err := b.FromFloat32(tensor.F32, dst.Shape(), v)
	if err != nil {
		return err
	}
	defer src.Free()
	return b.Copy(dst, src)
}

// params returns the host parameter slices and matching gradient slices (downloaded from the
// backend) in a fixed order: for each module path in sorted order A, B, then the magnitude.
func (d *devAdapter) params() ([][]float32, [][]float32, error) {
	var ps, gs [][]float32
	for _, p := range d.a.Paths() {
		dm := d.mods[p]
		pairs := []struct {
			p []float32
			g *tensor.Tensor
		}{{dm.mod.A, dm.dA}, {dm.mod.B, dm.dB}}
		if dm.mod.Magnitude != nil {
			pairs = append(pairs, struct {
				p []float32
				g *tensor.Tensor
			}{dm.mod.Magnitude, dm.dMag})
		}
		for _, x := range pairs {
			g, err := d.b.ToFloat32(x.g)
			if err != nil {
				return nil, nil, fmt.Errorf("train: read gradient of %s: %w", p, err)
			}
			ps, gs = append(ps, x.p), append(gs, g)
		}
	}
	return ps, gs, nil
}

// ParamNames returns PEFT tensor names in the order of params (for optimizer state files and
// gradient dumps).
func ParamNames(a *lora.Adapter) []string {
	var ns []string
	for _, p := range a.Paths() {
		ns = append(ns, lora.KeyA(p), lora.KeyB(p))
		if a.Modules[p].Magnitude != nil {
			ns = append(ns, lora.KeyMagnitude(p))
		}
	}
	return ns
}

// ParamSizes returns the element counts in the order of ParamNames.
func ParamSizes(a *lora.Adapter) []int {
	var ns []int
	for _, p := range a.Paths() {
		m := a.Modules[p]
		ns = append(ns, len(m.A), len(m.B))
		if m.Magnitude != nil {
			ns = append(ns, len(m.Magnitude))
		}
	}
	return ns
}

// hostParams returns the host parameter slices in the order of ParamNames (no backend needed).
func (d *devAdapter) hostParams() ([][]float32, []string, error) {
	var ps [][]float32
	for _, p := range d.a.Paths() {
		m := d.a.Modules[p]
		ps = append(ps, m.A, m.B)
		if m.Magnitude != nil {
			ps = append(ps, m.Magnitude)
		}
	}
	return ps, ParamNames(d.a), nil
}
