package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
)

// randomTensors returns one tensor of every dtype (plus a scalar and an empty tensor) filled with
// random bytes.
func randomTensors(seed int64) []Tensor {
	r := rand.New(rand.NewSource(seed))
	var ts []Tensor
	shapes := [][]int{{3, 5}, {7}, {2, 3, 4}}
	for i, d := range DTypes() {
		shape := shapes[i%len(shapes)]
		n := 1
		for _, s := range shape {
			n *= s
		}
		data := make([]byte, n*d.Size())
		r.Read(data)
		ts = append(ts, Tensor{Name: "t." + strings.ToLower(string(d)), DType: d, Shape: shape, Data: data})
	}
	ts = append(ts, Tensor{Name: "scalar", DType: F32, Shape: []int{}, Data: Float32Bytes([]float32{2.5})})
	ts = append(ts, Tensor{Name: "empty", DType: BF16, Shape: []int{0, 4}, Data: []byte{}})
	return ts
}

func TestWriteReadEveryDType(t *testing.T) {
	ts := randomTensors(1)
	path := filepath.Join(t.TempDir(), "all.safetensors")
	md := map[string]string{"format": "pt", "note": "round trip"}
	if err := Write(path, ts, md); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	n := binary.LittleEndian.Uint64(raw)
	if n%8 != 0 {
		t.Errorf("header length %d not padded to 8", n)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !reflect.DeepEqual(f.Metadata(), md) {
		t.Errorf("metadata %v, want %v", f.Metadata(), md)
	}
	if len(f.Names()) != len(ts) {
		t.Fatalf("%d names, want %d", len(f.Names()), len(ts))
	}
	for _, want := range ts {
		info, ok := f.Info(want.Name)
		if !ok || info.DType != want.DType || !reflect.DeepEqual(info.Shape, want.Shape) {
			t.Errorf("%s: info %+v", want.Name, info)
		}
		b, err := f.Bytes(want.Name)
		if err != nil || string(b) != string(want.Data) {
			t.Errorf("%s: bytes differ (%v)", want.Name, err)
		}
		v, err := f.Float32(want.Name)
		if err != nil || len(v) != info.NumElements() {
			t.Errorf("%s: Float32 gave %d values (%v)", want.Name, len(v), err)
		}
	}
	// Data order: sorted names, contiguous from 0.
	var off int64
	for _, name := range f.Names() {
		info, _ := f.Info(name)
		if info.Begin != off {
			t.Errorf("%s begins at %d, want %d (sorted, contiguous)", name, info.Begin, off)
		}
		off = info.End
	}
}

func TestFloat32DecodesEachDType(t *testing.T) {
	le := binary.LittleEndian
	cases := []struct {
		d    DType
		data []byte
		want []float32
	}{
		{F32, Float32Bytes([]float32{1.5, -2}), []float32{1.5, -2}},
		{F64, le.AppendUint64(le.AppendUint64(nil, 0x3ff8000000000000), 0xc000000000000000), []float32{1.5, -2}},
		{F16, le.AppendUint16(le.AppendUint16(nil, 0x3e00), 0xc000), []float32{1.5, -2}},
		{BF16, le.AppendUint16(le.AppendUint16(nil, 0x3fc0), 0xc000), []float32{1.5, -2}},
		{F8_E4M3, []byte{0x3c, 0xc0}, []float32{1.5, -2}},
		{F8_E5M2, []byte{0x3e, 0xc0}, []float32{1.5, -2}},
		{I64, le.AppendUint64(le.AppendUint64(nil, 7), ^uint64(1)), []float32{7, -2}},
		{I32, le.AppendUint32(le.AppendUint32(nil, 7), ^uint32(1)), []float32{7, -2}},
		{I16, le.AppendUint16(le.AppendUint16(nil, 7), ^uint16(1)), []float32{7, -2}},
		{I8, []byte{7, 0xfe}, []float32{7, -2}},
		{U64, le.AppendUint64(le.AppendUint64(nil, 7), 1<<40), []float32{7, 1 << 40}},
		{U32, le.AppendUint32(le.AppendUint32(nil, 7), 70000), []float32{7, 70000}},
		{U16, le.AppendUint16(le.AppendUint16(nil, 7), 65535), []float32{7, 65535}},
		{U8, []byte{7, 255}, []float32{7, 255}},
		{BOOL, []byte{0, 3}, []float32{0, 1}},
	}
	dir := t.TempDir()
	for _, c := range cases {
		path := filepath.Join(dir, string(c.d)+".safetensors")
		if err := Write(path, []Tensor{{Name: "x", DType: c.d, Shape: []int{2}, Data: c.data}}, nil); err != nil {
			t.Fatalf("%s: %v", c.d, err)
		}
		f, err := Open(path)
		if err != nil {
			t.Fatalf("%s: %v", c.d, err)
		}
		got, err := f.Float32("x")
		f.Close()
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: Float32 = %v (%v), want %v", c.d, got, err, c.want)
		}
	}
}

