package safetensors

import (
	"encoding/json"
	"math"
	"os"
	"reflect"
	"testing"
)

type golden struct {
	Metadata map[string]string `json:"metadata"`
	Tensors  map[string]struct {
		DType string    `json:"dtype"`
		Shape []int     `json:"shape"`
		First []float64 `json:"first"`
		Sum   float64   `json:"sum"`
	} `json:"tensors"`
}

func TestReadTinyLlama(t *testing.T) {
	raw, err := os.ReadFile("testdata/tiny-llama.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	f, err := Open("testdata/tiny-llama.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !reflect.DeepEqual(f.Metadata(), g.Metadata) {
		t.Errorf("metadata %v, want %v", f.Metadata(), g.Metadata)
	}
	names := f.Names()
	if len(names) != len(g.Tensors) {
		t.Fatalf("%d tensors, want %d", len(names), len(g.Tensors))
	}
	for i, n := range names {
		if i > 0 && names[i-1] >= n {
			t.Errorf("names not sorted: %q before %q", names[i-1], n)
		}
		want, ok := g.Tensors[n]
		if !ok {
			t.Errorf("unexpected tensor %q", n)
			continue
		}
		info, ok := f.Info(n)
		if !ok || string(info.DType) != want.DType || !reflect.DeepEqual(info.Shape, want.Shape) {
			t.Errorf("%s: info %+v, want %s %v", n, info, want.DType, want.Shape)
		}
		v, err := f.Float32(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(v) != info.NumElements() {
			t.Fatalf("%s: %d values, want %d", n, len(v), info.NumElements())
		}
		var sum float64
		for _, x := range v {
			sum += float64(x)
		}
		if math.Abs(sum-want.Sum) > 1e-9*math.Max(1, math.Abs(want.Sum)) {
			t.Errorf("%s: sum %v, want %v", n, sum, want.Sum)
		}
		for j, w := range want.First {
			if float64(v[j]) != w {
				t.Errorf("%s[%d] = %v, want %v", n, j, v[j], w)
			}
		}
		b, err := f.Bytes(n)
		if err != nil || !reflect.DeepEqual(BytesFloat32(b), v) {
			t.Errorf("%s: Bytes disagrees with Float32 (err %v)", n, err)
		}
	}
	if _, err := f.Bytes("nope"); err == nil {
		t.Error("Bytes of a missing tensor: no error")
	}
}

func TestOpenDirSingle(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("testdata/tiny-llama.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/"+SingleFileName, src, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f, err := Open("testdata/tiny-llama.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	assertSameSource(t, s, f)
	if len(s.Files()) != 1 {
		t.Errorf("Files() = %v", s.Files())
	}
}

// assertSameSource checks that a and b hold the same tensors with the same bytes.
func assertSameSource(t *testing.T, a, b Source) {
	t.Helper()
	if !reflect.DeepEqual(a.Names(), b.Names()) {
		t.Fatalf("names differ:\n%v\n%v", a.Names(), b.Names())
	}
	for _, n := range a.Names() {
		ia, _ := a.Info(n)
		ib, _ := b.Info(n)
		if ia.DType != ib.DType || !reflect.DeepEqual(ia.Shape, ib.Shape) {
			t.Errorf("%s: %v %v vs %v %v", n, ia.DType, ia.Shape, ib.DType, ib.Shape)
		}
		ba, err1 := a.Bytes(n)
		bb, err2 := b.Bytes(n)
		if err1 != nil || err2 != nil || string(ba) != string(bb) {
			t.Errorf("%s: bytes differ (errors %v, %v)", n, err1, err2)
		}
	}
}
