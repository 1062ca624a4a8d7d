package data

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Strings copies a column into a Go slice, one string per row. utf8 and large_utf8 columns are
// read as they are; other columns are rendered with Arrow's ValueStr. A null becomes "".
func (d *Dataset) Strings(col string) ([]string, error) {
	ch, err := d.column(col)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, ch.Len())
	for _, c := range ch.Chunks() {
		value := c.ValueStr
		switch a := c.(type) {
		case *array.String:
			value = a.Value
		case *array.LargeString:
			value = a.Value
		}
		for i := 0; i < c.Len(); i++ {
			if c.IsNull(i) { // a null slot's bytes are undefined in Arrow
				out = append(out, "")
			} else {
				out = append(out, value(i))
			}
		}
	}
	return out, nil
}

// Int32Lists copies a list<int32> or list<int64> column (large_list too) into Go slices, one per
// row (a null row is nil). int64 values outside int32 range are an error naming the row.
func (d *Dataset) Int32Lists(col string) ([][]int32, error) {
	ch, err := d.column(col)
	if err != nil {
		return nil, err
	}
	out := make([][]int32, 0, ch.Len())
	row := 0
	for _, c := range ch.Chunks() {
		for i := 0; i < c.Len(); i++ {
			v, err := listRowInt32(c, i)
			if err != nil {
				return nil, fmt.Errorf("dataset %s: column %q row %d: %w", d.name, col, row, err)
			}
			out = append(out, v)
			row++
		}
	}
	return out, nil
}

// listRowInt32 returns row i of a list array of integers as a fresh []int32.
func listRowInt32(c arrow.Array, i int) ([]int32, error) {
	if c.IsNull(i) {
		return nil, nil
	}
	values, start, end, ok := listRow(c, i)
	if !ok {
		return nil, fmt.Errorf("want a list of integers, have %s", c.DataType())
	}
	out := make([]int32, end-start)
	switch v := values.(type) {
	case *array.Int32:
		copy(out, v.Int32Values()[start:end])
	case *array.Int64:
		for k, x := range v.Int64Values()[start:end] {
			if x != int64(int32(x)) {
				return nil, fmt.Errorf("value %d does not fit int32", x)
			}
			out[k] = int32(x)
		}
	default:
		return nil, fmt.Errorf("want list<int32> or list<int64>, have list<%s>", values.DataType())
	}
	return out, nil
}

// Int64s copies an integer column (int8..int64, uint8..uint32) into a Go slice; a null is 0.
func (d *Dataset) Int64s(col string) ([]int64, error) {
	ch, err := d.column(col)
	if err != nil {
		return nil, err
	}
	out := make([]int64, 0, ch.Len())
	for _, c := range ch.Chunks() {
		var value func(i int) int64
		switch a := c.(type) {
		case *array.Int64:
			value = a.Value
		case *array.Int32:
			value = func(i int) int64 { return int64(a.Value(i)) }
		case *array.Int16:
			value = func(i int) int64 { return int64(a.Value(i)) }
		case *array.Int8:
			value = func(i int) int64 { return int64(a.Value(i)) }
		case *array.Uint32:
			value = func(i int) int64 { return int64(a.Value(i)) }
		case *array.Uint16:
			value = func(i int) int64 { return int64(a.Value(i)) }
		case *array.Uint8:
			value = func(i int) int64 { return int64(a.Value(i)) }
		default:
			return nil, fmt.Errorf("dataset %s: column %q is %s, not an integer column", d.name, col, c.DataType())
		}
		for i := 0; i < c.Len(); i++ {
			if c.IsNull(i) { // the slot's value is undefined in Arrow
				out = append(out, 0)
			} else {
				out = append(out, value(i))
			}
		}
	}
	return out, nil
}

// FromPrompts builds a {context, target} dataset from Go slices of equal length. The caller owns
// the result (Release). mem nil means memory.DefaultAllocator.
func FromPrompts(name string, contexts, targets []string, mem memory.Allocator) (*Dataset, error) {
	if len(contexts) != len(targets) {
		return nil, fmt.Errorf("data.FromPrompts %s: %d contexts but %d targets", name, len(contexts), len(targets))
	}
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: ColContext, Type: arrow.BinaryTypes.String},
		{Name: ColTarget, Type: arrow.BinaryTypes.String},
	}, nil)
	c := buildStrings(mem, contexts)
	defer c.Release()
	t := buildStrings(mem, targets)
	defer t.Release()
	rec := array.NewRecordBatch(schema, []arrow.Array{c, t}, int64(len(contexts)))
	defer rec.Release()
	return NewDataset(name, array.NewTableFromRecords(schema, []arrow.RecordBatch{rec}), mem), nil
}

