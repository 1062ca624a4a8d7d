package eval

import (
	"context"
	"fmt"
	"html"
	"strings"
	"text/tabwriter"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/finlora/finlora/runtime/data"
)

// Comparison puts several models' summaries side by side: one row per (task, metric), one column
// per model, and a "Δ model" column (value minus the first model's) for every model after the
// first. The first model is the baseline (usually the base model without adapter).
type Comparison struct {
	Models []string
	Rows   []ComparisonRow
	table  arrow.Table
}

// ComparisonRow is one (task, metric) line; Values[m] is model m's value, Has[m] whether it has one.
type ComparisonRow struct {
	Task, Metric string
	N            int
	Values       []float64
	Has          []bool
}

// Compare builds a comparison from summaries (any order; models and tasks keep their order of
// first appearance). Two summaries with the same model and task are an error. mem nil means
// memory.DefaultAllocator. The caller owns the result (Release).
func Compare(summaries []Summary, mem memory.Allocator) (*Comparison, error) {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	c := &Comparison{}
	modelIdx := map[string]int{}
	for _, s := range summaries {
		if _, ok := modelIdx[s.Model]; !ok {
			modelIdx[s.Model] = len(c.Models)
			c.Models = append(c.Models, s.Model)
		}
	}
	rowIdx := map[[2]string]int{}
	seen := map[[2]string]bool{}
	for _, s := range summaries {
		if seen[[2]string{s.Model, s.Task}] {
			return nil, fmt.Errorf("compare: model %q has two summaries of task %q", s.Model, s.Task)
		}
		seen[[2]string{s.Model, s.Task}] = true
		m := modelIdx[s.Model]
		for _, met := range s.Metrics {
			key := [2]string{s.Task, met.Name}
			i, ok := rowIdx[key]
			if !ok {
				i = len(c.Rows)
				rowIdx[key] = i
				c.Rows = append(c.Rows, ComparisonRow{Task: s.Task, Metric: met.Name, N: s.N,
					Values: make([]float64, len(c.Models)), Has: make([]bool, len(c.Models))})
			}
			c.Rows[i].Values[m], c.Rows[i].Has[m] = met.Value, true
		}
	}
	c.table = c.buildTable(mem)
	return c, nil
}

// Table returns the comparison as an Arrow table, borrowed (valid until Release). Columns: task
// utf8, metric utf8, n int64, one float64 per model (null where missing), and "Δ <model>" float64
// for each model after the first.
func (c *Comparison) Table() arrow.Table { return c.table }

// Release frees the table; safe to call twice.
func (c *Comparison) Release() {
	if c != nil && c.table != nil {
		c.table.Release()
		c.table = nil
	}
}

// Free is Release.
func (c *Comparison) Free() { c.Release() }

