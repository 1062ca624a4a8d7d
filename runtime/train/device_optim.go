package train

import (
	"fmt"
	"math"

	"github.com/finlora/finlora/runtime/tensor"
)

// DeviceOptimizer is an optional extension of a tensor.Backend that keeps the optimizer on the
// device (runtime/cuda implements it): with it the Trainer holds the adapter weights, their
// gradients and the AdamW moments on the backend for the whole run, and a step reads back only the
// loss, the gradient norm and the updated weights (for the host adapter), instead of uploading the
// weights, downloading every gradient and running AdamW on the host.
type DeviceOptimizer interface {
	// SumSquaresAll returns Σ x² over every element of the F32 tensors (float64 accumulation).
	SumSquaresAll(ts []*tensor.Tensor) (float64, error)
	// AdamWUpdate applies AdamW.Update's formula in float32 to every (params[i], grads[i], m[i],
	// v[i]) in place, after scaling the gradients by clip when clip < 1, and then zeroes the
	// gradients. stepSize = lr/(1−β1ᵗ), bc2Sqrt = sqrt(1−β2ᵗ), decay = 1 − lr·wd.
	AdamWUpdate(params, grads, m, v []*tensor.Tensor, clip, stepSize, bc2Sqrt, beta1, beta2, eps, decay float32) error
	// ReadAll copies F32 tensors to host slices of their sizes with one synchronization.
	ReadAll(ts []*tensor.Tensor, dst [][]float32) error
}

// devOptim is the Trainer's optimizer state on a DeviceOptimizer backend. The device copies are
// authoritative between steps; the host adapter weights are refreshed after every step, the host
// moments (Trainer.opt.M/V) only when a checkpoint needs them.
type devOptim struct {
	do                  DeviceOptimizer
	params, grads, m, v []*tensor.Tensor // in ParamNames order; params and grads are the devAdapter's
	host                [][]float32      // the host adapter's slices, same order
	fresh               bool             // device weights and moments hold the host's (false: upload first)
	gradsDirty          bool             // a failed step left partial gradients: zero them first
	hostMoments         bool             // opt.M/V equal the device moments
}

// newDevOptim returns the device optimizer for d when its backend implements DeviceOptimizer and
// the adapter has no DoRA magnitudes (DoRA keeps the host path: its norms are computed on the host
// from the uploaded weights); otherwise nil.
func newDevOptim(d *devAdapter) (*devOptim, error) {
	do, ok := d.b.(DeviceOptimizer)
	if !ok {
		return nil, nil
	}
	o := &devOptim{do: do, hostMoments: true}
	for _, p := range d.a.Paths() {
		dm := d.mods[p]
		if dm.mod.Magnitude != nil {
			return nil, nil
		}
		o.params = append(o.params, dm.A, dm.B)
		o.grads = append(o.grads, dm.dA, dm.dB)
		o.host = append(o.host, dm.mod.A, dm.mod.B)
		for i := 0; i < 2; i++ {
			m, err := d.b.Alloc(tensor.F32, dm.dA.Shape()...)
			if i == 1 {
				m, err = d.b.Alloc(tensor.F32, dm.dB.Shape()...)
			}
			if err != nil {
				o.close()
				return nil, fmt.Errorf("train: optimizer state of %s on %s: %w", p, d.b.Name(), err)
			}
			v, err := d.b.Alloc(tensor.F32, m.Shape()...)
			if err != nil {
				m.Free()
				o.close()
				return nil, fmt.Errorf("train: optimizer state of %s on %s: %w", p, d.b.Name(), err)
			}
			o.m, o.v = append(o.m, m), append(o.v, v)
		}
	}
	return o, nil
}

func (o *devOptim) close() {
	tensor.FreeAll(o.m...)
	tensor.FreeAll(o.v...)
	o.m, o.v = nil, nil
}

// prepare makes the device state current before a step: uploads the host weights and moments (at
// the first step and after a resume) and zeroes the gradients when they are not already zero.
func (o *devOptim) prepare(d *devAdapter, opt *AdamW) error {
	b := d.b
	if !o.fresh {
		for i, p := range o.params {
			if err := copyHost(b, p, o.host[i]); err != nil {
				return fmt.Errorf("train: upload adapter: %w", err)
			}
			if err := copyHost(b, o.m[i], opt.M[i]); err != nil {
				return fmt.Errorf("train: upload optimizer state: %w", err)
			}
			if err := copyHost(b, o.v[i], opt.V[i]); err != nil {
				return fmt.Errorf("train: upload optimizer state: %w", err)
			}
		}
		o.gradsDirty, o.fresh, o.hostMoments = true, true, true
	}
	if o.gradsDirty {
		for _, g := range o.grads {
			if err := b.Fill(g, 0); err != nil {
				return err
			}
		}
		o.gradsDirty = false
	}
	return nil
}

// step clips and applies AdamW on the device (the gradients of the step are in o.grads), then
// refreshes the host adapter. It returns the gradient norm before clipping.
func (o *devOptim) step(opt *AdamW, lr, maxNorm float64) (float64, error) {
	ss, err := o.do.SumSquaresAll(o.grads)
	if err != nil {
		return 0, fmt.Errorf("train: gradient norm: %w", err)
	}
	norm := math.Sqrt(ss)
	clip := float32(1)
	if maxNorm > 0 {
		clip = float32(math.Min(1, maxNorm/(norm+1e-6)))
	}
	opt.Step++
	c := opt.Config
	bc1 := 1 - math.Pow(c.Betas[0], float64(opt.Step))
	bc2 := 1 - math.Pow(c.Betas[1], float64(opt.Step))
	o.hostMoments = false
	if err := o.do.AdamWUpdate(o.params, o.grads, o.m, o.v, clip, float32(lr/bc1), float32(math.Sqrt(bc2)),
		float32(c.Betas[0]), float32(c.Betas[1]), float32(c.Eps), float32(1-lr*c.WeightDecay)); err != nil {
		o.fresh = false // device state unknown: re-upload from the host (the last completed step)
		opt.Step--
		return 0, fmt.Errorf("train: adamw on the device: %w", err)
	}
	if err := o.do.ReadAll(o.params, o.host); err != nil {
		return 0, fmt.Errorf("train: read adapter weights: %w", err)
	}
	return norm, nil
}

// pullMoments copies the device moments into opt.M/V (for a checkpoint).
func (o *devOptim) pullMoments(opt *AdamW) error {
	if o.hostMoments {
		return nil
	}
	if err := o.do.ReadAll(o.m, opt.M); err != nil {
		return fmt.Errorf("train: read optimizer state: %w", err)
	}
	if err := o.do.ReadAll(o.v, opt.V); err != nil {
		return fmt.Errorf("train: read optimizer state: %w", err)
	}
	o.hostMoments = true
	return nil
}
