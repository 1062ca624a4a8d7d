package gguf

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/finlora/finlora/runtime/safetensors"
)

func f32bytes(v ...float32) []byte {
	return safetensors.Float32Bytes(v)
}

// allKinds is a metadata set with one value of every type, arrays of every element type and a
// nested array.
func allKinds() []testKV {
	return []testKV{
		{"general.architecture", ValueString, "llama"},
		{"u8", ValueUint8, uint8(200)},
		{"i8", ValueInt8, int8(-5)},
		{"u16", ValueUint16, uint16(60000)},
		{"i16", ValueInt16, int16(-30000)},
		{"u32", ValueUint32, uint32(4000000000)},
		{"i32", ValueInt32, int32(-2000000000)},
		{"f32", ValueFloat32, float32(1.5)},
		{"bool", ValueBool, true},
		{"str", ValueString, "héllo ▁world"},
		{"u64", ValueUint64, uint64(1) << 63},
		{"i64", ValueInt64, int64(-1) << 62},
		{"f64", ValueFloat64, math.Pi},
		{"llama.block_count", ValueUint32, uint32(2)},
		{"llama.rope.freq_base", ValueFloat32, float32(10000)},
		{"arr.u8", ValueArray, testArr{ValueUint8, []any{uint8(1), uint8(2)}}},
		{"arr.i8", ValueArray, testArr{ValueInt8, []any{int8(-1)}}},
		{"arr.u16", ValueArray, testArr{ValueUint16, []any{uint16(7)}}},
		{"arr.i16", ValueArray, testArr{ValueInt16, []any{int16(-7)}}},
		{"arr.u32", ValueArray, testArr{ValueUint32, []any{uint32(9), uint32(10)}}},
		{"arr.i32", ValueArray, testArr{ValueInt32, []any{int32(-9), int32(3)}}},
		{"arr.f32", ValueArray, testArr{ValueFloat32, []any{float32(0.25), float32(-2)}}},
		{"arr.bool", ValueArray, testArr{ValueBool, []any{true, false}}},
		{"arr.str", ValueArray, testArr{ValueString, []any{"a", "", "▁b"}}},
		{"arr.u64", ValueArray, testArr{ValueUint64, []any{uint64(1 << 40)}}},
		{"arr.i64", ValueArray, testArr{ValueInt64, []any{int64(-1 << 40)}}},
		{"arr.f64", ValueArray, testArr{ValueFloat64, []any{0.125}}},
		{"arr.empty", ValueArray, testArr{ValueUint32, nil}},
		{"arr.nested", ValueArray, testArr{ValueArray, []any{
			testArr{ValueString, []any{"x", "y"}},
			testArr{ValueInt32, []any{int32(4)}},
		}}},
	}
}

