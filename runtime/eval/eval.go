package eval

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/finlora/finlora/runtime/data"
)

// Generator produces greedy (argmax) continuations for a batch of prompts. It returns exactly one
// string per prompt: the generated text only (not the prompt), decoded with special tokens
// skipped, at most maxNewTokens tokens, stopping early at the model's EOS (Evaluate replaces
// invalid UTF-8 by U+FFFD). Implementations pad the batch as they need (FinLoRA pads on the left).
// It should return ctx.Err() promptly when ctx is cancelled.
type Generator interface {
	GenerateGreedy(ctx context.Context, prompts []string, maxNewTokens int) ([]string, error)
}

// GeneratorFunc adapts a function to Generator.
type GeneratorFunc func(ctx context.Context, prompts []string, maxNewTokens int) ([]string, error)

// GenerateGreedy calls f.
func (f GeneratorFunc) GenerateGreedy(ctx context.Context, prompts []string, maxNewTokens int) ([]string, error) {
	return f(ctx, prompts, maxNewTokens)
}

// Options control Evaluate.
type Options struct {
	// Model names the model (and adapter) in summaries and comparisons, e.g. "base" or "lora-r8".
	Model string
	// BatchSize is the number of prompts per GenerateGreedy call (default 8, FinLoRA's).
	BatchSize int
	// Limit, when > 0, evaluates only the first Limit rows.
	Limit int
	// MaxNewTokens overrides the task's (0: Task.MaxNewTokens).
	MaxNewTokens int
	// Delimiter for output extraction (default "Answer:", FinLoRA's; "-" means none: the
	// generated text trimmed).
	Delimiter string
	// Labels overrides the label set (default: Labels of all the dataset's targets, before Limit).
	Labels []string
	// Progress, if set, is called after each batch with rows done and rows total.
	Progress func(done, total int)
	// Allocator for the result table (nil: memory.DefaultAllocator).
	Allocator memory.Allocator
}

// Row is the outcome of one question.
type Row struct {
	Index      int     // row index in the dataset
	Prompt     string  // the context sent to the model
	Target     string  // the reference answer
	Generated  string  // the raw generated text
	Output     string  // FinLoRA's extracted output (see ExtractOutput)
	Prediction string  // earliest label, or the output for free-text tasks
	Correct    bool    // see Scores.Correct
	Score      float64 // see Scores.RowScore
	TimeMS     float64 // the batch's wall time divided by its size, milliseconds
}

// Summary is the aggregate of one task for one model.
type Summary struct {
	Task  string
	Model string
	N     int // questions evaluated
	// Accuracy and F1 are the task's two headline numbers, named by MetricNames: FinLoRA's
	// accuracy and weighted F1 (classification and formula), or exact_match and token_f1 (free
	// text, where FinLoRA uses BERTScore).
	Accuracy, F1 float64
	MetricNames  [2]string
	Metrics      []Metric // every metric, in report order (includes the two above)
	Note         string   // how the metrics relate to FinLoRA's; empty when they are its own
	MaxNewTokens int
	BatchSize    int
	Total        time.Duration // wall time of generation and scoring
	PerQuestion  time.Duration // Total / N
}

// String is a one-line report, e.g. "fpb base: n=100 accuracy=0.6100 f1=0.5874 (12ms/question)".
func (s Summary) String() string {
	out := fmt.Sprintf("%s %s: n=%d", s.Task, s.Model, s.N)
	for _, m := range s.Metrics {
		out += fmt.Sprintf(" %s=%.4f", m.Name, m.Value)
	}
	return out + fmt.Sprintf(" (%.1f ms/question, %s total)", float64(s.PerQuestion.Microseconds())/1000, s.Total.Round(time.Millisecond))
}

// Result holds one evaluation: the summary, the rows as Go values, and the rows as an Arrow table
// (owned: Release frees it).
type Result struct {
	Summary Summary
	Rows    []Row
	table   arrow.Table
}

// Table returns the per-question table, borrowed (valid until Release). Columns: task utf8,
// index int64, prompt utf8, target utf8, generated utf8, output utf8, prediction utf8,
// correct bool, score float64, time_ms float64.
func (r *Result) Table() arrow.Table { return r.table }

// Dataset wraps a new reference to the per-question table as a data.Dataset (for its HTML view
// and file writers); the caller releases the dataset, the Result keeps its own reference.
func (r *Result) Dataset() *data.Dataset {
	r.table.Retain()
	return data.NewDataset(r.Summary.Task+" results ("+r.Summary.Model+")", r.table, nil)
}

// Release frees the table; safe to call twice.
func (r *Result) Release() {
	if r != nil && r.table != nil {
		r.table.Release()
		r.table = nil
	}
}

// Free is Release.
func (r *Result) Free() { r.Release() }

// Evaluate runs task on the dataset's {context, target} rows with gen. Rows go to the generator
// in order, BatchSize at a time; ctx is checked before every batch, and on cancellation Evaluate
// returns the result of the batches done so far together with an error wrapping ctx.Err().
// The caller owns the result (Release).
func Evaluate(ctx context.Context, gen Generator, task Task, ds *data.Dataset, opts Options) (*Result, error) {
	prompts, err := ds.Strings(data.ColContext)
	if err != nil {
		return nil, fmt.Errorf("eval %s: %w", task.Name, err)
	}
	targets, err := ds.Strings(data.ColTarget)
	if err != nil {
		return nil, fmt.Errorf("eval %s: %w", task.Name, err)
	}
	return EvaluatePrompts(ctx, gen, task, prompts, targets, opts)
}

