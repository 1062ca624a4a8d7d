package train

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/finlora/finlora/lora"
	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tensor/cpu"
	"github.com/finlora/finlora/runtime/tensor/tensortest"
)

func TestAdamWMatchesFormula(t *testing.T) {
	cfg := AdamWConfig{LR: 0.1, Betas: [2]float64{0.8, 0.95}, Eps: 1e-6, WeightDecay: 0.3}
	o := NewAdamW(cfg, []int{3})
	p := []float32{1, -2, 0.5}
	want := []float64{1, -2, 0.5}
	m, v := make([]float64, 3), make([]float64, 3)
	grads := [][]float32{{0.3, -0.1, 2}, {-0.2, 0.05, 1}, {0.1, 0.1, -3}}
	lrs := []float64{0.1, 0.05, 0.01}
	for s, g := range grads {
		if err := o.Update([][]float32{p}, [][]float32{g}, lrs[s]); err != nil {
			t.Fatal(err)
		}
		step := float64(s + 1)
		for i := range want {
			want[i] *= 1 - lrs[s]*cfg.WeightDecay
			m[i] = cfg.Betas[0]*m[i] + (1-cfg.Betas[0])*float64(g[i])
			v[i] = cfg.Betas[1]*v[i] + (1-cfg.Betas[1])*float64(g[i])*float64(g[i])
			mh := m[i] / (1 - math.Pow(cfg.Betas[0], step))
			vh := v[i] / (1 - math.Pow(cfg.Betas[1], step))
			want[i] -= lrs[s] * mh / (math.Sqrt(vh) + cfg.Eps)
		}
	}
	for i := range p {
		if math.Abs(float64(p[i])-want[i]) > 1e-6 {
			t.Errorf("param %d: %g, want %g", i, p[i], want[i])
		}
	}
	if o.Step != 3 {
		t.Errorf("step %d", o.Step)
	}
}

func TestSchedules(t *testing.T) {
	for _, tc := range []struct {
		s                   Schedule
		step, warmup, total int
		want                float64
	}{
		{Constant, 0, 0, 10, 1}, {Constant, 0, 4, 10, 0}, {Constant, 2, 4, 10, 0.5}, {Constant, 7, 4, 10, 1},
		{Linear, 0, 2, 10, 0}, {Linear, 1, 2, 10, 0.5}, {Linear, 2, 2, 10, 1}, {Linear, 6, 2, 10, 0.5}, {Linear, 10, 2, 10, 0},
		{Linear, 0, 0, 4, 1}, {Linear, 3, 0, 4, 0.25},
		{Cosine, 2, 2, 10, 1}, {Cosine, 6, 2, 10, 0.5}, {Cosine, 4, 2, 10, 0.5 * (1 + math.Cos(math.Pi/4))}, {Cosine, 10, 2, 10, 0},
	} {
		if got := tc.s.Factor(tc.step, tc.warmup, tc.total); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s step %d warmup %d total %d: %g, want %g", tc.s, tc.step, tc.warmup, tc.total, got, tc.want)
		}
	}
	if w := WarmupSteps(0, 0.1, 25); w != 3 {
		t.Errorf("warmup ratio 0.1 of 25 steps: %d, want ceil(2.5) = 3", w)
	}
	if w := WarmupSteps(5, 0.1, 25); w != 5 {
		t.Errorf("explicit warmup steps: %d", w)
	}
	if _, err := ParseSchedule("exp"); err == nil {
		t.Error("unknown schedule accepted")
	}
}

func TestClipGradNorm(t *testing.T) {
	g := [][]float32{{3, 0}, {0, 4}}
	if n := ClipGradNorm(g, 1); math.Abs(n-5) > 1e-12 {
		t.Errorf("norm %g, want 5", n)
	}
	if math.Abs(float64(g[0][0])-3/(5+1e-6)) > 1e-7 || math.Abs(float64(g[1][1])-4/(5+1e-6)) > 1e-7 {
		t.Errorf("clipped %v", g)
	}
	h := [][]float32{{0.3, 0.4}}
	ClipGradNorm(h, 1)
	if h[0][0] != 0.3 || h[0][1] != 0.4 {
		t.Errorf("a norm under the limit changed the gradients: %v", h)
	}
}

