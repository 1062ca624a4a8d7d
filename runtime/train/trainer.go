package train

import (
	"context"
	"fmt"
	"time"

	"github.com/finlora/finlora/lora"
	"github.com/finlora/finlora/runtime/tensor"
)

// Config holds the trainer's hyperparameters. Zero values mean the defaults noted.
type Config struct {
	AdamW       AdamWConfig // LR, betas, eps, weight decay (see DefaultAdamW)
	Schedule    Schedule    // Constant when empty
	WarmupSteps int         // warmup in steps; wins over WarmupRatio when > 0
	WarmupRatio float64     // warmup as a fraction of the total steps (ceil, as transformers)
	BatchSize   int         // rows per micro-batch (2 when 0)
	GradAccum   int         // micro-batches per step (1 when 0); the loss is the mean over all counted labels of the step
	Steps       int         // optimizer steps; when 0, Epochs passes over the data
	Epochs      int         // passes over the data when Steps is 0 (1 when both are 0)
	MaxGradNorm float64     // clip the global gradient norm to this (torch clip_grad_norm_); 0: no clipping
	Shuffle     bool        // permute rows each epoch (seeded by Seed and the epoch)
	Seed        uint64      // seeds shuffling and LoRA dropout
	// GradientCheckpointing keeps only each layer's input during the forward and recomputes the
	// layer's activations in its backward (less memory, one more forward).
	GradientCheckpointing bool
	// Progress, when set, is called after every step with its metrics (on the training goroutine).
	Progress func(StepMetrics)
}

// StepMetrics describes one optimizer step.
type StepMetrics struct {
	Step         int           // steps done, 1-based (this step's number)
	Epoch        int           // epoch of the step's last row, 0-based
	Loss         float64       // mean cross-entropy over the step's counted labels, before the update
	LR           float64       // learning rate used by the update
	GradNorm     float64       // global L2 norm of the adapter gradients before clipping
	Tokens       int           // non-padding tokens of the step
	TokensPerSec float64       // Tokens / Duration
	Duration     time.Duration // wall time of the step
}

// Trainer finetunes an adapter on a frozen base. It borrows base and adapter (the adapter's host
// weights are updated in place after every step, so they are always those of the last completed
// step) and owns its device copies and optimizer state: Close frees them.
type Trainer struct {
	Base    *Base
	Adapter *lora.Adapter
	Data    []Example
	Config  Config

	opt     *AdamW
	dev     *devAdapter
	dopt    *devOptim // non-nil when the backend is a DeviceOptimizer (device_optim.go)
	g       *graph
	total   int // optimizer steps of the run
	warmup  int
	epoch   int // data position: epoch and offset into its order
	offset  int
	order   []int
	metrics []StepMetrics
}

// NewTrainer checks data and adapter against the base and prepares the optimizer.
func NewTrainer(base *Base, a *lora.Adapter, data []Example, cfg Config) (*Trainer, error) {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 2
	}
	if cfg.GradAccum <= 0 {
		cfg.GradAccum = 1
	}
	if cfg.Schedule == "" {
		cfg.Schedule = Constant
	}
	if cfg.AdamW == (AdamWConfig{}) {
		cfg.AdamW = DefaultAdamW()
	}
	if _, err := ParseSchedule(string(cfg.Schedule)); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("train: no training rows")
	}
	for i, e := range data {
		if err := validateExample(e, base.Arch.Vocab); err != nil {
			return nil, fmt.Errorf("train: row %d: %w", i, err)
		}
	}
	if err := base.CheckAdapter(a); err != nil {
		return nil, err
	}
	bw, ok := base.Backend.(tensor.Backward)
	if !ok {
		return nil, fmt.Errorf("train: backend %s has no backward ops", base.Backend.Name())
	}
	t := &Trainer{Base: base, Adapter: a, Data: data, Config: cfg}
	t.total = cfg.Steps
	if t.total <= 0 {
		epochs := max(cfg.Epochs, 1)
		micro := (len(data) + cfg.BatchSize - 1) / cfg.BatchSize
		t.total = epochs * ((micro + cfg.GradAccum - 1) / cfg.GradAccum)
	}
	t.warmup = WarmupSteps(cfg.WarmupSteps, cfg.WarmupRatio, t.total)
	t.opt = NewAdamW(cfg.AdamW, ParamSizes(a))
	dev, err := newDevAdapter(base.Backend, a)
	if err != nil {
		return nil, err
	}
	t.dev = dev
	if t.dopt, err = newDevOptim(dev); err != nil {
		dev.close()
		return nil, err
	}
	t.g = &graph{base: base, b: base.Backend, bw: bw, ad: dev, recompute: cfg.GradientCheckpointing}
	t.order = epochOrder(len(data), cfg.Shuffle, cfg.Seed, 0)
	return t, nil
}