// EvaluatePrompts is Evaluate over Go slices of prompts and targets.
func EvaluatePrompts(ctx context.Context, gen Generator, task Task, prompts, targets []string, opts Options) (*Result, error) {
	if len(prompts) != len(targets) {
		return nil, fmt.Errorf("eval %s: %d prompts but %d targets", task.Name, len(prompts), len(targets))
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 8
	}
	if opts.MaxNewTokens <= 0 {
		opts.MaxNewTokens = task.MaxNewTokens
	}
	switch opts.Delimiter {
	case "":
		opts.Delimiter = "Answer:"
	case "-":
		opts.Delimiter = ""
	}
	if opts.Model == "" {
		opts.Model = "model"
	}
	labels := opts.Labels
	if labels == nil {
		labels = Labels(targets)
	}
	n := len(prompts)
	if opts.Limit > 0 && opts.Limit < n {
		n = opts.Limit
	}
	start := time.Now()
	rows := make([]Row, 0, n)
	var runErr error
	for lo := 0; lo < n; lo += opts.BatchSize {
		if err := ctx.Err(); err != nil {
			runErr = fmt.Errorf("eval %s: stopped after %d of %d questions: %w", task.Name, lo, n, err)
			break
		}
		hi := min(lo+opts.BatchSize, n)
		t0 := time.Now()
		gens, err := gen.GenerateGreedy(ctx, prompts[lo:hi], opts.MaxNewTokens)
		if err == nil && len(gens) != hi-lo {
			err = fmt.Errorf("generator returned %d texts for %d prompts", len(gens), hi-lo)
		}
		if err != nil {
			runErr = fmt.Errorf("eval %s: questions %d-%d: %w", task.Name, lo, hi-1, err)
			break
		}
		per := float64(time.Since(t0).Microseconds()) / 1000 / float64(hi-lo)
		for i, g := range gens {
			k := lo + i
			// Arrow utf8 must be valid UTF-8; byte-level tokens can end mid-character. Python's
			// decode(errors="replace") does the same replacement.
			g = strings.ToValidUTF8(g, "\uFFFD")
			rows = append(rows, Row{Index: k, Prompt: prompts[k], Target: targets[k], Generated: g,
				Output: ExtractOutput(prompts[k], g, opts.Delimiter), TimeMS: per})
		}
		if opts.Progress != nil {
			opts.Progress(hi, n)
		}
	}
	res, err := finish(task, rows, labels, opts, start)
	if err != nil {
		return nil, err
	}
	return res, runErr
}

// finish scores the rows and builds the summary and table.
func finish(task Task, rows []Row, labels []string, opts Options, start time.Time) (*Result, error) {
	tg := make([]string, len(rows))
	out := make([]string, len(rows))
	for i, r := range rows {
		tg[i], out[i] = r.Target, r.Output
	}
	sc, err := Score(task.Scoring, tg, out, labels)
	if err != nil {
		return nil, fmt.Errorf("eval %s: %w", task.Name, err)
	}
	for i := range rows {
		rows[i].Prediction, rows[i].Correct, rows[i].Score = sc.Predictions[i], sc.Correct[i], sc.RowScore[i]
	}
	total := time.Since(start)
	s := Summary{
		Task: task.Name, Model: opts.Model, N: len(rows),
		Accuracy: sc.Metrics[0].Value, F1: sc.Metrics[1].Value,
		MetricNames: [2]string{sc.Metrics[0].Name, sc.Metrics[1].Name},
		Metrics:     sc.Metrics, Note: sc.Note,
		MaxNewTokens: opts.MaxNewTokens, BatchSize: opts.BatchSize, Total: total,
	}
	if len(rows) > 0 {
		s.PerQuestion = total / time.Duration(len(rows))
	}
	return &Result{Summary: s, Rows: rows, table: rowsTable(task.Name, rows, opts.Allocator)}, nil
}

func rowsTable(task string, rows []Row, mem memory.Allocator) arrow.Table {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "task", Type: arrow.BinaryTypes.String},
		{Name: "index", Type: arrow.PrimitiveTypes.Int64},
		{Name: "prompt", Type: arrow.BinaryTypes.String},
		{Name: "target", Type: arrow.BinaryTypes.String},
		{Name: "generated", Type: arrow.BinaryTypes.String},
		{Name: "output", Type: arrow.BinaryTypes.String},
		{Name: "prediction", Type: arrow.BinaryTypes.String},
		{Name: "correct", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "score", Type: arrow.PrimitiveTypes.Float64},
		{Name: "time_ms", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.StringBuilder).Append(task)
		b.Field(1).(*array.Int64Builder).Append(int64(r.Index))
		b.Field(2).(*array.StringBuilder).Append(r.Prompt)
		b.Field(3).(*array.StringBuilder).Append(r.Target)
		b.Field(4).(*array.StringBuilder).Append(r.Generated)
		b.Field(5).(*array.StringBuilder).Append(r.Output)
		b.Field(6).(*array.StringBuilder).Append(r.Prediction)
		b.Field(7).(*array.BooleanBuilder).Append(r.Correct)
		b.Field(8).(*array.Float64Builder).Append(r.Score)
		b.Field(9).(*array.Float64Builder).Append(r.TimeMS)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return array.NewTableFromRecords(schema, []arrow.RecordBatch{rec})
}
