package train

import (
	"context"
	"math"
	"reflect"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tensor/cpu"
)

// hostOptBackend is the CPU backend with DeviceOptimizer implemented through host copies: it
// drives the Trainer's device-optimizer path (weights and moments resident on the backend,
// prepare/step/pullMoments, resume) without a GPU. runtime/cuda implements the same methods with
// kernels; its GPU tests check those against this formula.
type hostOptBackend struct{ *cpu.Backend }

func (h hostOptBackend) SumSquaresAll(ts []*tensor.Tensor) (float64, error) {
	var s float64
	for _, t := range ts {
		v, err := h.ToFloat32(t)
		if err != nil {
			return 0, err
		}
		for _, x := range v {
			s += float64(x) * float64(x)
		}
	}
	return s, nil
}

func (h hostOptBackend) AdamWUpdate(params, grads, m, v []*tensor.Tensor, clip, stepSize, bc2Sqrt, beta1, beta2, eps, decay float32) error {
	for i := range grads {
		var hv [4][]float32
		for j, t := range []*tensor.Tensor{params[i], grads[i], m[i], v[i]} {
			var err error
			if hv[j], err = h.ToFloat32(t); err != nil {
				return err
			}
		}
		p, g, mm, vv := hv[0], hv[1], hv[2], hv[3]
		for j := range p {
			gj := g[j]
			if clip < 1 {
				gj *= clip
			}
			if decay != 1 {
				p[j] *= decay
			}
			mm[j] += (1 - beta1) * (gj - mm[j])
			vv[j] = vv[j]*beta2 + (1-beta2)*gj*gj
			denom := float32(math.Sqrt(float64(vv[j])))/bc2Sqrt + eps
			p[j] += -stepSize * (mm[j] / denom)
			g[j] = 0
		}
		for j, t := range []*tensor.Tensor{params[i], grads[i], m[i], v[i]} {
			if err := copyHost(h, t, hv[j]); err != nil {
				return err
			}
		}
	}
	return nil
}

// AllocUninit hands out NaN-filled tensors: a read before the first write poisons the results.
func (h hostOptBackend) AllocUninit(dt tensor.DType, shape ...int) (*tensor.Tensor, error) {
	t, err := h.Alloc(dt, shape...)
	if err != nil || !dt.IsFloat() {
		return t, err
	}
	return t, h.Fill(t, float32(math.NaN()))
}

func (h hostOptBackend) ReadAll(ts []*tensor.Tensor, dst [][]float32) error {
	for i, t := range ts {
		v, err := h.ToFloat32(t)
		if err != nil {
			return err
		}
		copy(dst[i], v)
	}
	return nil
}