func TestMetadataAllTypes(t *testing.T) {
	for _, version := range []uint32{2, 3} {
		img := testFile{version: version, kvs: allKinds()}.bytes()
		f, err := FromBytes("mem", img)
		if err != nil {
			t.Fatalf("v%d: %v", version, err)
		}
		if f.Version() != version {
			t.Errorf("version %d, want %d", f.Version(), version)
		}
		m := f.Metadata()
		want := allKinds()
		keys := m.Keys()
		if len(keys) != len(want) {
			t.Fatalf("%d keys, want %d", len(keys), len(want))
		}
		for i, kv := range want {
			if keys[i] != kv.key {
				t.Errorf("key %d = %q, want %q", i, keys[i], kv.key)
			}
			v, _ := m.Get(kv.key)
			if v.Type != kv.t {
				t.Errorf("%s: type %s, want %s", kv.key, v.Type, kv.t)
			}
			if kv.t != ValueArray && v.Data != kv.v {
				t.Errorf("%s: %v (%T), want %v (%T)", kv.key, v.Data, v.Data, kv.v, kv.v)
			}
		}
		checks := []struct {
			name string
			got  any
			err  error
			want any
		}{}
		add := func(name string, got any, err error, want any) {
			checks = append(checks, struct {
				name string
				got  any
				err  error
				want any
			}{name, got, err, want})
		}
		s, err := m.String("str")
		add("String", s, err, "héllo ▁world")
		u, err := m.Uint("u64")
		add("Uint u64", u, err, uint64(1)<<63)
		u, err = m.Uint("u8")
		add("Uint u8", u, err, uint64(200))
		i, err := m.Int("i32")
		add("Int", i, err, int64(-2000000000))
		fl, err := m.Float("f32")
		add("Float", fl, err, 1.5)
		fl, err = m.Float("u16")
		add("Float of int", fl, err, 60000.0)
		b, err := m.Bool("bool")
		add("Bool", b, err, true)
		ss, err := m.Strings("arr.str")
		add("Strings", ss, err, []string{"a", "", "▁b"})
		fs, err := m.Float32s("arr.f32")
		add("Float32s", fs, err, []float32{0.25, -2})
		is, err := m.Ints("arr.i32")
		add("Ints", is, err, []int64{-9, 3})
		is, err = m.Ints("arr.u32")
		add("Ints u32", is, err, []int64{9, 10})
		bc, err := m.ArchUint("block_count")
		add("ArchUint", bc, err, uint64(2))
		rb, err := m.ArchFloat("rope.freq_base")
		add("ArchFloat", rb, err, 10000.0)
		arr, err := m.Array("arr.nested")
		add("nested len", arr.Len(), err, 2)
		add("nested[0]", arr.Data.([]Array)[0].Data, nil, []string{"x", "y"})
		add("nested[1]", arr.Data.([]Array)[1].Data, nil, []int32{4})
		arr, err = m.Array("arr.empty")
		add("empty", arr.Len(), err, 0)
		arr, err = m.Array("arr.bool")
		add("bools", arr.Data, err, []bool{true, false})
		arr, err = m.Array("arr.f64")
		add("f64s", arr.Data, err, []float64{0.125})
		for _, c := range checks {
			if c.err != nil {
				t.Errorf("v%d %s: %v", version, c.name, c.err)
			} else if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("v%d %s = %#v, want %#v", version, c.name, c.got, c.want)
			}
		}
		// Wrong types and missing keys are errors naming the key.
		for _, e := range []error{
			func() error { _, err := m.String("u8"); return err }(),
			func() error { _, err := m.Uint("i8"); return err }(),
			func() error { _, err := m.Bool("nope"); return err }(),
			func() error { _, err := m.Strings("arr.u8"); return err }(),
			func() error { _, err := m.Ints("arr.str"); return err }(),
		} {
			if e == nil || !strings.Contains(e.Error(), `"`) {
				t.Errorf("want an error naming the key, got %v", e)
			}
		}
	}
}

