package experiment

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/finlora/finlora/lora"
	"github.com/finlora/finlora/runtime/data"
	"github.com/finlora/finlora/runtime/eval"
	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/train"
)

// DefaultTasks are the five FinLoRA classification tasks of the experiment.
var DefaultTasks = []string{"fpb", "fiqa", "tfns", "nwgi", "ner"}

// Options configure the experiment. Zero values take the defaults noted (FinLoRA's adapter
// settings: alpha 16, dropout 0.05, q/k/v projections).
type Options struct {
	Model          string   // .gguf file or model directory ("": the installed gemma3-270m, see DefaultModelPath)
	Device         string   // backend name ("": tensor.Default(), i.e. $FINLORA_DEVICE, the GPU if any, else the CPU)
	DType          string   // dense weight dtype: "bf16" (default) or "f32"
	Quant          string   // "nf4", "fp4" or "int8": the base's projections held quantized (QLoRA); "": dense
	DataDir        string   // FinLoRA test folder ("": FindDataDir)
	Tasks          []string // DefaultTasks when empty
	Ranks          []int    // LoRA ranks, one adapter each ({4, 8} when empty)
	EvalLimit      int      // evaluated rows per task (200 when 0)
	TrainSentiment int      // sentiment training rows (TFNS+NWGI; 200 when 0, none when negative)
	TrainNER       int      // NER training rows (100 when 0, none when negative)
	Steps          int      // optimizer steps per adapter (0: one epoch over the training rows)
	BatchSize      int      // training rows per step (8 when 0)
	EvalBatch      int      // prompts generated together (8 when 0, FinLoRA's)
	LR             float64  // AdamW learning rate (1e-3 when 0), decaying linearly to 0 (no warmup: few steps)
	Alpha          float64  // lora_alpha (16 when 0)
	Dropout        float64  // lora_dropout (0.05 when 0; negative: none)
	Targets        []string // target modules (q_proj, k_proj, v_proj when empty)
	MaxLength      int      // training rows truncated to this many tokens (256 when 0)
	Seed           uint64   // split, adapter init, shuffling, dropout (42 when 0)
	OutDir         string   // adapters are saved in OutDir/lora-rN ("": not saved)
	Log            io.Writer
}

func (o *Options) defaults() {
	if len(o.Tasks) == 0 {
		o.Tasks = DefaultTasks
	}
	if len(o.Ranks) == 0 {
		o.Ranks = []int{4, 8}
	}
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&o.EvalLimit, 200)
	def(&o.TrainSentiment, 200)
	def(&o.TrainNER, 100)
	o.TrainSentiment, o.TrainNER = max(o.TrainSentiment, 0), max(o.TrainNER, 0)
	def(&o.BatchSize, 8)
	def(&o.EvalBatch, 8)
	def(&o.MaxLength, 256)
	if o.DType == "" {
		o.DType = "bf16"
	}
	if o.LR == 0 {
		o.LR = 1e-3
	}
	if o.Alpha == 0 {
		o.Alpha = 16
	}
	if o.Dropout == 0 {
		o.Dropout = 0.05
	} else if o.Dropout < 0 {
		o.Dropout = 0
	}
	if len(o.Targets) == 0 {
		o.Targets = []string{"q_proj", "k_proj", "v_proj"}
	}
	if o.Seed == 0 {
		o.Seed = 42
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// DefaultModelPath returns the installed Gemma 3 270M GGUF file
// ($FINLORA_HOME/models/gemma3-270m/model.gguf, FINLORA_HOME defaulting to ~/.cache/finlora), or ""
// when it is not installed.
func DefaultModelPath() string {
	home := os.Getenv("FINLORA_HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		home = filepath.Join(h, ".cache", "finlora")
	}
	p := filepath.Join(home, "models", "gemma3-270m", "model.gguf")
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
		return p
	}
	return ""
}

// AdapterRun is one trained adapter and its results.
type AdapterRun struct {
	Rank      int
	Adapter   *lora.Adapter
	Steps     int
	Losses    []float64 // per step
	TrainTime time.Duration
	Memory    train.Memory // of the training run (weights, adapter, optimizer, activation peak)
	Results   map[string]eval.Summary
	Path      string // where it was saved ("" if not)
}

// Experiment holds the state of one run: the model, the splits and the results so far. It owns
// the Backbone (Close frees it).
type Experiment struct {
	Options  Options
	Backbone *Backbone
	Splits   *Splits
	Base     map[string]eval.Summary
	Adapters []*AdapterRun
	EvalTime time.Duration // total evaluation wall time so far
	Started  time.Time
}