// The device-optimizer path of the Trainer gives the host path's run (losses, norms, LRs, final
// adapter within float32 rounding), also with gradient checkpointing, and a checkpoint taken from
// it resumes bit-identically. The wrapper's AllocUninit returns NaN-filled tensors, so this also
// checks that no activation is read before it is written (train.arena's out).
func TestDeviceOptimizerPath(t *testing.T) {
	rows := rows4(t)
	cfg := Config{AdamW: AdamWConfig{LR: 5e-3, Betas: [2]float64{0.9, 0.99}, Eps: 1e-8, WeightDecay: 0.01},
		Schedule: Cosine, WarmupSteps: 1, BatchSize: 2, Steps: 5, MaxGradNorm: 0.5, Shuffle: true, Seed: 11}
	hostBase := loadTiny(t)
	devBase, err := LoadBase(hostOptBackend{cpu.New(0)}, "testdata/tiny-llama")
	if err != nil {
		t.Fatal(err)
	}
	defer devBase.Close()

	// q,k,v only (the recomputation stops after gate/up) and every module (it runs down_proj)
	for _, fx := range fixtures {
		ah, ar := startAdapter(t, fx, 0.1), startAdapter(t, fx, 0.1)
		th := run(t, hostBase, ah, rows, cfg)
		crc := cfg
		crc.GradientCheckpointing = true
		tr := run(t, devBase, ar, rows, crc)
		if d := adapterDiff(ah, ar); d > 1e-5 || math.IsNaN(d) {
			t.Errorf("%s: device path with gradient checkpointing: adapters differ by %g", fx, d)
		}
		for i, m := range tr.Metrics() {
			if !(math.Abs(m.Loss-th.Metrics()[i].Loss) <= 1e-5*m.Loss) {
				t.Errorf("%s: step %d with checkpointing: loss %g, host %g", fx, i+1, m.Loss, th.Metrics()[i].Loss)
			}
		}
	}
	ah, ad := startAdapter(t, fixtures[1], 0.1), startAdapter(t, fixtures[1], 0.1)
	th := run(t, hostBase, ah, rows, cfg)
	td := run(t, devBase, ad, rows, cfg)
	if td.dopt == nil {
		t.Fatal("the trainer did not take the device-optimizer path")
	}
	hm, dm := th.Metrics(), td.Metrics()
	clipped := false
	for i := range hm {
		if !(math.Abs(hm[i].Loss-dm[i].Loss) <= 1e-5*hm[i].Loss) || math.Abs(hm[i].GradNorm-dm[i].GradNorm) > 1e-5*hm[i].GradNorm || hm[i].LR != dm[i].LR {
			t.Errorf("step %d: host %+v, device %+v", i+1, hm[i], dm[i])
		}
		clipped = clipped || hm[i].GradNorm > cfg.MaxGradNorm
	}
	if !clipped {
		t.Errorf("no step was clipped (norms %v): the test does not cover clipping", hm)
	}
	if d := adapterDiff(ah, ad); d > 1e-5 || math.IsNaN(d) {
		t.Errorf("adapters differ by %g", d)
	}

	// interrupt after 3 steps, checkpoint (moments pulled from the device), resume in a new trainer
	part := startAdapter(t, fixtures[1], 0.1)
	ctx, cancel := context.WithCancel(context.Background())
	c2 := cfg
	c2.Progress = func(m StepMetrics) {
		if m.Step == 3 {
			cancel()
		}
	}
	tp, err := NewTrainer(devBase, part, rows, c2)
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Run(ctx); err == nil {
		t.Fatal("interrupted run returned nil")
	}
	ck, err := tp.SaveCheckpoint(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tp.Close()
	resumed := startAdapter(t, fixtures[1], 0.1)
	tres, err := NewTrainer(devBase, resumed, rows, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tres.Close()
	if err := tres.Resume(ck); err != nil {
		t.Fatal(err)
	}
	if err := tres.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for p, m := range ad.Modules {
		if !reflect.DeepEqual(m.A, resumed.Modules[p].A) || !reflect.DeepEqual(m.B, resumed.Modules[p].B) {
			t.Fatalf("%s differs between the full and the resumed device-optimizer run (rel %g)", p, adapterDiff(ad, resumed))
		}
	}
}

// holdBackend records the trainer's HoldDequantized calls (train's dequantHolder).
type holdBackend struct {
	*cpu.Backend
	calls []bool
}

func (h *holdBackend) HoldDequantized(on bool) { h.calls = append(h.calls, on) }

// With gradient checkpointing on a quantized base, the trainer holds dequantized copies from each
// layer's recomputed forward through its backward: one on/off pair per layer and micro-batch, ending
// off; gradients equal those without the hint. Dense bases never ask.
func TestHoldDequantizedPairs(t *testing.T) {
	hb := &holdBackend{Backend: cpu.New(0)}
	base := quantBase(t, hb, "nf4")
	a := startAdapter(t, fixtures[0], 0)
	rows := rows4(t)
	_, g1, err := Gradients(base, a, rows, true)
	if err != nil {
		t.Fatal(err)
	}
	want := 2 * base.Arch.Layers
	if len(hb.calls) != want {
		t.Fatalf("%d HoldDequantized calls, want %d (%v)", len(hb.calls), want, hb.calls)
	}
	for i, on := range hb.calls {
		if on != (i%2 == 0) {
			t.Fatalf("call %d is %v: calls do not alternate on/off (%v)", i, on, hb.calls)
		}
	}
	_, g2, err := Gradients(base, a, rows, false) // no recompute: no hint, same gradients
	if err != nil {
		t.Fatal(err)
	}
	if len(hb.calls) != want {
		t.Errorf("without recompute the trainer asked %d more times", len(hb.calls)-want)
	}
	for n, g := range g1 {
		if e := relErr(g, g2[n]); e > 1e-5 {
			t.Errorf("%s: recompute changes the gradient by %g", n, e)
		}
	}
}