func (c *Comparison) buildTable(mem memory.Allocator) arrow.Table {
	fields := []arrow.Field{
		{Name: "task", Type: arrow.BinaryTypes.String},
		{Name: "metric", Type: arrow.BinaryTypes.String},
		{Name: "n", Type: arrow.PrimitiveTypes.Int64},
	}
	for _, m := range c.Models {
		fields = append(fields, arrow.Field{Name: m, Type: arrow.PrimitiveTypes.Float64, Nullable: true})
	}
	for _, m := range c.deltaModels() {
		fields = append(fields, arrow.Field{Name: "Δ " + m, Type: arrow.PrimitiveTypes.Float64, Nullable: true})
	}
	schema := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for _, r := range c.Rows {
		b.Field(0).(*array.StringBuilder).Append(r.Task)
		b.Field(1).(*array.StringBuilder).Append(r.Metric)
		b.Field(2).(*array.Int64Builder).Append(int64(r.N))
		for m := range c.Models {
			fb := b.Field(3 + m).(*array.Float64Builder)
			if r.Has[m] {
				fb.Append(r.Values[m])
			} else {
				fb.AppendNull()
			}
		}
		for k := range c.deltaModels() {
			m := k + 1
			fb := b.Field(3 + len(c.Models) + k).(*array.Float64Builder)
			if r.Has[0] && r.Has[m] {
				fb.Append(r.Values[m] - r.Values[0])
			} else {
				fb.AppendNull()
			}
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return array.NewTableFromRecords(schema, []arrow.RecordBatch{rec})
}

func (c *Comparison) deltaModels() []string {
	if len(c.Models) < 2 {
		return nil
	}
	return c.Models[1:]
}

func (c *Comparison) cells(r ComparisonRow) []string {
	out := []string{r.Task, r.Metric, fmt.Sprint(r.N)}
	for m := range c.Models {
		if r.Has[m] {
			out = append(out, fmt.Sprintf("%.4f", r.Values[m]))
		} else {
			out = append(out, "–")
		}
	}
	for k := range c.deltaModels() {
		if r.Has[0] && r.Has[k+1] {
			out = append(out, fmt.Sprintf("%+.4f", r.Values[k+1]-r.Values[0]))
		} else {
			out = append(out, "–")
		}
	}
	return out
}

func (c *Comparison) header() []string {
	h := []string{"task", "metric", "n"}
	h = append(h, c.Models...)
	for _, m := range c.deltaModels() {
		h = append(h, "Δ "+m)
	}
	return h
}

// HTML renders the comparison as an HTML table (values to 4 decimals, deltas signed).
func (c *Comparison) HTML() string {
	var sb strings.Builder
	sb.WriteString("<table class=\"finlora-comparison\">\n<thead><tr>")
	for _, h := range c.header() {
		fmt.Fprintf(&sb, "<th>%s</th>", html.EscapeString(h))
	}
	sb.WriteString("</tr></thead>\n<tbody>\n")
	for _, r := range c.Rows {
		sb.WriteString("<tr>")
		for _, v := range c.cells(r) {
			fmt.Fprintf(&sb, "<td>%s</td>", html.EscapeString(v))
		}
		sb.WriteString("</tr>\n")
	}
	sb.WriteString("</tbody>\n</table>")
	return sb.String()
}

// String renders the comparison as an aligned text table.
func (c *Comparison) String() string {
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(c.header(), "\t"))
	for _, r := range c.Rows {
		fmt.Fprintln(tw, strings.Join(c.cells(r), "\t"))
	}
	tw.Flush()
	return sb.String()
}

// HTML renders a result for a notebook: the summary line, the note, and the first 20 questions
// (prompt cut to its last 160 characters, where the question is).
func (r *Result) HTML() string {
	var sb strings.Builder
	s := r.Summary
	fmt.Fprintf(&sb, "<div class=\"finlora-eval\"><p><b>%s</b> &middot; %s &middot; n=%d",
		html.EscapeString(s.Task), html.EscapeString(s.Model), s.N)
	for _, m := range s.Metrics {
		fmt.Fprintf(&sb, " &middot; %s=%.4f", html.EscapeString(m.Name), m.Value)
	}
	fmt.Fprintf(&sb, " &middot; %.1f ms/question</p>\n", float64(s.PerQuestion.Microseconds())/1000)
	if s.Note != "" {
		fmt.Fprintf(&sb, "<p><i>%s</i></p>\n", html.EscapeString(s.Note))
	}
	sb.WriteString("<table>\n<thead><tr><th>#</th><th>prompt (end)</th><th>target</th><th>output</th><th>prediction</th><th>correct</th><th>ms</th></tr></thead>\n<tbody>\n")
	for i, row := range r.Rows {
		if i == 20 {
			break
		}
		p := []rune(row.Prompt)
		if len(p) > 160 {
			p = append([]rune("…"), p[len(p)-160:]...)
		}
		fmt.Fprintf(&sb, "<tr><td>%d</td><td style=\"text-align:left;white-space:pre-wrap\">%s</td><td>%s</td><td style=\"text-align:left\">%s</td><td>%s</td><td>%v</td><td>%.1f</td></tr>\n",
			row.Index, html.EscapeString(string(p)), html.EscapeString(cut(row.Target, 160)), html.EscapeString(cut(row.Output, 160)),
			html.EscapeString(cut(row.Prediction, 160)), row.Correct, row.TimeMS)
	}
	sb.WriteString("</tbody>\n</table>")
	if len(r.Rows) > 20 {
		fmt.Fprintf(&sb, "\n<p>… %d more questions (Result.Table has them all)</p>", len(r.Rows)-20)
	}
	sb.WriteString("</div>")
	return sb.String()
}

func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// Candidate is one model (or model + adapter) to evaluate under a display name.
type Candidate struct {
	Name      string
	Generator Generator
}

// EvaluateMany evaluates every candidate on the same task and rows (opts.Model is replaced by
// each candidate's Name) and compares them, the first candidate being the baseline. The caller
// owns the results and the comparison (Release each). On an error (or cancellation) the results
// finished so far are returned with it, and no comparison.
func EvaluateMany(ctx context.Context, cands []Candidate, task Task, ds *data.Dataset, opts Options) ([]*Result, *Comparison, error) {
	var results []*Result
	for _, c := range cands {
		o := opts
		o.Model = c.Name
		res, err := Evaluate(ctx, c.Generator, task, ds, o)
		if res != nil {
			results = append(results, res)
		}
		if err != nil {
			return results, nil, err
		}
	}
	sums := make([]Summary, len(results))
	for i, r := range results {
		sums[i] = r.Summary
	}
	cmp, err := Compare(sums, opts.Allocator)
	return results, cmp, err
}
