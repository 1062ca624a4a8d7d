package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/finlora/finlora/runtime/data"
	"github.com/finlora/finlora/runtime/display"
	"github.com/finlora/finlora/runtime/plot"
	"github.com/finlora/finlora/runtime/train"
)

// FinetuneOptions are the training hyperparameters of Finetune. Zero values mean the defaults
// noted (those of `finlora train`, except that rows are shuffled unless NoShuffle).
type FinetuneOptions struct {
	Steps       int     // optimizer steps; 0: Epochs passes over the rows
	Epochs      int     // passes when Steps is 0 (1 when both are 0)
	BatchSize   int     // rows per micro-batch (2 when 0)
	GradAccum   int     // micro-batches per step (1 when 0)
	LR          float64 // peak learning rate (1e-4 when 0)
	WeightDecay float64 // AdamW decoupled weight decay
	Schedule    string  // "constant" (default), "linear" or "cosine"
	WarmupRatio float64 // warmup as a fraction of the steps
	MaxGradNorm float64 // clip the global gradient norm (0: no clipping)
	MaxLength   int     // truncate tokenized rows to this many tokens, from the end (0: no limit); rows left without answer tokens are an error
	Seed        uint64  // seeds shuffling and LoRA dropout
	NoShuffle   bool    // keep the rows' order
	// Quiet shows nothing; otherwise a progress bar, and in a notebook a loss curve updated in
	// place (an SVG), are displayed while training.
	Quiet bool
}

// FinetuneResult describes one Finetune call.
type FinetuneResult struct {
	Adapter     string
	Rows        int                 // training rows
	StepsDone   int                 // optimizer steps completed by this call
	TotalSteps  int                 // steps the call was asked for
	Interrupted bool                // the cell's context was cancelled: stopped at a step boundary
	FirstLoss   float64             // loss of the first step of this call (0 if none ran)
	FinalLoss   float64             // loss of the last completed step (0 if none ran)
	Duration    time.Duration       // wall time of the training loop
	Metrics     []train.StepMetrics // this call's steps (the adapter's History has all of them)
}

// String is a one-line summary.
func (r *FinetuneResult) String() string {
	s := fmt.Sprintf("finetuned %q: %d/%d steps on %d rows in %s, loss %.4f → %.4f",
		r.Adapter, r.StepsDone, r.TotalSteps, r.Rows, r.Duration.Round(time.Millisecond), r.FirstLoss, r.FinalLoss)
	if r.Interrupted {
		s += " (interrupted: the adapter holds the weights of the last completed step)"
	}
	return s
}

// Finetune trains adapter a on the rows of ds ({context, target} rows are tokenized with the
// model's tokenizer, prompt tokens masked out of the loss and EOS appended; {input_ids, labels}
// rows are used as given). It shows a progress bar and (in a notebook) a loss curve that updates in
// place, unless opts.Quiet.
//
// ctx is checked before every optimizer step and between micro-batches: when it is cancelled (the
// cell is interrupted) training stops at a step boundary, the adapter keeps the weights of the last
// completed step (usable: evaluate it, save it, or call Finetune again to go on), and Finetune
// returns the result so far together with an error wrapping ctx.Err().
//
// Each call starts a fresh AdamW state (zero moments) and its own data order; calling Finetune
// again trains the adapter further from its current weights but is not the exact continuation of
// the earlier run (for that, use `finlora train` checkpoints and --resume). Steps are numbered
// across calls in the adapter's History.
func Finetune(ctx context.Context, a *Adapter, ds *Dataset, opts FinetuneOptions) (*FinetuneResult, error) {
	if err := a.check(); err != nil {
		return nil, fmt.Errorf("finetune: %w", err)
	}
	if err := ds.check(); err != nil {
		return nil, fmt.Errorf("finetune %q: %w", a.Name, err)
	}
	unlock, err := lockModel(ctx, a.Model)
	if err != nil {
		return nil, fmt.Errorf("finetune %q: %w", a.Name, err)
	}
	defer unlock()
	examples, err := trainingExamples(a.Model, ds, opts.MaxLength)
	if err != nil {
		return nil, fmt.Errorf("finetune %q: %w", a.Name, err)
	}
	maxT, empty := 1, 0
	for _, e := range examples {
		maxT = max(maxT, len(e.InputIDs))
		if !hasLabel(e.Labels) {
			empty++
		}
	}
	if empty > 0 {
		return nil, fmt.Errorf("finetune %q: %d of %d rows of %q have no answer token to learn (MaxLength %d cuts them off?)",
			a.Name, empty, len(examples), ds.Name, opts.MaxLength)
	}
	sched, err := train.ParseSchedule(orDefault(opts.Schedule, "constant"))
	if err != nil {
		return nil, fmt.Errorf("finetune %q: %w", a.Name, err)
	}
	base, err := train.NewBase(a.Model.Model, maxT)
	if err != nil {
		return nil, fmt.Errorf("finetune %q: %w", a.Name, err)
	}
	defer base.Close()
	adam := train.DefaultAdamW()
	if opts.LR > 0 {
		adam.LR = opts.LR
	} else {
		adam.LR = 1e-4
	}
	adam.WeightDecay = opts.WeightDecay
	res := &FinetuneResult{Adapter: a.Name, Rows: len(examples)}
	var (
		bar   *display.Progress
		chart *lossChart
	)
	cfg := train.Config{
		AdamW: adam, Schedule: sched, WarmupRatio: opts.WarmupRatio,
		BatchSize: opts.BatchSize, GradAccum: opts.GradAccum, Steps: opts.Steps, Epochs: opts.Epochs,
		MaxGradNorm: opts.MaxGradNorm, Shuffle: !opts.NoShuffle, Seed: opts.Seed,
		Progress: func(m train.StepMetrics) {
			m.Step += len(a.History) - len(res.Metrics) // number steps across Finetune calls
			a.History = append(a.History, m)
			res.Metrics = append(res.Metrics, m)
			if bar != nil {
				bar.SetMessage(fmt.Sprintf("finetune %s: loss %.4f", a.Name, m.Loss))
				bar.Add(1)
			}
			if chart != nil {
				chart.update(a.History, false)
			}
		},
	}
	tr, err := train.NewTrainer(base, a.LoRA, examples, cfg)
	if err != nil {
		return nil, fmt.Errorf("finetune %q: %w", a.Name, err)
	}
	defer tr.Close()
	res.TotalSteps = tr.TotalSteps()
	if !opts.Quiet {
		bar = display.NewProgress(res.TotalSteps, fmt.Sprintf("finetune %s", a.Name))
		if display.InNotebook() {
			chart = newLossChart(a.Name, a.History)
		}
	}
	start := time.Now()
	runErr := tr.Run(ctx)
	res.Duration = time.Since(start)
	res.StepsDone = len(res.Metrics)
	if n := len(res.Metrics); n > 0 {
		res.FirstLoss, res.FinalLoss = res.Metrics[0].Loss, res.Metrics[n-1].Loss
	}
	if bar != nil {
		if runErr != nil {
			bar.SetMessage(fmt.Sprintf("finetune %s: stopped after %d of %d steps", a.Name, res.StepsDone, res.TotalSteps))
		}
		bar.Finish()
	}
	if chart != nil {
		chart.update(a.History, true)
	}
	if runErr != nil {
		if ctx.Err() != nil && errors.Is(runErr, ctx.Err()) {
			res.Interrupted = true
			return res, fmt.Errorf("finetune %q interrupted after step %d of %d (the adapter keeps the weights of its last completed step and is usable): %w",
				a.Name, res.StepsDone, res.TotalSteps, runErr)
		}
		return res, fmt.Errorf("finetune %q: %w", a.Name, runErr)
	}
	return res, nil
}

