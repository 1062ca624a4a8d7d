package runtime

import (
	"context"
	"fmt"
	"html"
	"strings"

	"github.com/finlora/finlora/runtime/data"
	"github.com/finlora/finlora/runtime/display"
	"github.com/finlora/finlora/runtime/eval"
)

// EvalOptions control Evaluate. The zero value evaluates every row with FinLoRA's settings
// (batches of 8, the task's max new tokens, no prompt truncation) and shows a progress bar.
type EvalOptions struct {
	Limit           int  // evaluate only the first Limit rows (0: all)
	BatchSize       int  // prompts generated together (8 when 0, FinLoRA's)
	MaxNewTokens    int  // override the task's (0: FinLoRA's per-task value)
	MaxPromptTokens int  // keep only the last N prompt tokens (0: no truncation, FinLoRA's way)
	Quiet           bool // no progress bar
}

// EvalResult is the outcome of one Evaluate call: FinLoRA's metrics for one model (with or
// without adapter) on one task, and every question's row.
type EvalResult struct {
	Model    string       // display name: the model's name, or the adapter's
	Task     string       // FinLoRA task name (fpb, tfns, ...)
	Summary  eval.Summary // n, accuracy, weighted F1 (or the free-text metrics), timing
	Result   *eval.Result // per-question rows and their Arrow table (Result.Table)
	Majority string       // most frequent target among the evaluated rows
	// MajorityShare is the accuracy of always answering Majority on these rows: the bar a model
	// must clear to show it learned more than the label distribution.
	MajorityShare float64
	Labels        []string // the label set scored against
	model         *LoadedModel
}

// Evaluate runs FinLoRA's evaluation of task ("fpb", "fiqa", "tfns", "nwgi", "ner", "xbrl_term",
// "formula", "financebench") on the {context, target} rows of ds with model m, with adapter a
// applied (nil: the bare base model). Greedy batched generation, the earliest label in the output
// as the prediction, accuracy and weighted F1 as FinLoRA computes them. ctx is checked before every
// batch: on cancellation it returns the rows done so far with an error wrapping ctx.Err().
func Evaluate(ctx context.Context, m *LoadedModel, a *Adapter, task string, ds *Dataset, opts EvalOptions) (*EvalResult, error) {
	if err := usableModel(m); err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	if err := ds.check(); err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	t, err := eval.LookupTask(task)
	if err != nil {
		return nil, err
	}
	unlock, err := lockModel(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("evaluate %s: %w", task, err)
	}
	defer unlock()
	name := m.Name
	if a != nil {
		name = a.Name
	}
	if name == "" {
		name = "base"
	}
	targets, err := ds.Strings(data.ColTarget)
	if err != nil {
		return nil, fmt.Errorf("evaluate %s: %w", task, err)
	}
	n := len(targets)
	if opts.Limit > 0 && opts.Limit < n {
		n = opts.Limit
	}
	if n == 0 {
		return nil, fmt.Errorf("evaluate %s: dataset %q has no rows", task, ds.Name)
	}
	labels := eval.Labels(targets)
	eo := eval.Options{Model: name, BatchSize: opts.BatchSize, Limit: opts.Limit, MaxNewTokens: opts.MaxNewTokens, Labels: labels}
	var bar *display.Progress
	if !opts.Quiet {
		bar = display.NewProgress(n, fmt.Sprintf("evaluate %s on %s", name, task))
		eo.Progress = func(done, total int) { bar.Set(done) }
	}
	gen := &eval.ModelGenerator{Model: m.Model, Tokenizer: m.Tokenizer, MaxPromptTokens: opts.MaxPromptTokens}
	var res *eval.Result
	runErr := with(m, a, func() error {
		var err error
		res, err = eval.Evaluate(ctx, gen, t, ds.Data, eo)
		return err
	})
	if bar != nil {
		bar.Finish()
	}
	if res == nil {
		if runErr == nil {
			runErr = fmt.Errorf("evaluate %s: no result", task)
		}
		return nil, runErr
	}
	out := &EvalResult{Model: name, Task: t.Name, Summary: res.Summary, Result: res, Labels: labels, model: m}
	count := map[string]int{}
	best := 0
	for _, tg := range targets[:n] {
		l := strings.ToLower(tg)
		count[l]++
		if c := count[l]; c > best || (c == best && l < out.Majority) {
			best, out.Majority = c, l
		}
	}
	out.MajorityShare = float64(best) / float64(n)
	return out, runErr
}