// New loads the model and the data and makes the splits.
func New(ctx context.Context, opts Options) (*Experiment, error) {
	opts.defaults()
	e := &Experiment{Options: opts, Base: map[string]eval.Summary{}, Started: time.Now()}
	if opts.Model == "" {
		if opts.Model = DefaultModelPath(); opts.Model == "" {
			return nil, fmt.Errorf("experiment: Gemma 3 270M is not installed (scripts/install-model.sh) and no model was given")
		}
		e.Options.Model = opts.Model
	}
	dir, err := FindDataDir(opts.DataDir)
	if err != nil {
		return nil, err
	}
	e.Options.DataDir = dir
	for _, t := range opts.Tasks {
		if _, err := eval.LookupTask(t); err != nil || !contains(DefaultTasks, t) {
			return nil, fmt.Errorf("experiment: task %q: want some of %v", t, DefaultTasks)
		}
	}
	if e.Splits, err = MakeSplits(dir, opts.Tasks, opts.EvalLimit, opts.TrainSentiment, opts.TrainNER, opts.Seed); err != nil {
		return nil, err
	}
	if err := e.Splits.Check(); err != nil {
		return nil, err
	}
	var b tensor.Backend
	if opts.Device != "" {
		if b, err = tensor.Get(opts.Device); err != nil {
			return nil, fmt.Errorf("experiment: device %s: %w", opts.Device, err)
		}
	}
	dt, err := tensor.ParseDType(opts.DType)
	if err != nil || !dt.IsFloat() {
		return nil, fmt.Errorf("experiment: dtype %q: want bf16, f16 or f32", opts.DType)
	}
	if e.Backbone, err = LoadBackboneQuant(ctx, opts.Model, b, dt, opts.Quant); err != nil {
		return nil, err
	}
	fmt.Fprintf(opts.Log, "model: %s (loaded in %s)\n", e.Backbone, e.Backbone.LoadTime.Round(time.Millisecond))
	fmt.Fprintf(opts.Log, "data: %s\nsplit: %s\n", dir, e.Splits.Rule)
	return e, nil
}

// Close frees the model.
func (e *Experiment) Close() error {
	if e.Backbone == nil {
		return nil
	}
	err := e.Backbone.Close()
	e.Backbone = nil
	return err
}

// evaluate runs every task's evaluation rows through the model with adapter a (nil: the base).
func (e *Experiment) evaluate(ctx context.Context, a *lora.Adapter, name string) (map[string]eval.Summary, error) {
	gen, detach, err := e.Backbone.Generator(a, 0)
	if err != nil {
		return nil, err
	}
	defer detach()
	out := map[string]eval.Summary{}
	for _, task := range e.Options.Tasks {
		t, _ := eval.LookupTask(task)
		all, err := ReadRows(filepath.Join(e.Options.DataDir, task+"_test.jsonl"), task)
		if err != nil {
			return nil, err
		}
		var targets []string
		for _, r := range all {
			targets = append(targets, r.Target)
		}
		rows := e.Splits.Eval[task]
		prompts, tg := make([]string, len(rows)), make([]string, len(rows))
		for i, r := range rows {
			prompts[i], tg[i] = r.Context, r.Target
		}
		start := time.Now()
		res, err := eval.EvaluatePrompts(ctx, gen, t, prompts, tg, eval.Options{Model: name, BatchSize: e.Options.EvalBatch,
			Labels: eval.Labels(targets)})
		e.EvalTime += time.Since(start)
		if err != nil {
			return nil, err
		}
		out[task] = res.Summary
		res.Release()
		fmt.Fprintf(e.Options.Log, "%-8s %-5s n=%d accuracy %.3f F1 %.3f (%.1f s)\n", name, task, res.Summary.N,
			res.Summary.Accuracy, res.Summary.F1, time.Since(start).Seconds())
	}
	return out, nil
}

// EvaluateBase evaluates the base model zero-shot on every task's evaluation rows.
func (e *Experiment) EvaluateBase(ctx context.Context) error {
	res, err := e.evaluate(ctx, nil, "base")
	if err != nil {
		return err
	}
	e.Base = res
	return nil
}

// TrainingExamples tokenizes the training rows (prompt masked, EOS appended, BOS first, at most
// MaxLength tokens).
func (e *Experiment) TrainingExamples() []train.Example {
	tok := e.Backbone.Tokenizer
	eos := -1
	if ids := tok.EOS(); len(ids) > 0 {
		eos = ids[0]
	}
	ex := make([]train.Example, len(e.Splits.Train))
	for i, r := range e.Splits.Train {
		ids, labels := data.EncodeExample(tok, r.Context, r.Target, true, eos, e.Options.MaxLength)
		ex[i] = train.Example{InputIDs: ids, Labels: labels}
	}
	return ex
}

