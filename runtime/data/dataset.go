// Package data holds datasets as Apache Arrow tables: reading JSONL, Parquet and CSV files,
// FinLoRA's {context, target} rows and pre-tokenized {input_ids, labels} rows, tokenizing into
// list<int32> columns, seeded train/test splits, length-grouped padded batches for the trainer,
// and an HTML view for notebooks.
//
// A Dataset owns one arrow.Table. Every function that returns a *Dataset hands ownership to the
// caller, who must call Release (or its alias Free) exactly once; datasets never rely on the
// garbage collector to free Arrow buffers. Heavy loops (parsing, tokenizing, batching) are
// compiled Go, so notebook cells call them rather than looping over rows themselves.
package data

import (
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Well-known column names.
const (
	ColContext  = "context"   // utf8: the prompt (FinLoRA rows)
	ColTarget   = "target"    // utf8: the answer (FinLoRA rows)
	ColInputIDs = "input_ids" // list<int32>: token ids, prompt then answer
	ColLabels   = "labels"    // list<int32>: same length as input_ids; -100 where no loss is taken
	ColLength   = "length"    // int32: number of real (attended) tokens of the row
)

// IgnoreIndex is the label value of positions that take no loss (masked prompt tokens and
// padding), as in Hugging Face transformers and PyTorch's cross-entropy.
const IgnoreIndex = -100

// Kind says what a dataset's rows are.
type Kind int

const (
	// KindOther: neither of the shapes below.
	KindOther Kind = iota
	// KindPrompt: rows have utf8 "context" and "target" columns (FinLoRA's format).
	KindPrompt
	// KindTokenized: rows have a list<int32 or int64> "input_ids" column (and usually "labels").
	KindTokenized
)

// String returns "prompt{context,target}", "tokenized{input_ids,labels}" or "other" (as
// Dataset.String shows the kind).
func (k Kind) String() string {
	switch k {
	case KindPrompt:
		return "prompt{context,target}"
	case KindTokenized:
		return "tokenized{input_ids,labels}"
	}
	return "other"
}

// Dataset is a named Arrow table. It owns its table: Release frees it. Methods that derive a new
// dataset (Slice, Take, Split, Tokenize, Select) return new owned datasets and leave the receiver
// untouched; the two share Arrow buffers by reference counting, so releasing one never breaks the
// other.
type Dataset struct {
	name     string
	tbl      arrow.Table
	mem      memory.Allocator
	skipped  []BadLine
	released atomic.Bool
}

// BadLine records one input line that a reader skipped because ReadOptions.SkipBadLines was set.
type BadLine struct {
	Line int    // 1-based line number in the file
	Err  string // why it was rejected
}

// NewDataset wraps tbl. It takes over the caller's reference to tbl (it does not Retain), so the
// caller must not Release tbl afterwards; Release of the dataset releases it. mem is the
// allocator used for derived datasets (nil: memory.DefaultAllocator).
func NewDataset(name string, tbl arrow.Table, mem memory.Allocator) *Dataset {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	return &Dataset{name: name, tbl: tbl, mem: mem}
}

// Name is the dataset's display name (by default the file it was read from).
func (d *Dataset) Name() string { return d.name }

// SetName changes the display name.
func (d *Dataset) SetName(name string) { d.name = name }

// Table returns the underlying table, borrowed: valid until Release; Retain it to keep it longer.
func (d *Dataset) Table() arrow.Table { d.check(); return d.tbl }

// Schema returns the table's schema.
func (d *Dataset) Schema() *arrow.Schema { d.check(); return d.tbl.Schema() }

// NumRows is the number of rows.
func (d *Dataset) NumRows() int { d.check(); return int(d.tbl.NumRows()) }

// Len is NumRows.
func (d *Dataset) Len() int { return d.NumRows() }

// ColumnNames lists the columns in schema order.
func (d *Dataset) ColumnNames() []string {
	d.check()
	fs := d.tbl.Schema().Fields()
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Name
	}
	return out
}

// HasColumn reports whether a column of that name exists.
func (d *Dataset) HasColumn(name string) bool {
	d.check()
	return len(d.tbl.Schema().FieldIndices(name)) > 0
}

// Skipped lists the input lines a reader skipped (only with ReadOptions.SkipBadLines).
func (d *Dataset) Skipped() []BadLine { return d.skipped }

// Kind classifies the rows by their columns.
func (d *Dataset) Kind() Kind {
	d.check()
	if d.HasColumn(ColInputIDs) {
		return KindTokenized
	}
	if d.HasColumn(ColContext) && d.HasColumn(ColTarget) {
		return KindPrompt
	}
	return KindOther
}

// Release frees the table. It is safe to call more than once; any other use after Release panics.
func (d *Dataset) Release() {
	if d == nil || d.released.Swap(true) {
		return
	}
	d.tbl.Release()
	d.tbl = nil
}

// Free is Release (the name notebooks use for every runtime object).
func (d *Dataset) Free() { d.Release() }

func (d *Dataset) check() {
	if d == nil || d.released.Load() {
		panic("data: use of a released Dataset")
	}
}

// column returns the chunked column called name, or an error naming the dataset and column.
func (d *Dataset) column(name string) (*arrow.Chunked, error) {
	d.check()
	idx := d.tbl.Schema().FieldIndices(name)
	if len(idx) == 0 {
		return nil, fmt.Errorf("dataset %s: no column %q (have %s)", d.name, name, strings.Join(d.ColumnNames(), ", "))
	}
	return d.tbl.Column(idx[0]).Data(), nil
}

// derive wraps a new table in a dataset carrying the receiver's name and allocator.
func (d *Dataset) derive(name string, tbl arrow.Table) *Dataset {
	return &Dataset{name: name, tbl: tbl, mem: d.mem}
}