// trainingExamples tokenizes ds for the model (or takes its input_ids/labels as given).
func trainingExamples(m *LoadedModel, ds *Dataset, maxLength int) ([]train.Example, error) {
	switch ds.Data.Kind() {
	case data.KindTokenized:
		return ds.Data.Examples()
	case data.KindPrompt:
		td, err := ds.Data.Tokenize(m.Tokenizer, data.TokenizeOptions{MaxLength: maxLength})
		if err != nil {
			return nil, err
		}
		defer td.Release()
		return td.Examples()
	}
	return nil, fmt.Errorf("dataset %q: rows must be {context, target} or {input_ids, labels}; columns are %s",
		ds.Name, strings.Join(ds.Columns(), ", "))
}

func hasLabel(labels []int32) bool {
	for _, l := range labels {
		if l != data.IgnoreIndex {
			return true
		}
	}
	return false
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// lossChart is the loss curve of a Finetune call, an SVG shown once and updated in place at most
// every lossChartInterval (and at the end).
type lossChart struct {
	name string
	h    *display.Handle
	last time.Time
}

const lossChartInterval = 250 * time.Millisecond

func newLossChart(name string, history []train.StepMetrics) *lossChart {
	c := &lossChart{name: name}
	c.h = display.SVG(LossCurveSVG(name, history))
	c.last = time.Now()
	return c
}

func (c *lossChart) update(history []train.StepMetrics, final bool) {
	if !final && time.Since(c.last) < lossChartInterval {
		return
	}
	c.last = time.Now()
	c.h.Update(LossCurveSVG(c.name, history))
}

// LossCurveSVG renders the training loss over optimizer steps as an SVG document (the chart
// Finetune shows and updates in place): one line of per-step losses, and, from 8 steps on, their
// moving average over the last 5 steps.
func LossCurveSVG(title string, history []train.StepMetrics) string {
	xs := make([]float64, len(history))
	ys := make([]float64, len(history))
	for i, m := range history {
		xs[i], ys[i] = float64(m.Step), m.Loss
	}
	ch := &plot.LineChart{Title: "training loss — " + title, XLabel: "optimizer step", YLabel: "cross-entropy (nats/token)",
		Series: []plot.Series{{Name: "loss", X: xs, Y: ys}}}
	if len(ys) >= 8 {
		avg := make([]float64, len(ys))
		sum := 0.0
		for i, y := range ys {
			sum += y
			if i >= 5 {
				sum -= ys[i-5]
			}
			avg[i] = sum / float64(min(i+1, 5))
		}
		ch.Series = append(ch.Series, plot.Series{Name: "mean of last 5", X: xs, Y: avg})
	}
	return ch.SVG()
}