func TestTensorsAndSource(t *testing.T) {
	for _, align := range []uint64{0, 64} {
		kvs := []testKV{{"general.architecture", ValueString, "llama"}}
		if align != 0 {
			kvs = append(kvs, testKV{"general.alignment", ValueUint32, uint32(align)})
		}
		w := []float32{1, 2, 3, 4, 5, 6}       // HF shape [2, 3]: rows {1,2,3}, {4,5,6}
		f16 := []byte{0x00, 0x3c, 0x00, 0xc0}  // 1.0, -2.0
		bf16 := []byte{0x80, 0x3f, 0x40, 0x40} // 1.0, 3.0
		img := testFile{alignment: align, kvs: kvs, tensors: []testTensor{
			{"w", []uint64{3, 2}, TypeF32, f32bytes(w...)},
			{"h", []uint64{2}, TypeF16, f16},
			{"b", []uint64{2, 1}, TypeBF16, bf16},
		}}.bytes()
		f, err := FromBytes("mem", img)
		if err != nil {
			t.Fatal(err)
		}
		wantAlign := align
		if wantAlign == 0 {
			wantAlign = DefaultAlignment
		}
		if f.Alignment() != wantAlign || f.DataOffset()%wantAlign != 0 {
			t.Errorf("alignment %d data offset %d, want alignment %d", f.Alignment(), f.DataOffset(), wantAlign)
		}
		if got := f.Names(); !reflect.DeepEqual(got, []string{"b", "h", "w"}) {
			t.Errorf("Names = %v", got)
		}
		info, ok := f.Info("w")
		if !ok || !reflect.DeepEqual(info.Shape, []int{2, 3}) || info.DType != safetensors.F32 || info.End-info.Begin != 24 {
			t.Errorf("Info(w) = %+v", info)
		}
		gi, _ := f.Tensor("w")
		if !reflect.DeepEqual(gi.Dims, []uint64{3, 2}) || gi.NumElements() != 6 {
			t.Errorf("Tensor(w) = %+v", gi)
		}
		for _, c := range []struct {
			name string
			want []float32
		}{{"w", w}, {"h", []float32{1, -2}}, {"b", []float32{1, 3}}} {
			got, err := f.Float32(c.name)
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Errorf("Float32(%s) = %v, %v; want %v", c.name, got, err, c.want)
			}
		}
		row, err := f.Rows("w", 1, 1)
		if err != nil || !reflect.DeepEqual(row, []float32{4, 5, 6}) {
			t.Errorf("Rows(w,1,1) = %v, %v", row, err)
		}
		if _, err := f.Rows("w", 1, 2); err == nil {
			t.Error("Rows past the end: no error")
		}
		if _, err := f.Float32("nope"); err == nil {
			t.Error("Float32 of a missing tensor: no error")
		}
		var src safetensors.Source = f
		if b, _ := src.Bytes("h"); !reflect.DeepEqual(b, f16) {
			t.Errorf("Bytes(h) = %v", b)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Bytes("h"); err == nil {
			t.Error("Bytes after Close: no error")
		}
	}
}

