package train

import (
	"fmt"
	"math"
)

// AdamWConfig holds torch.optim.AdamW's hyperparameters (amsgrad and maximize not supported).
type AdamWConfig struct {
	LR          float64    // base learning rate (the schedule multiplies it)
	Betas       [2]float64 // (0.9, 0.999) by default
	Eps         float64    // 1e-8 by default; added after the square root of the bias-corrected v
	WeightDecay float64    // decoupled: p ← p·(1 − lr·wd) before the Adam update
}

// DefaultAdamW is torch's default except the LR: lr 1e-4, betas (0.9, 0.999), eps 1e-8, wd 0.
func DefaultAdamW() AdamWConfig {
	return AdamWConfig{LR: 1e-4, Betas: [2]float64{0.9, 0.999}, Eps: 1e-8}
}

// AdamW is the optimizer state of a list of float32 parameters: the first and second moments per
// element and the step count. It owns M and V; the parameters belong to the caller.
type AdamW struct {
	Config AdamWConfig
	Step   int         // optimizer steps taken
	M, V   [][]float32 // moments, one slice per parameter, shaped like it
}

// NewAdamW returns zeroed state for parameters of the given sizes.
func NewAdamW(cfg AdamWConfig, sizes []int) *AdamW {
	o := &AdamW{Config: cfg, M: make([][]float32, len(sizes)), V: make([][]float32, len(sizes))}
	for i, n := range sizes {
		o.M[i], o.V[i] = make([]float32, n), make([]float32, n)
	}
	return o
}

// Update applies one AdamW step with learning rate lr to params given grads (same shapes as at
// NewAdamW), exactly as torch.optim.AdamW (single-tensor path) in float32:
//
//	p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//	p ← p − (lr/(1−β1ᵗ))·m / (sqrt(v)/sqrt(1−β2ᵗ) + eps)
func (o *AdamW) Update(params, grads [][]float32, lr float64) error {
	if len(params) != len(o.M) || len(grads) != len(o.M) {
		return fmt.Errorf("adamw: %d params and %d grads for state of %d", len(params), len(grads), len(o.M))
	}
	o.Step++
	b1, b2 := o.Config.Betas[0], o.Config.Betas[1]
	bc1 := 1 - math.Pow(b1, float64(o.Step))
	bc2 := 1 - math.Pow(b2, float64(o.Step))
	stepSize := float32(lr / bc1)
	bc2Sqrt := float32(math.Sqrt(bc2))
	decay := float32(1 - lr*o.Config.WeightDecay)
	eps := float32(o.Config.Eps)
	fb1, fb2 := float32(b1), float32(b2)
	for i, p := range params {
		g, m, v := grads[i], o.M[i], o.V[i]
		if len(p) != len(m) || len(g) != len(m) {
			return fmt.Errorf("adamw: parameter %d has %d values and %d grads, state has %d", i, len(p), len(g), len(m))
		}
		for j := range p {
			if o.Config.WeightDecay != 0 {
				p[j] *= decay
			}
			// torch: m.lerp_(g, 1−β1) = m + (1−β1)(g − m); v.mul_(β2).addcmul_(g, g, 1−β2)
			m[j] += (1 - fb1) * (g[j] - m[j])
			v[j] = v[j]*fb2 + (1-fb2)*g[j]*g[j]
			denom := float32(math.Sqrt(float64(v[j])))/bc2Sqrt + eps
			p[j] += -stepSize * (m[j] / denom)
		}
	}
	return nil
}

// ClipGradNorm scales grads in place so their global L2 norm is at most maxNorm, as
// torch.nn.utils.clip_grad_norm_: total = sqrt(Σ‖g‖²); coef = min(1, maxNorm/(total+1e-6)); every
// gradient is multiplied by coef. It returns total (before clipping). maxNorm ≤ 0 only measures.
func ClipGradNorm(grads [][]float32, maxNorm float64) float64 {
	total := GradNorm(grads)
	if maxNorm <= 0 {
		return total
	}
	coef := float32(math.Min(1, maxNorm/(total+1e-6)))
	if coef < 1 {
		for _, g := range grads {
			for j := range g {
				g[j] *= coef
			}
		}
	}
	return total
}

// GradNorm returns the global L2 norm sqrt(Σ g²) over all gradients, accumulated in float64.
func GradNorm(grads [][]float32) float64 {
	var s float64
	for _, g := range grads {
		for _, v := range g {
			s += float64(v) * float64(v)
		}
	}
	return math.Sqrt(s)
}
