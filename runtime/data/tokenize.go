package data

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Tokenizer is what tokenizing needs; runtime/tokenizer.Tokenizer satisfies it.
type Tokenizer interface {
	// Encode returns the token ids of text; addSpecial adds the model's BOS (if it has one).
	Encode(text string, addSpecial bool) []int
	// EOS returns the end-of-sequence ids (the first one is appended to answers).
	EOS() []int
}

// TokenizeOptions control Dataset.Tokenize.
type TokenizeOptions struct {
	// MaxLength truncates input_ids/labels to at most this many tokens, dropping from the end
	// (0: no limit).
	MaxLength int
	// NoEOS: do not append EOS after the target (default: append EOS()[0] when the tokenizer has one).
	NoEOS bool
	// NoSpecial: encode the context without special tokens (default: with them, i.e. BOS first).
	NoSpecial bool
	// Joint encodes context+target as one text and masks its first len(Encode(context)) tokens
	// (Axolotl's and many HF scripts' way; a token spanning the boundary counts as answer).
	// Default: context and target are encoded separately (FinGPT's way; the boundary is exact).
	Joint bool
	// Workers is the number of goroutines (default runtime.NumCPU()).
	Workers int
	// ContextColumn and TargetColumn default to "context" and "target".
	ContextColumn, TargetColumn string
}

// Tokenize turns {context, target} rows into training examples, in parallel, and returns a new
// dataset with the receiver's columns plus (replacing any of the same name):
//
//	input_ids list<int32>: Encode(context, !NoSpecial) ++ Encode(target, false) ++ [EOS()[0]]
//	labels    list<int32>: -100 for every context token, then the target (and EOS) ids
//	length    int32:       len(input_ids), the attention length
//
// Context and target are encoded separately and concatenated (as FinGPT's tokenizing does), so
// the prompt/answer boundary is exact; Joint encodes them as one text instead (see EncodeJoint). Truncation to MaxLength drops tokens from the
// end. A dataset that is already KindTokenized gets only the length column (re-)computed, with
// labels defaulting to a copy of input_ids when absent. The caller owns the result.
func (d *Dataset) Tokenize(tok Tokenizer, opts TokenizeOptions) (*Dataset, error) {
	d.check()
	if opts.ContextColumn == "" {
		opts.ContextColumn = ColContext
	}
	if opts.TargetColumn == "" {
		opts.TargetColumn = ColTarget
	}
	if d.Kind() == KindTokenized {
		ex, err := d.Examples()
		if err != nil {
			return nil, err
		}
		ids := make([][]int32, len(ex))
		labels := make([][]int32, len(ex))
		for i, e := range ex {
			ids[i], labels[i] = e.InputIDs, e.Labels
		}
		return d.withTokenColumns(ids, labels)
	}
	ctxs, err := d.Strings(opts.ContextColumn)
	if err != nil {
		return nil, fmt.Errorf("tokenize: %w", err)
	}
	tgts, err := d.Strings(opts.TargetColumn)
	if err != nil {
		return nil, fmt.Errorf("tokenize: %w", err)
	}
	eos := -1
	if e := tok.EOS(); !opts.NoEOS && len(e) > 0 {
		eos = e[0]
	}
	n := len(ctxs)
	ids := make([][]int32, n)
	labels := make([][]int32, n)
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	if workers > n {
		workers = max(n, 1)
	}
	var wg sync.WaitGroup
	per := (n + workers - 1) / workers
	for w := 0; w < workers; w++ {
		lo, hi := w*per, min((w+1)*per, n)
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				if opts.Joint {
					ids[i], labels[i] = EncodeJoint(tok, ctxs[i], tgts[i], !opts.NoSpecial, eos, opts.MaxLength)
				} else {
					ids[i], labels[i] = EncodeExample(tok, ctxs[i], tgts[i], !opts.NoSpecial, eos, opts.MaxLength)
				}
			}
		}(lo, hi)
	}
	wg.Wait()
	return d.withTokenColumns(ids, labels)
}