// Train trains a new adapter of rank r on the training rows and records it in e.Adapters.
func (e *Experiment) Train(ctx context.Context, r int) (*AdapterRun, error) {
	o := e.Options
	base, err := e.Backbone.NewTrainBase(o.MaxLength + 8)
	if err != nil {
		return nil, err
	}
	defer base.Close()
	cfg := lora.DefaultConfig()
	cfg.R, cfg.LoraAlpha, cfg.LoraDropout = r, o.Alpha, o.Dropout
	cfg.TargetModules = lora.Targets{Names: o.Targets}
	cfg.BaseModelNameOrPath = o.Model
	lins, err := base.Linears(false)
	if err != nil {
		return nil, err
	}
	a, err := lora.New(cfg, lins, o.Seed+uint64(r))
	if err != nil {
		return nil, err
	}
	run := &AdapterRun{Rank: r, Adapter: a, Results: map[string]eval.Summary{}}
	ex := e.TrainingExamples()
	tc := train.Config{AdamW: train.AdamWConfig{LR: o.LR, Betas: [2]float64{0.9, 0.999}, Eps: 1e-8},
		Schedule: train.Linear, BatchSize: o.BatchSize, Steps: o.Steps, Epochs: 1,
		MaxGradNorm: 1, Shuffle: true, Seed: o.Seed,
		Progress: func(m train.StepMetrics) {
			run.Losses = append(run.Losses, m.Loss)
			fmt.Fprintf(o.Log, "lora-r%d step %d loss %.4f lr %.2e (%.1f s)\n", r, m.Step, m.Loss, m.LR, m.Duration.Seconds())
		}}
	tr, err := train.NewTrainer(base, a, ex, tc)
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	start := time.Now()
	err = tr.Run(ctx)
	run.TrainTime = time.Since(start)
	run.Steps = len(run.Losses)
	run.Memory = tr.Memory()
	if err != nil {
		return run, err
	}
	if o.OutDir != "" {
		run.Path = filepath.Join(o.OutDir, fmt.Sprintf("lora-r%d", r))
		if err := a.Save(run.Path); err != nil {
			return run, err
		}
	}
	e.Adapters = append(e.Adapters, run)
	fmt.Fprintf(o.Log, "lora-r%d: %d steps in %s, training memory %s\n", r, run.Steps, run.TrainTime.Round(time.Second), humanBytes(run.Memory.Total()))
	return run, nil
}

// EvaluateAdapter evaluates a trained adapter on every task's evaluation rows.
func (e *Experiment) EvaluateAdapter(ctx context.Context, run *AdapterRun) error {
	res, err := e.evaluate(ctx, run.Adapter, fmt.Sprintf("lora-r%d", run.Rank))
	if err != nil {
		return err
	}
	run.Results = res
	return nil
}

// Run does the whole experiment: New, EvaluateBase, then Train and EvaluateAdapter per rank. The
// caller closes the returned Experiment (also on error, when it is non-nil).
func Run(ctx context.Context, opts Options) (*Experiment, error) {
	e, err := New(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := e.EvaluateBase(ctx); err != nil {
		return e, err
	}
	for _, r := range e.Options.Ranks {
		run, err := e.Train(ctx, r)
		if err != nil {
			return e, err
		}
		if err := e.EvaluateAdapter(ctx, run); err != nil {
			return e, err
		}
	}
	return e, nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// Command is the CLI line that reproduces these options (for the results note).
func (o Options) Command() string {
	var ranks []string
	for _, r := range o.Ranks {
		ranks = append(ranks, fmt.Sprint(r))
	}
	s := fmt.Sprintf("finlora experiment -model %s -tasks %s -ranks %s -eval-limit %d -train-sentiment %d -train-ner %d -batch-size %d -lr %g -seed %d",
		o.Model, strings.Join(o.Tasks, ","), strings.Join(ranks, ","), o.EvalLimit, o.TrainSentiment, o.TrainNER, o.BatchSize, o.LR, o.Seed)
	if o.Steps > 0 {
		s += fmt.Sprintf(" -steps %d", o.Steps)
	}
	if t := strings.Join(o.Targets, ","); t != "q_proj,k_proj,v_proj" {
		s += " -targets " + t
	}
	if o.Device != "" {
		s += " -device " + o.Device
	}
	if o.Quant != "" {
		s += " -quant " + o.Quant
	}
	return s
}
