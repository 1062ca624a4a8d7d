package runtime

import (
	"context"
	"fmt"
	"html"
	"sort"
	"strings"

	"github.com/finlora/finlora/runtime/data"
)

// Dataset is an Arrow dataset (runtime/data) held by a session under Name. Data is owned by the
// Dataset: Free releases it (the session calls Free when the name is replaced or freed).
// Notebooks show it with its HTML view (schema, row count, first rows).
type Dataset struct {
	Name string
	Path string        // the file it was read from; "" for a derived dataset (a split)
	Data *data.Dataset // owned; nil after Free
}

// DatasetOptions control LoadDataset. The zero value reads every row and fails on a bad line.
type DatasetOptions struct {
	Limit        int      // read at most this many rows (0: all)
	SkipBadLines bool     // skip (and count) malformed lines instead of failing with file:line
	Columns      []string // keep only these columns, in this order (nil: all)
}

// LoadDataset reads a JSONL, Parquet or CSV file (chosen by extension: .jsonl/.json/.ndjson,
// .parquet/.pq, .csv) into an Arrow dataset and stores it under name in the Default session,
// freeing what the name held before. FinLoRA's files have {context, target} rows. ctx is checked
// before and after the read (the read itself is one compiled call, fast for FinLoRA's files).
func LoadDataset(ctx context.Context, name, path string, opts DatasetOptions) (*Dataset, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, fmt.Errorf("load dataset %s: empty name", path)
	}
	d, err := data.Read(path, data.ReadOptions{Limit: opts.Limit, SkipBadLines: opts.SkipBadLines, Columns: opts.Columns})
	if err != nil {
		return nil, fmt.Errorf("load dataset %q: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		d.Release()
		return nil, err
	}
	d.SetName(name)
	ds := &Dataset{Name: name, Path: path, Data: d}
	if err := Put(name, ds); err != nil {
		return ds, err
	}
	return ds, nil
}

// GetDataset returns the dataset stored under name in the Default session (borrowed: the session
// keeps ownership).
func GetDataset(name string) (*Dataset, error) {
	obj, ok := Get(name)
	if !ok {
		return nil, fmt.Errorf("no dataset named %q (session holds: %s)", name, strings.Join(Names(), ", "))
	}
	ds, ok := obj.(*Dataset)
	if !ok {
		return nil, fmt.Errorf("%q is a %T, not a dataset", name, obj)
	}
	return ds, nil
}

func (d *Dataset) check() error {
	if d == nil || d.Data == nil {
		return fmt.Errorf("dataset %q has been freed", d.nameOrNil())
	}
	return nil
}

func (d *Dataset) nameOrNil() string {
	if d == nil {
		return "<nil>"
	}
	return d.Name
}

// NumRows is the number of rows (0 after Free).
func (d *Dataset) NumRows() int {
	if d.check() != nil {
		return 0
	}
	return d.Data.NumRows()
}

// Columns lists the column names in schema order.
func (d *Dataset) Columns() []string {
	if d.check() != nil {
		return nil
	}
	return d.Data.ColumnNames()
}

// Strings returns a copy of a utf8 column's values (null as "").
func (d *Dataset) Strings(column string) ([]string, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return d.Data.Strings(column)
}

// Labels returns the distinct values of the "target" column, lower-cased and sorted (the label set
// FinLoRA scores against).
func (d *Dataset) Labels() ([]string, error) {
	tg, err := d.Strings(data.ColTarget)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, t := range tg {
		l := strings.ToLower(t)
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out, nil
}

// MajorityLabel returns the most frequent target (lower-cased; ties: the alphabetically first) and
// the share of rows that carry it, in [0, 1]: the accuracy of a model that always gives that answer.
func (d *Dataset) MajorityLabel() (label string, share float64, err error) {
	tg, err := d.Strings(data.ColTarget)
	if err != nil {
		return "", 0, err
	}
	if len(tg) == 0 {
		return "", 0, fmt.Errorf("dataset %q has no rows", d.Name)
	}
	count := map[string]int{}
	for _, t := range tg {
		count[strings.ToLower(t)]++
	}
	best := -1
	for l, c := range count {
		if c > best || (c == best && l < label) {
			label, best = l, c
		}
	}
	return label, float64(best) / float64(len(tg)), nil
}

// Split divides the rows into disjoint train and test datasets, seeded (runtime/data.SplitIndices:
// round(n·testFraction) test rows, each part in file order), and stores them in the Default session
// as Name+"/train" and Name+"/test". The same (rows, testFraction, seed) always gives the same split.
func (d *Dataset) Split(testFraction float64, seed uint64) (trainDS, testDS *Dataset, err error) {
	if err := d.check(); err != nil {
		return nil, nil, err
	}
	tr, te, err := d.Data.Split(testFraction, seed)
	if err != nil {
		return nil, nil, err
	}
	trainDS = &Dataset{Name: d.Name + "/train", Data: tr}
	testDS = &Dataset{Name: d.Name + "/test", Data: te}
	tr.SetName(trainDS.Name)
	te.SetName(testDS.Name)
	if err := Put(trainDS.Name, trainDS); err != nil {
		return trainDS, testDS, err
	}
	if err := Put(testDS.Name, testDS); err != nil {
		return trainDS, testDS, err
	}
	return trainDS, testDS, nil
}

// Head returns the first n rows as a new dataset named Name+"/head", not stored in the session:
// the caller frees it (or lets it go: its Arrow buffers live on the Go heap).
func (d *Dataset) Head(n int) (*Dataset, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	h := d.Data.Head(n)
	h.SetName(d.Name + "/head")
	return &Dataset{Name: d.Name + "/head", Data: h}, nil
}

// HTML is the notebook's rich view: name, rows, schema and the first rows.
func (d *Dataset) HTML() string {
	if d.check() != nil {
		return "<div><b>dataset " + d.nameOrNil() + "</b> (freed)</div>"
	}
	h := d.Data.HTML()
	if d.Path != "" {
		h = strings.Replace(h, "</p>", " &middot; from <code>"+html.EscapeString(d.Path)+"</code></p>", 1)
	}
	return h
}

// String is the text view (header, schema, first rows).
func (d *Dataset) String() string {
	if d.check() != nil {
		return fmt.Sprintf("dataset %q (freed)", d.nameOrNil())
	}
	return d.Data.String()
}

// Free releases the Arrow table; idempotent.
func (d *Dataset) Free() error {
	if d != nil && d.Data != nil {
		d.Data.Release()
		d.Data = nil
	}
	return nil
}