// Accuracy is the task's first headline metric (FinLoRA's accuracy, or exact match for free text).
func (r *EvalResult) Accuracy() float64 { return r.Summary.Accuracy }

// F1 is the task's second headline metric (weighted F1, or token F1 for free text).
func (r *EvalResult) F1() float64 { return r.Summary.F1 }

// N is the number of questions evaluated.
func (r *EvalResult) N() int { return r.Summary.N }

// String is a one-line report.
func (r *EvalResult) String() string {
	return r.Summary.String() + fmt.Sprintf(" [always %q would score %.4f]", r.Majority, r.MajorityShare)
}

// HTML is the notebook view: the summary, then the first questions with outputs and predictions.
func (r *EvalResult) HTML() string {
	return r.Result.HTML() + fmt.Sprintf("<p>Majority label on these rows: <b>%s</b> (%.1f%%): a model that always answers it scores that accuracy.</p>",
		html.EscapeString(r.Majority), 100*r.MajorityShare)
}

// Free releases the per-question Arrow table; idempotent.
func (r *EvalResult) Free() error {
	if r != nil && r.Result != nil {
		r.Result.Release()
	}
	return nil
}

// Comparison is several EvalResults side by side in one table: one row per (task, metric), one
// column per model (the first is the baseline), a Δ column per later model, plus the majority-label
// rate of each task's rows and a note on what the numbers mean.
type Comparison struct {
	Table   *eval.Comparison // the table, also as Arrow (Table.Table())
	Results []*EvalResult    // borrowed
	Note    string           // what the accuracy means for the model that ran
}

// Compare puts results side by side; the first is the baseline (usually the base model). Two
// results of the same model and task are an error.
func Compare(results ...*EvalResult) (*Comparison, error) {
	if len(results) == 0 {
		return nil, fmt.Errorf("compare: no results")
	}
	sums := make([]eval.Summary, len(results))
	for i, r := range results {
		if r == nil {
			return nil, fmt.Errorf("compare: result %d is nil", i)
		}
		sums[i] = r.Summary
	}
	tbl, err := eval.Compare(sums, nil)
	if err != nil {
		return nil, err
	}
	c := &Comparison{Table: tbl, Results: results}
	if m := results[0].model; m != nil {
		c.Note = AboutAccuracy(m, len(results[0].Labels))
	}
	return c, nil
}

// Value returns the value of metric ("accuracy", "f1", ...) of the named model on task.
func (c *Comparison) Value(model, task, metric string) (float64, error) {
	mi := -1
	for i, m := range c.Table.Models {
		if m == model {
			mi = i
		}
	}
	if mi < 0 {
		return 0, fmt.Errorf("comparison has no model %q (have %v)", model, c.Table.Models)
	}
	for _, r := range c.Table.Rows {
		if r.Task == task && r.Metric == metric && r.Has[mi] {
			return r.Values[mi], nil
		}
	}
	return 0, fmt.Errorf("comparison has no %s of %q on %s", metric, model, task)
}

func (c *Comparison) majorities() []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range c.Results {
		if seen[r.Task] {
			continue
		}
		seen[r.Task] = true
		out = append(out, fmt.Sprintf("%s: always %q scores accuracy %.4f on these %d rows", r.Task, r.Majority, r.MajorityShare, r.N()))
	}
	return out
}

// String is the text table with the majority-label rates and the note.
func (c *Comparison) String() string {
	var sb strings.Builder
	sb.WriteString(c.Table.String())
	for _, m := range c.majorities() {
		sb.WriteString("majority baseline — " + m + "\n")
	}
	if c.Note != "" {
		sb.WriteString(c.Note + "\n")
	}
	return sb.String()
}

// HTML is the notebook view of String.
func (c *Comparison) HTML() string {
	var sb strings.Builder
	sb.WriteString(`<div class="finlora-comparison">`)
	sb.WriteString(c.Table.HTML())
	for _, m := range c.majorities() {
		sb.WriteString("<p>Majority baseline — " + html.EscapeString(m) + "</p>")
	}
	if c.Note != "" {
		sb.WriteString("<p><i>" + html.EscapeString(c.Note) + "</i></p>")
	}
	sb.WriteString("</div>")
	return sb.String()
}

// Free releases the table; the results are not freed.
func (c *Comparison) Free() error {
	if c != nil && c.Table != nil {
		c.Table.Release()
	}
	return nil
}