// rows4 returns 4 rows from the fixture batch, the last two of different lengths (padding).
func rows4(t *testing.T) []Example {
	ref := readReference(t, fixtures[0])
	r := ref.rows()
	short := Example{InputIDs: r[1].InputIDs[:11], Labels: r[1].Labels[:11]}
	shorter := Example{InputIDs: r[0].InputIDs[2:9], Labels: append([]int32{-100, -100}, r[0].InputIDs[4:9]...)}
	return []Example{r[0], r[1], short, shorter}
}

func startAdapter(t *testing.T, fx string, dropout float64) *lora.Adapter {
	t.Helper()
	a, err := lora.Load(filepath.Join(fx, "adapter_start"))
	if err != nil {
		t.Fatal(err)
	}
	a.Config.LoraDropout = dropout
	return a
}

func run(t *testing.T, base *Base, a *lora.Adapter, rows []Example, cfg Config) *Trainer {
	t.Helper()
	tr, err := NewTrainer(base, a, rows, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return tr
}

func adapterDiff(a, b *lora.Adapter) float64 {
	worst := 0.0
	for p, m := range a.Modules {
		worst = math.Max(worst, relErr(m.A, b.Modules[p].A))
		worst = math.Max(worst, relErr(m.B, b.Modules[p].B))
	}
	return worst
}

// One micro-batch of 4 padded rows and 4 micro-batches of 1 row (accumulated) give the same step:
// the loss is normalised by the step's counted labels, and right padding does not leak.
func TestGradAccumMatchesBigBatch(t *testing.T) {
	base := loadTiny(t)
	rows := rows4(t)
	cfg := Config{AdamW: AdamWConfig{LR: 1e-2, Betas: [2]float64{0.9, 0.999}, Eps: 1e-8}, Steps: 2}
	big, acc := cfg, cfg
	big.BatchSize, big.GradAccum = 4, 1
	acc.BatchSize, acc.GradAccum = 1, 4
	a1, a2 := startAdapter(t, fixtures[1], 0), startAdapter(t, fixtures[1], 0)
	t1, t2 := run(t, base, a1, rows, big), run(t, base, a2, rows, acc)
	for i := range t1.Metrics() {
		m1, m2 := t1.Metrics()[i], t2.Metrics()[i]
		if math.Abs(m1.Loss-m2.Loss) > 1e-6*m1.Loss || math.Abs(m1.GradNorm-m2.GradNorm) > 1e-5*m1.GradNorm {
			t.Errorf("step %d: loss %g vs %g, grad norm %g vs %g", i+1, m1.Loss, m2.Loss, m1.GradNorm, m2.GradNorm)
		}
	}
	if d := adapterDiff(a1, a2); d > 1e-4 {
		t.Errorf("adapters differ by %g", d)
	}
}

// A run interrupted after a checkpoint and resumed from it ends bit-identical to an uninterrupted
// run (shuffling, dropout, warmup, clipping and weight decay all on).
func TestCheckpointResume(t *testing.T) {
	base := loadTiny(t)
	rows := rows4(t)
	cfg := Config{AdamW: AdamWConfig{LR: 5e-3, Betas: [2]float64{0.9, 0.99}, Eps: 1e-8, WeightDecay: 0.01},
		Schedule: Cosine, WarmupSteps: 1, BatchSize: 2, GradAccum: 1, Steps: 5, MaxGradNorm: 0.5, Shuffle: true, Seed: 11}
	full := startAdapter(t, fixtures[1], 0.1)
	tf := run(t, base, full, rows, cfg)

	part := startAdapter(t, fixtures[1], 0.1)
	ctx, cancel := context.WithCancel(context.Background())
	c2 := cfg
	c2.Progress = func(m StepMetrics) {
		if m.Step == 3 {
			cancel()
		}
	}
	tp, err := NewTrainer(base, part, rows, c2)
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	if tp.StepsDone() != 3 {
		t.Fatalf("stopped after %d steps, want 3", tp.StepsDone())
	}
	dir := t.TempDir()
	ck, err := tp.SaveCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	tp.Close()
	if latest, _ := LatestCheckpoint(dir); latest != ck {
		t.Errorf("latest checkpoint %q, want %q", latest, ck)
	}
	// a fresh process: a new adapter from the start files, resumed from the checkpoint
	resumed := startAdapter(t, fixtures[1], 0.1)
	tr, err := NewTrainer(base, resumed, rows, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Resume(ck); err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for p, m := range full.Modules {
		if !reflect.DeepEqual(m.A, resumed.Modules[p].A) || !reflect.DeepEqual(m.B, resumed.Modules[p].B) {
			t.Fatalf("%s differs between the full and the resumed run (rel %g)", p, adapterDiff(full, resumed))
		}
	}
	fm, rm := tf.Metrics(), tr.Metrics()
	if len(fm) != 5 || len(rm) != 5 {
		t.Fatalf("metrics: %d and %d steps", len(fm), len(rm))
	}
	for i := range fm {
		if fm[i].Loss != rm[i].Loss || fm[i].LR != rm[i].LR || fm[i].GradNorm != rm[i].GradNorm {
			t.Errorf("step %d: full %+v, resumed %+v", i+1, fm[i], rm[i])
		}
	}
	if fm[0].LR != 0 || fm[1].LR != 5e-3 {
		t.Errorf("warmup LRs %g, %g; want 0 then 5e-3", fm[0].LR, fm[1].LR)
	}
	// the metrics log round-trips as Arrow IPC and Parquet
	for _, name := range []string{"m.arrow", "m.parquet"} {
		if err := WriteMetrics(filepath.Join(dir, name), rm); err != nil {
			t.Fatal(err)
		}
	}
	// a mismatched run refuses the checkpoint
	bad := cfg
	bad.Seed = 12
	tb, _ := NewTrainer(base, startAdapter(t, fixtures[1], 0.1), rows, bad)
	defer tb.Close()
	if err := tb.Resume(ck); err == nil {
		t.Error("resume with another seed accepted")
	}
}

// directional checks ∂L/∂θ·d against (L(θ+hd) − L(θ−hd))/2h for the adapter of base, with the
// same dropout masks in every evaluation.
//
// DoRA's gradient is PEFT's: the weight norm ‖W + s·B·A‖ is a constant (detached), so the finite
// differences hold it at its value at θ (frozenNorm) while m, A and B move.
func directional(t *testing.T, base *Base, a *lora.Adapter, rows []Example, name string) {
	t.Helper()
	bw := base.Backend.(tensor.Backward)
	frozenNorm := map[string][]float32{}
	for p, m := range a.Modules {
		if m.Magnitude != nil {
			w, _ := base.weightOf(p)
			wf, _ := base.Backend.ToFloat32(w)
			frozenNorm[p] = m.WeightNorm(wf)
		}
	}
	eval := func(backward bool) (float64, [][]float32) {
		dev, err := newDevAdapter(base.Backend, a)
		if err != nil {
			t.Fatal(err)
		}
		defer dev.close()
		if err := dev.upload(base); err != nil {
			t.Fatal(err)
		}
		for p, n := range frozenNorm {
			dm := dev.mods[p]
			ms, inv := make([]float32, len(n)), make([]float32, len(n))
			for i := range n {
				ms[i], inv[i] = dm.mod.Magnitude[i]/n[i], 1/n[i]
			}
			copyHost(base.Backend, dm.mscale, ms)
			copyHost(base.Backend, dm.invNorm, inv)
		}
		mb, err := makeMicroBatch(base.Backend, rows, 99)
		if err != nil {
			t.Fatal(err)
		}
		defer mb.free()
		count := 0
		for _, e := range rows {
			count += counted(e)
		}
		g := &graph{base: base, b: base.Backend, bw: bw, ad: dev}
		sum, err := g.run(mb, float32(1/float64(count)), backward)
		if err != nil {
			t.Fatal(err)
		}
		var grads [][]float32
		if backward {
			_, grads, _ = dev.params()
		}
		return sum / float64(count), grads
	}
	_, grads := eval(true)
	params, _, _ := (&devAdapter{a: a, mods: map[string]*devModule{}}).hostParams()
	rng := rand.New(rand.NewPCG(1, 2))
	dirs := make([][]float64, len(params))
	var norm, dot float64
	for i, p := range params {
		dirs[i] = make([]float64, len(p))
		for j := range p {
			dirs[i][j] = rng.NormFloat64()
			norm += dirs[i][j] * dirs[i][j]
		}
	}
	norm = math.Sqrt(norm)
	for i := range dirs {
		for j := range dirs[i] {
			dirs[i][j] /= norm
			dot += dirs[i][j] * float64(grads[i][j])
		}
	}
	const h = 1e-2
	shift := func(s float64) {
		for i, p := range params {
			for j := range p {
				p[j] += float32(s * dirs[i][j])
			}
		}
	}
	orig := make([][]float32, len(params))
	for i, p := range params {
		orig[i] = append([]float32(nil), p...)
	}
	shift(h)
	lp, _ := eval(false)
	for i := range params {
		copy(params[i], orig[i])
	}
	shift(-h)
	lm, _ := eval(false)
	for i := range params {
		copy(params[i], orig[i])
	}
	fd := (lp - lm) / (2 * h)
	t.Logf("%s: directional derivative %.6g, finite difference %.6g", name, dot, fd)
	if math.Abs(fd-dot) > 0.02*math.Abs(dot)+1e-5 {
		t.Errorf("%s: gradient·d = %.6g, finite difference %.6g", name, dot, fd)
	}
}

func TestGradientFiniteDifferences(t *testing.T) {
	llama := loadTiny(t)
	rows := rows4(t)
	a := startAdapter(t, fixtures[1], 0)
	directional(t, llama, a, rows, "llama all-linear LoRA")
	d := startAdapter(t, fixtures[1], 0.2)
	directional(t, llama, d, rows, "llama LoRA with dropout 0.2")
	dora := startAdapter(t, fixtures[0], 0)
	dora.Config.UseDoRA = true
	for _, m := range dora.Modules {
		w, _ := llama.weightOf(m.Path)
		wf, _ := llama.Backend.ToFloat32(w)
		m.Magnitude = m.WeightNorm(wf)
		for i := range m.Magnitude {
			m.Magnitude[i] *= 1.1
		}
	}
	directional(t, llama, dora, rows, "llama DoRA q/k/v")
	dora.Config.LoraDropout = 0.2
	directional(t, llama, dora, rows, "llama DoRA q/k/v with dropout 0.2")

	qwen, err := LoadBase(cpu.New(0), "testdata/tiny-qwen3")
	if err != nil {
		t.Fatal(err)
	}
	defer qwen.Close()
	cfg := lora.DefaultConfig()
	cfg.R = 4
	cfg.UseRSLoRA = true
	cfg.TargetModules = lora.Targets{Names: LinearNames}
	cfg.InitLoraWeights = lora.InitMode{Value: "false"}
	lins, _ := qwen.Linears(false)
	qa, err := lora.New(cfg, lins, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range qa.Modules { // kaiming B is large: shrink so the loss stays smooth
		for i := range m.B {
			m.B[i] *= 0.05
		}
	}
	directional(t, qwen, qa, rows, "qwen3 rsLoRA all linears")
}

// The training forward agrees with runtime/model's inference forward with the adapter attached
// (lora.Attach), for LoRA and DoRA.
func TestLossMatchesModelForward(t *testing.T) {
	base := loadTiny(t)
	rows := rows4(t)[:3]
	lor, _ := lora.Load(filepath.Join(fixtures[1], "adapter_end"))
	dora, _ := lora.Load(filepath.Join(fixtures[1], "adapter_end"))
	dora.Config.UseDoRA = true
	for _, m := range dora.Modules {
		w, _ := base.weightOf(m.Path)
		wf, _ := base.Backend.ToFloat32(w)
		m.Magnitude = m.WeightNorm(wf)
		for i := range m.Magnitude {
			m.Magnitude[i] *= 1 + 0.3*float32(math.Cos(float64(i)))
		}
	}
	for name, a := range map[string]*lora.Adapter{"lora": lor, "dora": dora} {
		got, err := Loss(base, a, rows)
		if err != nil {
			t.Fatal(err)
		}
		detach, err := lora.Attach(base.Model, a)
		if err != nil {
			t.Fatal(err)
		}
		want := modelForwardLoss(t, base.Model.Forward, base.Backend, base.Arch.Vocab, rows)
		detach()
		t.Logf("%s: training loss %.7f, model forward %.7f", name, got, want)
		if math.Abs(got-want) > 1e-5*want {
			t.Errorf("%s: training loss %.7f, model forward %.7f", name, got, want)
		}
	}
}

// modelForwardLoss is the mean cross-entropy of rows' counted labels (label at pos+1 predicted at
// pos, IgnoreIndex skipped) under an inference forward (runtime/model's Forward, one row at a time,
// no cache), whose logits over vocab classes be reads back: the reference of the training loss.
func modelForwardLoss(t *testing.T, forward func(context.Context, model.Input, *model.Cache) (*tensor.Tensor, error),
	be tensor.Backend, vocab int, rows []Example) float64 {
	t.Helper()
	var sum float64
	count := 0
	for _, r := range rows {
		lg, err := forward(context.Background(), model.Input{IDs: r.InputIDs, B: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := be.ToFloat32(lg)
		lg.Free()
		for pos := 0; pos+1 < len(r.InputIDs); pos++ {
			l := r.Labels[pos+1]
			if l == IgnoreIndex {
				continue
			}
			sum += tensortest.NLL(v[pos*vocab:(pos+1)*vocab], int(l))
			count++
		}
	}
	return sum / float64(count)
}

// Gradient checkpointing gives the same gradients with a lower activation peak.
func TestGradientCheckpointingMemory(t *testing.T) {
	rows := rows4(t)
	var peaks [2]int64
	var grads [2]map[string][]float32
	for i, rc := range []bool{false, true} {
		b := cpu.New(0)
		base, err := LoadBase(b, "testdata/tiny-llama")
		if err != nil {
			t.Fatal(err)
		}
		before := b.MemStats().Current
		a := startAdapter(t, fixtures[1], 0.1)
		if _, grads[i], err = Gradients(base, a, rows, rc); err != nil {
			t.Fatal(err)
		}
		peaks[i] = b.MemStats().Peak - before
		base.Close()
	}
	t.Logf("activation peak: %d bytes stored, %d bytes with recomputation", peaks[0], peaks[1])
	if peaks[1] >= peaks[0] {
		t.Errorf("recomputation did not lower the peak: %d vs %d bytes", peaks[1], peaks[0])
	}
	for n, g := range grads[0] {
		if !reflect.DeepEqual(g, grads[1][n]) {
			t.Errorf("%s: gradients differ with recomputation (rel %g)", n, relErr(grads[1][n], g))
		}
	}
}

// Biases on every linear (Qwen2 has q/k/v biases, Llama's attention_bias/mlp_bias) and a sliding
// window (Mistral, Qwen2/3 window layers) go through forward and backward consistently.
func TestGradientBiasAndWindow(t *testing.T) {
	base := loadTiny(t)
	b := base.Backend
	g := rand.New(rand.NewPCG(3, 3))
	for l := range base.Layers {
		for i, w := range base.Layers[l].W {
			v := make([]float32, w.Dim(0))
			for j := range v {
				v[j] = float32(g.NormFloat64() * 0.05)
			}
			bt, err := b.FromFloat32(tensor.F32, []int{w.Dim(0)}, v)
			if err != nil {
				t.Fatal(err)
			}
			defer bt.Free()
			base.Layers[l].Bias[i] = bt
		}
		base.Layers[l].Window = 5
	}
	rows := rows4(t)
	directional(t, base, startAdapter(t, fixtures[1], 0), rows, "llama with biases and a window of 5")
	dora := startAdapter(t, fixtures[0], 0.1)
	dora.Config.UseDoRA = true
	for _, m := range dora.Modules {
		w, _ := base.weightOf(m.Path)
		wf, _ := b.ToFloat32(w)
		m.Magnitude = m.WeightNorm(wf)
	}
	directional(t, base, dora, rows, "DoRA with biases and dropout")
	// the window changes the loss (it is not ignored)
	a := startAdapter(t, fixtures[1], 0)
	lw, _ := Loss(base, a, rows)
	for l := range base.Layers {
		base.Layers[l].Window = 0
	}
	lf, _ := Loss(base, a, rows)
	if lw == lf {
		t.Error("the sliding window did not change the loss")
	}
}