// Close frees the device copies of the adapter (the host adapter stays valid).
func (t *Trainer) Close() {
	if t.dopt != nil {
		t.dopt.close()
		t.dopt = nil
	}
	if t.dev != nil {
		t.dev.close()
		t.dev = nil
	}
}

// TotalSteps is the number of optimizer steps of the run.
func (t *Trainer) TotalSteps() int { return t.total }

// StepsDone is the number of optimizer steps completed.
func (t *Trainer) StepsDone() int { return t.opt.Step }

// Metrics returns the metrics of the steps run by this Trainer (a copy).
func (t *Trainer) Metrics() []StepMetrics { return append([]StepMetrics(nil), t.metrics...) }

// nextRows takes the next micro-batch of rows, moving to the next epoch when one is used up.
func (t *Trainer) nextRows() []Example {
	if t.offset >= len(t.order) {
		t.epoch++
		t.offset = 0
		t.order = epochOrder(len(t.Data), t.Config.Shuffle, t.Config.Seed, t.epoch)
	}
	end := min(t.offset+t.Config.BatchSize, len(t.order))
	rows := make([]Example, 0, end-t.offset)
	for _, i := range t.order[t.offset:end] {
		rows = append(rows, t.Data[i])
	}
	t.offset = end
	return rows
}

// microSeed is the dropout stream of micro-batch k of step s.
func (t *Trainer) microSeed(step, k int) uint64 {
	return t.Config.Seed*0x9e3779b97f4a7c15 + uint64(step)*1000003 + uint64(k)
}

// forwardBackward runs the GradAccum micro-batches of the next step, leaving the gradients of the
// step's mean loss in the device accumulators. It returns the loss and the token count.
func (t *Trainer) forwardBackward(ctx context.Context) (float64, int, error) {
	if t.dopt != nil {
		if err := t.dopt.prepare(t.dev, t.opt); err != nil {
			return 0, 0, err
		}
		t.dopt.gradsDirty = true // until the step's update zeroes them
	} else if err := t.dev.upload(t.Base); err != nil {
		return 0, 0, err
	}
	batches := make([][]Example, t.Config.GradAccum)
	count, tokens := 0, 0
	for k := range batches {
		batches[k] = t.nextRows()
		for _, e := range batches[k] {
			count += counted(e)
			tokens += len(e.InputIDs)
		}
	}
	if count == 0 {
		return 0, 0, fmt.Errorf("train: step %d: every label of the step is -100 (nothing to learn)", t.opt.Step+1)
	}
	var sum float64
	for k, rows := range batches {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		mb, err := makeMicroBatch(t.Base.Backend, rows, t.microSeed(t.opt.Step, k))
		if err != nil {
			return 0, 0, err
		}
		s, err := t.g.run(mb, float32(1/float64(count)), true)
		mb.free()
		if err != nil {
			return 0, 0, err
		}
		sum += s
	}
	return sum / float64(count), tokens, nil
}