func TestWriteShardedLoadsBack(t *testing.T) {
	src, err := Open("testdata/tiny-llama.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var ts []Tensor
	var total, half int64
	for i, n := range src.Names() {
		info, _ := src.Info(n)
		b, _ := src.Bytes(n)
		ts = append(ts, Tensor{Name: n, DType: info.DType, Shape: info.Shape, Data: b})
		total += int64(len(b))
		if i == len(src.Names())/2-1 {
			half = total
		}
	}
	// With this limit, greedy filling gives exactly two shards.
	limit := max(half, total-half)
	dir := t.TempDir()
	if err := WriteSharded(dir, "model", ts, map[string]string{"format": "pt"}, limit); err != nil {
		t.Fatal(err)
	}
	set, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	files := set.Files()
	if len(files) != 2 || filepath.Base(files[0]) != "model-00001-of-00002.safetensors" ||
		filepath.Base(files[1]) != "model-00002-of-00002.safetensors" {
		t.Fatalf("files %v, want 2 shards", files)
	}
	assertSameSource(t, set, src)
	for _, n := range src.Names() {
		a, _ := set.Float32(n)
		b, _ := src.Float32(n)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: Float32 differs", n)
		}
	}
	if got := set.Metadata()["total_size"]; got != itoa(total) {
		t.Errorf("total_size %q, want %d", got, total)
	}
	if set.Metadata()["format"] != "pt" {
		t.Errorf("metadata %v lacks format", set.Metadata())
	}

	// An index naming a tensor its shard lacks, or a missing shard, is an error naming both.
	idxPath := filepath.Join(dir, IndexFileName)
	raw, _ := os.ReadFile(idxPath)
	var idx map[string]any
	json.Unmarshal(raw, &idx)
	wm := idx["weight_map"].(map[string]any)
	wm["lm_head.weight"] = "model-00002-of-00002.safetensors"
	if wm["lm_head.weight"] == wm["model.embed_tokens.weight"] {
		wm["lm_head.weight"] = "model-00001-of-00002.safetensors"
	}
	bad, _ := json.Marshal(idx)
	os.WriteFile(idxPath, bad, 0o644)
	if _, err := OpenDir(dir); err == nil || !strings.Contains(err.Error(), "lm_head.weight") {
		t.Errorf("misplaced tensor: error %v", err)
	}
	wm["lm_head.weight"] = "model-00003-of-00002.safetensors"
	bad, _ = json.Marshal(idx)
	os.WriteFile(idxPath, bad, 0o644)
	if _, err := OpenDir(dir); err == nil || !strings.Contains(err.Error(), "model-00003-of-00002") {
		t.Errorf("missing shard: error %v", err)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestWriteRejects(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		ts   []Tensor
		want string
	}{
		{"size", []Tensor{{Name: "a", DType: F32, Shape: []int{2}, Data: make([]byte, 7)}}, `"a"`},
		{"dtype", []Tensor{{Name: "a", DType: "F4", Shape: []int{2}, Data: make([]byte, 1)}}, "unknown dtype"},
		{"dup", []Tensor{{Name: "a", DType: U8, Shape: []int{1}, Data: []byte{1}}, {Name: "a", DType: U8, Shape: []int{1}, Data: []byte{1}}}, "twice"},
		{"reserved", []Tensor{{Name: "__metadata__", DType: U8, Shape: []int{1}, Data: []byte{1}}}, "reserved"},
	}
	for _, c := range cases {
		err := Write(filepath.Join(dir, c.name), c.ts, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %s", c.name, err, c.want)
		}
		if _, statErr := os.Stat(filepath.Join(dir, c.name)); statErr == nil {
			t.Errorf("%s: file written despite the error", c.name)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("leftover files: %v", entries)
	}
}

// TestFloat32Large decodes a tensor big enough for the parallel path and compares it with the
// single-threaded conversion of every element.
func TestFloat32Large(t *testing.T) {
	n := parallelMin + 12345
	data := make([]byte, 2*n)
	rand.New(rand.NewSource(5)).Read(data)
	path := filepath.Join(t.TempDir(), "big.safetensors")
	if err := Write(path, []Tensor{{Name: "w", DType: BF16, Shape: []int{n}, Data: data}}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := f.Float32("w")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		want := tensor.BF16ToFloat32(binary.LittleEndian.Uint16(data[2*i:]))
		if got[i] != want && !(got[i] != got[i] && want != want) {
			t.Fatalf("element %d: %v, want %v", i, got[i], want)
		}
	}
}

// WriteOrdered(ByDTypeThenName) lays tensors out as Python's safetensors does: dtype descending in
// the crate's enum order, then name; the data are contiguous in that order.
func TestWriteOrderedByDType(t *testing.T) {
	want := []DType{U64, I64, F64, F32, U32, I32, BF16, F16, U16, I16, F8_E4M3, F8_E5M2, I8, U8, BOOL}
	if len(want) != len(DTypes()) || len(dtypeRank) != len(DTypes()) {
		t.Fatalf("the enum order lists %d dtypes, dtypeRank %d, DTypes() %d", len(want), len(dtypeRank), len(DTypes()))
	}
	ts := randomTensors(3)
	ts = append(ts, Tensor{Name: "a.second_f32", DType: F32, Shape: []int{2}, Data: Float32Bytes([]float32{1, 2})})
	path := filepath.Join(t.TempDir(), "hf.safetensors")
	if err := WriteOrdered(path, ts, map[string]string{"format": "pt"}, ByDTypeThenName); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var order []TensorInfo
	for _, name := range f.Names() {
		info, _ := f.Info(name)
		order = append(order, info)
	}
	sort.Slice(order, func(i, j int) bool { // the one empty tensor ends where it begins
		return order[i].Begin < order[j].Begin || (order[i].Begin == order[j].Begin && order[i].End < order[j].End)
	})
	pos := map[DType]int{}
	for i, d := range want {
		pos[d] = i
	}
	var off int64
	for i, info := range order {
		if info.Begin != off {
			t.Errorf("%s begins at %d, want %d (contiguous)", info.Name, info.Begin, off)
		}
		off = info.End
		if i == 0 {
			continue
		}
		prev := order[i-1]
		if pos[prev.DType] > pos[info.DType] || (prev.DType == info.DType && prev.Name > info.Name) {
			t.Errorf("%s (%s) written after %s (%s)", info.Name, info.DType, prev.Name, prev.DType)
		}
	}
	if err := WriteOrdered(path, ts, nil, Order(7)); err == nil {
		t.Error("WriteOrdered with an unknown order succeeded")
	}
}

// DecodeFloat32 gives File.Float32's values for every dtype and refuses unknown dtypes and
// mismatched lengths.
func TestDecodeFloat32(t *testing.T) {
	ts := randomTensors(4)
	path := filepath.Join(t.TempDir(), "d.safetensors")
	if err := Write(path, ts, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, tn := range ts {
		want, err := f.Float32(tn.Name)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float32, len(want))
		if err := DecodeFloat32(tn.DType, tn.Data, got); err != nil {
			t.Fatalf("%s: %v", tn.Name, err)
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s[%d] = %v, File.Float32 %v", tn.Name, i, got[i], want[i])
			}
		}
	}
	if err := DecodeFloat32("F128", make([]byte, 16), make([]float32, 1)); err == nil {
		t.Error("unknown dtype: no error")
	}
	if err := DecodeFloat32(BF16, make([]byte, 5), make([]float32, 2)); err == nil {
		t.Error("5 bytes for 2 BF16 values: no error")
	}
}
