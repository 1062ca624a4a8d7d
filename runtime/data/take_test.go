package data

import (
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestTakeEveryType takes rows (repeated, reordered) of a table holding one column of every type
// Take supports plus one it renders as text (uint8), each with a null, and checks value, nullness
// and the result type of every cell.
func TestTakeEveryType(t *testing.T) {
	mem := checked(t)
	var cols []arrow.Array
	var fields []arrow.Field
	add := func(name string, b array.Builder, fill func()) {
		fill()
		cols = append(cols, b.NewArray())
		fields = append(fields, arrow.Field{Name: name, Type: cols[len(cols)-1].DataType(), Nullable: true})
		b.Release()
	}
	s := array.NewStringBuilder(mem)
	add("utf8", s, func() { s.AppendValues([]string{"a", "", "c"}, []bool{true, false, true}) })
	ls := array.NewLargeStringBuilder(mem)
	add("large_utf8", ls, func() { ls.AppendValues([]string{"x", "y", ""}, []bool{true, true, false}) })
	bo := array.NewBooleanBuilder(mem)
	add("bool", bo, func() { bo.AppendValues([]bool{true, false, false}, []bool{true, true, false}) })
	i32 := array.NewInt32Builder(mem)
	add("int32", i32, func() { i32.AppendValues([]int32{0, -7, 9}, []bool{false, true, true}) })
	i64 := array.NewInt64Builder(mem)
	add("int64", i64, func() { i64.AppendValues([]int64{1 << 40, 0, -3}, []bool{true, false, true}) })
	f32 := array.NewFloat32Builder(mem)
	add("float32", f32, func() { f32.AppendValues([]float32{1.5, 0, -2}, []bool{true, false, true}) })
	f64 := array.NewFloat64Builder(mem)
	add("float64", f64, func() { f64.AppendValues([]float64{0, 2.25, -1e300}, []bool{false, true, true}) })
	l32 := array.NewListBuilder(mem, arrow.PrimitiveTypes.Int32)
	add("list_int32", l32, func() {
		l32.Append(true)
		l32.ValueBuilder().(*array.Int32Builder).AppendValues([]int32{1, 2}, nil)
		l32.AppendNull()
		l32.Append(true)
	})
	l64 := array.NewLargeListBuilder(mem, arrow.PrimitiveTypes.Int64)
	add("large_list_int64", l64, func() {
		l64.AppendNull()
		l64.Append(true)
		l64.ValueBuilder().(*array.Int64Builder).AppendValues([]int64{5, 1 << 33, 7}, nil)
		l64.Append(true)
	})
	u8 := array.NewUint8Builder(mem)
	add("uint8", u8, func() { u8.AppendValues([]uint8{3, 0, 255}, []bool{true, false, true}) })

	schema := arrow.NewSchema(fields, nil)
	rec := array.NewRecordBatch(schema, cols, 3)
	for _, c := range cols {
		c.Release()
	}
	d := NewDataset("types", array.NewTableFromRecords(schema, []arrow.RecordBatch{rec}), mem)
	rec.Release()
	defer d.Release()

	rows := []int{2, 0, 0, 1}
	got, err := d.Take(rows)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	wantType := map[string]string{
		"list_int32": "list<item: int32, nullable>", "large_list_int64": "list<item: int64, nullable>", "uint8": "utf8",
	}
	for i, f := range fields {
		src := d.tbl.Column(i).Data().Chunk(0)
		out := got.tbl.Column(i).Data().Chunk(0)
		want := f.Type.String()
		if w, ok := wantType[f.Name]; ok {
			want = w
		}
		if out.DataType().String() != want {
			t.Errorf("%s: type %s, want %s", f.Name, out.DataType(), want)
		}
		for k, r := range rows {
			if out.IsNull(k) != src.IsNull(r) || (!src.IsNull(r) && out.ValueStr(k) != src.ValueStr(r)) {
				t.Errorf("%s row %d (source %d): %q null=%v, want %q null=%v", f.Name, k, r, out.ValueStr(k), out.IsNull(k), src.ValueStr(r), src.IsNull(r))
			}
		}
	}
}

// Int64s gives 0 for a null even where the null slot holds another value (Arrow leaves null slots
// undefined; other producers need not zero them), and refuses a non-integer column.
func TestInt64sNulls(t *testing.T) {
	mem := checked(t)
	vals := memory.NewBufferBytes(arrow.Int32Traits.CastToBytes([]int32{5, 7, -2}))
	valid := memory.NewBufferBytes([]byte{0b101}) // row 1 null, its slot holds 7
	data := array.NewData(arrow.PrimitiveTypes.Int32, 3, []*memory.Buffer{valid, vals}, nil, 1, 0)
	col := array.MakeFromData(data)
	data.Release()
	f := array.NewFloat64Builder(mem)
	f.AppendValues([]float64{1, 2, 3}, nil)
	fc := f.NewArray()
	f.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "n", Type: col.DataType(), Nullable: true}, {Name: "x", Type: fc.DataType()}}, nil)
	rec := array.NewRecordBatch(schema, []arrow.Array{col, fc}, 3)
	col.Release()
	fc.Release()
	d := NewDataset("nulls", array.NewTableFromRecords(schema, []arrow.RecordBatch{rec}), mem)
	rec.Release()
	defer d.Release()
	got, err := d.Int64s("n")
	if err != nil || !slices.Equal(got, []int64{5, 0, -2}) {
		t.Errorf("Int64s = %v, %v; want [5 0 -2]", got, err)
	}
	if _, err := d.Int64s("x"); err == nil {
		t.Error("Int64s of a float64 column: no error")
	}
}

// Strings gives "" for a null even where the null slot's offsets span bytes.
func TestStringsNulls(t *testing.T) {
	mem := checked(t)
	offsets := memory.NewBufferBytes(arrow.Int32Traits.CastToBytes([]int32{0, 1, 3, 4}))
	valid := memory.NewBufferBytes([]byte{0b101}) // row 1 null, its slot spans "zz"
	data := array.NewData(arrow.BinaryTypes.String, 3, []*memory.Buffer{valid, offsets, memory.NewBufferBytes([]byte("azzc"))}, nil, 1, 0)
	col := array.MakeFromData(data)
	data.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "s", Type: col.DataType(), Nullable: true}}, nil)
	rec := array.NewRecordBatch(schema, []arrow.Array{col}, 3)
	col.Release()
	d := NewDataset("nulls", array.NewTableFromRecords(schema, []arrow.RecordBatch{rec}), mem)
	rec.Release()
	defer d.Release()
	if got, err := d.Strings("s"); err != nil || !slices.Equal(got, []string{"a", "", "c"}) {
		t.Errorf("Strings = %q, %v; want [a  c]", got, err)
	}
}