// EncodeExample builds one training example: the context's ids (with special tokens if
// addSpecial) masked to -100 in labels, then the target's ids and eos (if eos >= 0) as labels;
// truncated to maxLength tokens if maxLength > 0. Both slices have the same length.
func EncodeExample(tok Tokenizer, context, target string, addSpecial bool, eos, maxLength int) (inputIDs, labels []int32) {
	c := tok.Encode(context, addSpecial)
	t := tok.Encode(target, false)
	n := len(c) + len(t)
	if eos >= 0 {
		n++
	}
	inputIDs = make([]int32, 0, n)
	labels = make([]int32, 0, n)
	for _, id := range c {
		inputIDs = append(inputIDs, int32(id))
		labels = append(labels, IgnoreIndex)
	}
	for _, id := range t {
		inputIDs = append(inputIDs, int32(id))
		labels = append(labels, int32(id))
	}
	if eos >= 0 {
		inputIDs = append(inputIDs, int32(eos))
		labels = append(labels, int32(eos))
	}
	if maxLength > 0 && len(inputIDs) > maxLength {
		inputIDs, labels = inputIDs[:maxLength], labels[:maxLength]
	}
	return inputIDs, labels
}

// EncodeJoint is EncodeExample with context+target encoded as one text: the first
// min(len(Encode(context)), len) labels are -100, the rest equal the ids.
func EncodeJoint(tok Tokenizer, context, target string, addSpecial bool, eos, maxLength int) (inputIDs, labels []int32) {
	nc := len(tok.Encode(context, addSpecial))
	all := tok.Encode(context+target, addSpecial)
	if eos >= 0 {
		all = append(all, eos)
	}
	if maxLength > 0 && len(all) > maxLength {
		all = all[:maxLength]
	}
	inputIDs = make([]int32, len(all))
	labels = make([]int32, len(all))
	for k, id := range all {
		inputIDs[k] = int32(id)
		labels[k] = int32(id)
		if k < nc {
			labels[k] = IgnoreIndex
		}
	}
	return inputIDs, labels
}

// withTokenColumns returns the receiver's columns (minus input_ids/labels/length) plus the given
// token columns and their lengths.
func (d *Dataset) withTokenColumns(ids, labels [][]int32) (*Dataset, error) {
	schema := d.tbl.Schema()
	var fields []arrow.Field
	var cols []arrow.Column
	for i, f := range schema.Fields() {
		if f.Name == ColInputIDs || f.Name == ColLabels || f.Name == ColLength {
			continue
		}
		fields = append(fields, f)
		cols = append(cols, *d.tbl.Column(i))
	}
	lengths := make([]int32, len(ids))
	for i := range ids {
		lengths[i] = int32(len(ids[i]))
	}
	newArrs := []arrow.Array{buildInt32Lists(d.mem, ids), buildInt32Lists(d.mem, labels), buildInt32s(d.mem, lengths)}
	newFields := []arrow.Field{
		{Name: ColInputIDs, Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)},
		{Name: ColLabels, Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)},
		{Name: ColLength, Type: arrow.PrimitiveTypes.Int32},
	}
	for i, a := range newArrs {
		ch := arrow.NewChunked(a.DataType(), []arrow.Array{a})
		col := arrow.NewColumn(newFields[i], ch)
		a.Release()
		ch.Release()
		fields = append(fields, newFields[i])
		cols = append(cols, *col)
		defer col.Release()
	}
	out := arrow.NewSchema(fields, nil)
	return d.derive(d.name, array.NewTable(out, cols, int64(len(ids)))), nil
}

// Example is one training row as Go slices: InputIDs and Labels have equal length; Labels is
// IgnoreIndex (-100) where no loss is taken.
type Example struct {
	InputIDs []int32
	Labels   []int32
}

// Examples copies the input_ids and labels columns into Go slices (labels absent: a copy of
// input_ids). It fails on a dataset without input_ids (call Tokenize first) and on a row whose
// labels length differs from its input_ids length.
func (d *Dataset) Examples() ([]Example, error) {
	ids, err := d.Int32Lists(ColInputIDs)
	if err != nil {
		return nil, fmt.Errorf("examples (tokenize the dataset first?): %w", err)
	}
	var labels [][]int32
	if d.HasColumn(ColLabels) {
		if labels, err = d.Int32Lists(ColLabels); err != nil {
			return nil, fmt.Errorf("examples: %w", err)
		}
	}
	out := make([]Example, len(ids))
	for i := range ids {
		out[i].InputIDs = ids[i]
		if labels == nil {
			out[i].Labels = append([]int32(nil), ids[i]...)
			continue
		}
		if len(labels[i]) != len(ids[i]) {
			return nil, fmt.Errorf("dataset %s: row %d: %d input_ids but %d labels", d.name, i, len(ids[i]), len(labels[i]))
		}
		out[i].Labels = labels[i]
	}
	return out, nil
}