// TestMalformed checks that each kind of damage is an ErrFormat error naming the field and offset.
func TestMalformed(t *testing.T) {
	good := testFile{kvs: []testKV{{"k", ValueString, "v"}}, tensors: []testTensor{
		{"t", []uint64{32}, TypeQ8_0, make([]byte, 34)},
	}}
	img := good.bytes()
	if _, err := FromBytes("good", img); err != nil {
		t.Fatal(err)
	}
	le := func(b []byte, off int, v uint64, n int) []byte {
		c := append([]byte(nil), b...)
		for i := 0; i < n; i++ {
			c[off+i] = byte(v >> (8 * i))
		}
		return c
	}
	// Offsets in img: magic 0, version 4, n_tensors 8, n_kv 16, key len 24, key 32 ("k"),
	// type 33, string len 37, "v" 45, tensor name len 46, name 54, n_dims 55, dim 59, type 67,
	// offset 71, end of infos 79, data at 96.
	cases := []struct {
		name string
		img  []byte
		want []string // substrings of the error
	}{
		{"empty", nil, []string{"offset 0", "magic"}},
		{"bad magic", append([]byte("GGUX"), img[4:]...), []string{"magic"}},
		{"version 1", le(img, 4, 1, 4), []string{"offset 4", "version 1"}},
		{"truncated header", img[:20], []string{"offset 16", "metadata kv count", "truncated"}},
		{"absurd kv count", le(img, 16, 1<<60, 8), []string{"metadata kv count", "cannot fit"}},
		{"absurd tensor count", le(img, 8, 1<<40, 8), []string{"tensor count", "cannot fit"}},
		{"key length past EOF", le(img, 24, 1<<50, 8), []string{"offset 24", "metadata key #0", "past the end"}},
		{"unknown value type", le(img, 33, 99, 4), []string{"offset 33", "unknown value type 99"}},
		{"string past EOF", le(img, 37, 5000, 8), []string{"offset 37", `metadata "k"`, "past the end"}},
		{"zero dims", le(img, 55, 0, 4), []string{"offset 55", "n_dims"}},
		{"too many dims", le(img, 55, 9, 4), []string{"n_dims", "9 dims"}},
		{"unknown tensor type", le(img, 67, 77, 4), []string{"offset 67", `tensor "t" type`, "unknown ggml type 77"}},
		{"not whole blocks", le(img, 59, 33, 8), []string{`tensor "t"`, "block size"}},
		{"misaligned offset", le(img, 71, 3, 8), []string{"offset 71", "not a multiple of the alignment"}},
		{"data out of bounds", le(img, 71, 64, 8), []string{`tensor "t"`, "past the end"}},
		{"truncated data", img[:len(img)-1], []string{`tensor "t"`, "past the end"}},
		{"truncated tensor info", img[:70], []string{`tensor "t" type`, "truncated"}},
		{"bad bool", testFile{kvs: []testKV{{"b", ValueBool, true}}}.bytes(), nil},
		{"bad alignment", testFile{kvs: []testKV{{"general.alignment", ValueUint32, uint32(24)}}}.bytes(), []string{"general.alignment", "power of two"}},
		{"alignment type", testFile{kvs: []testKV{{"general.alignment", ValueUint64, uint64(32)}}}.bytes(), []string{"general.alignment", "uint64"}},
		{"duplicate key", testFile{kvs: []testKV{{"a", ValueUint8, uint8(1)}, {"a", ValueUint8, uint8(2)}}}.bytes(), []string{"duplicate key"}},
		{"duplicate tensor", testFile{tensors: []testTensor{{"x", []uint64{1}, TypeF32, make([]byte, 4)}, {"x", []uint64{1}, TypeF32, make([]byte, 4)}}}.bytes(), []string{"duplicate tensor"}},
		{"array past EOF", le(testFile{kvs: []testKV{{"a", ValueArray, testArr{ValueUint32, []any{uint32(1)}}}}}.bytes(), 41, 1<<40, 8), []string{"offset 41", "array length", "cannot fit"}},
		{"array elem type", le(testFile{kvs: []testKV{{"a", ValueArray, testArr{ValueUint8, nil}}}}.bytes(), 37, 42, 4), []string{"offset 37", "element type", "unknown value type 42"}},
	}
	// The bool case: corrupt the bool byte (offset 37) to 7.
	for i := range cases {
		if cases[i].name == "bad bool" {
			cases[i].img = le(cases[i].img, 37, 7, 1)
			cases[i].want = []string{"offset 37", `metadata "b"`, "bool byte is 7"}
		}
	}
	for _, c := range cases {
		_, err := FromBytes("bad.gguf", c.img)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !errors.Is(err, ErrFormat) {
			t.Errorf("%s: error %v does not wrap ErrFormat", c.name, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", c.name, err, w)
			}
		}
	}
}

func TestOverlap(t *testing.T) {
	// Two tensors whose offsets are patched to the same place.
	f := testFile{tensors: []testTensor{
		{"a", []uint64{8}, TypeF32, make([]byte, 32)},
		{"b", []uint64{8}, TypeF32, make([]byte, 32)},
	}}
	img := f.bytes()
	// Tensor b's offset field: header 24 + a's info (8+1+4+8+4+8=33) + b's name/dims/type (8+1+4+8+4).
	off := 24 + 33 + 25
	for i := 0; i < 8; i++ {
		img[off+i] = 0
	}
	_, err := FromBytes("overlap", img)
	if err == nil || !strings.Contains(err.Error(), "overlap") {
		t.Errorf("overlap: got %v", err)
	}
}

func TestOpenFile(t *testing.T) {
	path := t.TempDir() + "/x.gguf"
	img := testFile{kvs: []testKV{{"general.architecture", ValueString, "gemma3"}}, tensors: []testTensor{
		{"w", []uint64{4}, TypeF32, f32bytes(1, 2, 3, 4)},
	}}.bytes()
	if err := writeFile(path, img); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := f.Float32("w")
	if err != nil || !reflect.DeepEqual(got, []float32{1, 2, 3, 4}) {
		t.Errorf("Float32 = %v, %v", got, err)
	}
	if a, _ := f.Metadata().Arch(); a != "gemma3" {
		t.Errorf("arch %q", a)
	}
	if _, err := Open(t.TempDir() + "/missing.gguf"); err == nil {
		t.Error("Open of a missing file: no error")
	}
}