// FromTokenized builds an {input_ids, labels, length} dataset from Go slices (labels nil: a copy
// of input_ids, i.e. loss on every token). Each labels row must have its input_ids row's length.
func FromTokenized(name string, inputIDs, labels [][]int32, mem memory.Allocator) (*Dataset, error) {
	if labels != nil && len(labels) != len(inputIDs) {
		return nil, fmt.Errorf("data.FromTokenized %s: %d input_ids rows but %d labels rows", name, len(inputIDs), len(labels))
	}
	if labels == nil {
		labels = inputIDs
	}
	lengths := make([]int32, len(inputIDs))
	for i := range inputIDs {
		if len(labels[i]) != len(inputIDs[i]) {
			return nil, fmt.Errorf("data.FromTokenized %s: row %d has %d input_ids but %d labels", name, i, len(inputIDs[i]), len(labels[i]))
		}
		lengths[i] = int32(len(inputIDs[i]))
	}
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	ids := buildInt32Lists(mem, inputIDs)
	defer ids.Release()
	lab := buildInt32Lists(mem, labels)
	defer lab.Release()
	ln := buildInt32s(mem, lengths)
	defer ln.Release()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: ColInputIDs, Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)},
		{Name: ColLabels, Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)},
		{Name: ColLength, Type: arrow.PrimitiveTypes.Int32},
	}, nil)
	rec := array.NewRecordBatch(schema, []arrow.Array{ids, lab, ln}, int64(len(inputIDs)))
	defer rec.Release()
	return NewDataset(name, array.NewTableFromRecords(schema, []arrow.RecordBatch{rec}), mem), nil
}

func buildStrings(mem memory.Allocator, v []string) arrow.Array {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	b.AppendValues(v, nil)
	return b.NewArray()
}

func buildInt32s(mem memory.Allocator, v []int32) arrow.Array {
	b := array.NewInt32Builder(mem)
	defer b.Release()
	b.AppendValues(v, nil)
	return b.NewArray()
}

func buildInt32Lists(mem memory.Allocator, rows [][]int32) arrow.Array {
	b := array.NewListBuilder(mem, arrow.PrimitiveTypes.Int32)
	defer b.Release()
	vb := b.ValueBuilder().(*array.Int32Builder)
	for _, r := range rows {
		b.Append(true)
		vb.AppendValues(r, nil)
	}
	return b.NewArray()
}

// Slice returns rows [start, end) as a new dataset sharing buffers with the receiver.
func (d *Dataset) Slice(start, end int) (*Dataset, error) {
	d.check()
	n := d.NumRows()
	if start < 0 || end > n || start > end {
		return nil, fmt.Errorf("dataset %s: slice [%d, %d) out of range of %d rows", d.name, start, end, n)
	}
	nc := int(d.tbl.NumCols())
	cols := make([]arrow.Column, nc)
	for i := 0; i < nc; i++ {
		c := array.NewColumnSlice(d.tbl.Column(i), int64(start), int64(end))
		cols[i] = *c
		defer c.Release()
	}
	return d.derive(d.name, array.NewTable(d.tbl.Schema(), cols, int64(end-start))), nil
}

// Head returns the first n rows (all rows when n <= 0 or n >= NumRows).
func (d *Dataset) Head(n int) *Dataset {
	if n <= 0 || n > d.NumRows() {
		n = d.NumRows()
	}
	s, _ := d.Slice(0, n)
	return s
}

// Select returns a dataset with only the named columns, in the given order.
func (d *Dataset) Select(cols ...string) (*Dataset, error) {
	d.check()
	fields := make([]arrow.Field, 0, len(cols))
	columns := make([]arrow.Column, 0, len(cols))
	for _, c := range cols {
		idx := d.tbl.Schema().FieldIndices(c)
		if len(idx) == 0 {
			return nil, fmt.Errorf("dataset %s: select: no column %q", d.name, c)
		}
		fields = append(fields, d.tbl.Schema().Field(idx[0]))
		columns = append(columns, *d.tbl.Column(idx[0]))
	}
	schema := arrow.NewSchema(fields, nil)
	return d.derive(d.name, array.NewTable(schema, columns, d.tbl.NumRows())), nil
}

