package gguf

import (
	"bytes"
	"reflect"
	"testing"
)

// TestBuilderMatchesTestWriter: the exported Builder and the test's own writer produce the same
// bytes for the same content, and the parser reads back what was set.
func TestBuilderMatchesTestWriter(t *testing.T) {
	b := NewBuilder()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.Set("general.architecture", "llama"))
	must(b.Set("general.alignment", uint32(64)))
	must(b.Set("u8", uint8(7)))
	must(b.Set("i64", int64(-3)))
	must(b.Set("f64", 0.5))
	must(b.Set("bools", []bool{true, false}))
	must(b.Set("toks", []string{"a", "▁b"}))
	must(b.Set("ids", []int32{-1, 2}))
	must(b.Set("nested", []Array{{ValueUint16, []uint16{1, 2}}, {ValueString, []string{"x"}}}))
	w := f32bytes(1, 2, 3, 4, 5, 6)
	q := make([]byte, 34)
	q[0], q[1] = 0x00, 0x3c // d = 1
	q[2] = 0xff             // -1
	must(b.AddTensor("w", TypeF32, []uint64{3, 2}, w))
	must(b.AddTensor("q", TypeQ8_0, []uint64{32}, q))
	var got bytes.Buffer
	if _, err := b.WriteTo(&got); err != nil {
		t.Fatal(err)
	}
	want := testFile{alignment: 64, kvs: []testKV{
		{"general.architecture", ValueString, "llama"},
		{"general.alignment", ValueUint32, uint32(64)},
		{"u8", ValueUint8, uint8(7)},
		{"i64", ValueInt64, int64(-3)},
		{"f64", ValueFloat64, 0.5},
		{"bools", ValueArray, testArr{ValueBool, []any{true, false}}},
		{"toks", ValueArray, testArr{ValueString, []any{"a", "▁b"}}},
		{"ids", ValueArray, testArr{ValueInt32, []any{int32(-1), int32(2)}}},
		{"nested", ValueArray, testArr{ValueArray, []any{testArr{ValueUint16, []any{uint16(1), uint16(2)}}, testArr{ValueString, []any{"x"}}}}},
	}, tensors: []testTensor{{"w", []uint64{3, 2}, TypeF32, w}, {"q", []uint64{32}, TypeQ8_0, q}}}.bytes()
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("Builder wrote %d bytes, the test writer %d; they differ", got.Len(), len(want))
	}
	f, err := FromBytes("built", got.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if ids, _ := f.Metadata().Ints("ids"); !reflect.DeepEqual(ids, []int64{-1, 2}) {
		t.Errorf("ids = %v", ids)
	}
	if v, _ := f.Float32("q"); v[0] != -1 || v[1] != 0 {
		t.Errorf("q = %v", v[:2])
	}
	for _, bad := range []func() error{
		func() error { return b.AddTensor("w", TypeF32, []uint64{1}, f32bytes(1)) },        // duplicate
		func() error { return b.AddTensor("x", TypeQ8_0, []uint64{16}, make([]byte, 17)) }, // partial block
		func() error { return b.AddTensor("y", TypeF32, []uint64{2}, f32bytes(1)) },        // short data
		func() error { return b.Set("general.alignment", uint32(12)) },
		func() error { return b.Set("bad", struct{}{}) },
	} {
		if bad() == nil {
			t.Error("want an error")
		}
	}
}