// Step runs one optimizer step: forward and backward of GradAccum micro-batches, clipping, the
// scheduled LR and AdamW. When the forward/backward fails or ctx is cancelled (checked between
// micro-batches), the adapter, the optimizer and the data position are left as before the step.
func (t *Trainer) Step(ctx context.Context) (StepMetrics, error) {
	if t.opt.Step >= t.total {
		return StepMetrics{}, fmt.Errorf("train: all %d steps done", t.total)
	}
	start := time.Now()
	epoch, offset, order := t.epoch, t.offset, t.order
	loss, tokens, err := t.forwardBackward(ctx)
	if err != nil {
		t.epoch, t.offset, t.order = epoch, offset, order
		return StepMetrics{}, err
	}
	lr := t.Config.AdamW.LR * t.Config.Schedule.Factor(t.opt.Step, t.warmup, t.total)
	var norm float64
	if t.dopt != nil {
		if norm, err = t.dopt.step(t.opt, lr, t.Config.MaxGradNorm); err != nil {
			return StepMetrics{}, err
		}
		t.dopt.gradsDirty = false
	} else {
		params, grads, err := t.dev.params()
		if err != nil {
			return StepMetrics{}, err
		}
		norm = ClipGradNorm(grads, t.Config.MaxGradNorm)
		if err := t.opt.Update(params, grads, lr); err != nil {
			return StepMetrics{}, err
		}
	}
	d := time.Since(start)
	m := StepMetrics{Step: t.opt.Step, Epoch: t.epoch, Loss: loss, LR: lr, GradNorm: norm, Tokens: tokens,
		TokensPerSec: float64(tokens) / d.Seconds(), Duration: d}
	t.metrics = append(t.metrics, m)
	if t.Config.Progress != nil {
		t.Config.Progress(m)
	}
	return m, nil
}

// Run steps until the run's total, checking ctx before every step. When ctx is cancelled it stops
// at a step boundary and returns ctx.Err(): the adapter holds the weights of the last completed
// step, and the data position is that of the next one (a checkpoint then resumes exactly).
func (t *Trainer) Run(ctx context.Context) error {
	for t.opt.Step < t.total {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := t.Step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Gradients returns the mean loss of rows as one batch and the gradients of the adapter's
// parameters under their PEFT names (lora.KeyA/KeyB/KeyMagnitude), without updating anything.
func Gradients(base *Base, a *lora.Adapter, rows []Example, recompute bool) (float64, map[string][]float32, error) {
	bw, ok := base.Backend.(tensor.Backward)
	if !ok {
		return 0, nil, fmt.Errorf("train: backend %s has no backward ops", base.Backend.Name())
	}
	dev, err := newDevAdapter(base.Backend, a)
	if err != nil {
		return 0, nil, err
	}
	defer dev.close()
	if err := dev.upload(base); err != nil {
		return 0, nil, err
	}
	count := 0
	for _, e := range rows {
		count += counted(e)
	}
	if count == 0 {
		return 0, nil, fmt.Errorf("train: no counted labels")
	}
	mb, err := makeMicroBatch(base.Backend, rows, 0)
	if err != nil {
		return 0, nil, err
	}
	defer mb.free()
	g := &graph{base: base, b: base.Backend, bw: bw, ad: dev, recompute: recompute}
	sum, err := g.run(mb, float32(1/float64(count)), true)
	if err != nil {
		return 0, nil, err
	}
	_, grads, err := dev.params()
	if err != nil {
		return 0, nil, err
	}
	out := map[string][]float32{}
	for i, n := range ParamNames(a) {
		out[n] = grads[i]
	}
	return sum / float64(count), out, nil
}

// Loss returns the mean loss of rows as one batch under adapter a (nil: the bare base).
func Loss(base *Base, a *lora.Adapter, rows []Example) (float64, error) {
	g := &graph{base: base, b: base.Backend}
	g.bw, _ = base.Backend.(tensor.Backward)
	if a != nil {
		dev, err := newDevAdapter(base.Backend, a)
		if err != nil {
			return 0, err
		}
		defer dev.close()
		if err := dev.upload(base); err != nil {
			return 0, err
		}
		g.ad = dev
		g.ad.dropout = 0 // evaluation: no dropout
	}
	count := 0
	for _, e := range rows {
		count += counted(e)
	}
	if count == 0 {
		return 0, fmt.Errorf("train: no counted labels")
	}
	mb, err := makeMicroBatch(base.Backend, rows, 0)
	if err != nil {
		return 0, err
	}
	defer mb.free()
	sum, err := g.run(mb, 0, false)
	if err != nil {
		return 0, err
	}
	return sum / float64(count), nil
}