// Take returns the rows at the given indices, in that order, as a new dataset with freshly built
// columns. Supported column types: utf8, large_utf8, bool, int32, int64, float32, float64,
// list<int32>, list<int64>; others are copied through their string form (ValueStr) into utf8.
func (d *Dataset) Take(rows []int) (*Dataset, error) {
	d.check()
	n := d.NumRows()
	for _, r := range rows {
		if r < 0 || r >= n {
			return nil, fmt.Errorf("dataset %s: take: row %d out of range of %d rows", d.name, r, n)
		}
	}
	schema := d.tbl.Schema()
	fields := make([]arrow.Field, schema.NumFields())
	cols := make([]arrow.Array, schema.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i := range fields {
		f := schema.Field(i)
		whole, err := concatChunks(d.tbl.Column(i).Data(), d.mem)
		if err != nil {
			return nil, fmt.Errorf("dataset %s: take column %q: %w", d.name, f.Name, err)
		}
		taken, typ := takeArray(d.mem, whole, rows)
		whole.Release()
		f.Type = typ
		fields[i] = f
		cols[i] = taken
	}
	out := arrow.NewSchema(fields, nil)
	rec := array.NewRecordBatch(out, cols, int64(len(rows)))
	defer rec.Release()
	return d.derive(d.name, array.NewTableFromRecords(out, []arrow.RecordBatch{rec})), nil
}

func concatChunks(ch *arrow.Chunked, mem memory.Allocator) (arrow.Array, error) {
	chunks := ch.Chunks()
	if len(chunks) == 1 {
		chunks[0].Retain()
		return chunks[0], nil
	}
	if len(chunks) == 0 {
		b := array.NewBuilder(mem, ch.DataType())
		defer b.Release()
		return b.NewArray(), nil
	}
	return array.Concatenate(chunks, mem)
}

// takeArray gathers rows of a into a new array; it returns the array and its type.
func takeArray(mem memory.Allocator, a arrow.Array, rows []int) (arrow.Array, arrow.DataType) {
	switch v := a.(type) {
	case *array.String:
		return takeValues[string](array.NewStringBuilder(mem), v, rows), a.DataType()
	case *array.LargeString:
		return takeValues[string](array.NewLargeStringBuilder(mem), v, rows), a.DataType()
	case *array.Int32:
		return takeValues[int32](array.NewInt32Builder(mem), v, rows), a.DataType()
	case *array.Int64:
		return takeValues[int64](array.NewInt64Builder(mem), v, rows), a.DataType()
	case *array.Float64:
		return takeValues[float64](array.NewFloat64Builder(mem), v, rows), a.DataType()
	case *array.Float32:
		return takeValues[float32](array.NewFloat32Builder(mem), v, rows), a.DataType()
	case *array.Boolean:
		return takeValues[bool](array.NewBooleanBuilder(mem), v, rows), a.DataType()
	case *array.List, *array.LargeList:
		if isIntList(a.DataType()) {
			typ := arrow.ListOf(arrow.PrimitiveTypes.Int32)
			if elemType(a.DataType()).ID() == arrow.INT64 {
				typ = arrow.ListOf(arrow.PrimitiveTypes.Int64)
			}
			b := array.NewListBuilder(mem, typ.Elem())
			defer b.Release()
			for _, r := range rows {
				if a.IsNull(r) {
					b.AppendNull()
					continue
				}
				b.Append(true)
				appendListRow(b.ValueBuilder(), a, r)
			}
			return b.NewArray(), typ
		}
	}
	b := array.NewStringBuilder(mem)
	defer b.Release()
	for _, r := range rows {
		if a.IsNull(r) {
			b.AppendNull()
		} else {
			b.Append(a.ValueStr(r))
		}
	}
	return b.NewArray(), arrow.BinaryTypes.String
}

// takeValues appends rows of src to b (nulls stay null), releases b and returns the new array.
func takeValues[T any, B interface {
	array.Builder
	Append(T)
}](b B, src interface {
	IsNull(int) bool
	Value(int) T
}, rows []int) arrow.Array {
	defer b.Release()
	for _, r := range rows {
		if src.IsNull(r) {
			b.AppendNull()
		} else {
			b.Append(src.Value(r))
		}
	}
	return b.NewArray()
}

func elemType(t arrow.DataType) arrow.DataType {
	switch lt := t.(type) {
	case *arrow.ListType:
		return lt.Elem()
	case *arrow.LargeListType:
		return lt.Elem()
	}
	return nil
}

func isIntList(t arrow.DataType) bool {
	e := elemType(t)
	return e != nil && (e.ID() == arrow.INT32 || e.ID() == arrow.INT64)
}

// listRow returns the values array of a list or large_list array and row r's range [start, end)
// in it; ok is false for any other array type.
func listRow(a arrow.Array, r int) (values arrow.Array, start, end int64, ok bool) {
	switch a.(type) {
	case *array.List, *array.LargeList:
		l := a.(array.ListLike)
		start, end = l.ValueOffsets(r)
		return l.ListValues(), start, end, true
	}
	return nil, 0, 0, false
}

// appendListRow appends the integers of row r of the list array a (list or large_list of int32
// or int64, checked by isIntList) to vb, an Int32Builder or Int64Builder of the same width.
func appendListRow(vb array.Builder, a arrow.Array, r int) {
	values, start, end, _ := listRow(a, r)
	switch v := values.(type) {
	case *array.Int32:
		vb.(*array.Int32Builder).AppendValues(v.Int32Values()[start:end], nil)
	case *array.Int64:
		vb.(*array.Int64Builder).AppendValues(v.Int64Values()[start:end], nil)
	}
}
