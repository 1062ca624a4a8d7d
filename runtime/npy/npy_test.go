package npy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestReadNumPyFile(t *testing.T) {
	a, err := ReadFile("testdata/reference_logits.npy")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(a.Shape) != "[24 384]" || len(a.Data) != 24*384 {
		t.Fatalf("shape %v, %d values", a.Shape, len(a.Data))
	}
	// Writing it back must give NumPy's own bytes (same header layout, same data).
	var buf bytes.Buffer
	if err := Write(&buf, a.Shape, a.Data); err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile("testdata/reference_logits.npy")
	if !bytes.Equal(buf.Bytes(), orig) {
		t.Errorf("re-encoded file differs from NumPy's (%d vs %d bytes)\n%q\n%q", buf.Len(), len(orig), buf.Bytes()[:80], orig[:80])
	}
}

func TestRoundTrip(t *testing.T) {
	for _, shape := range [][]int{{}, {5}, {2, 3}, {2, 0, 4}} {
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(i)*0.5 - 1
		}
		data = append(data[:0:0], data...)
		if n > 0 {
			data[0] = float32(math.Inf(-1))
		}
		p := filepath.Join(t.TempDir(), "a.npy")
		if err := WriteFile(p, shape, data); err != nil {
			t.Fatal(err)
		}
		a, err := ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(a.Shape) != fmt.Sprint(shape) && !(len(shape) == 0 && len(a.Shape) == 0) {
			t.Errorf("shape %v read back as %v", shape, a.Shape)
		}
		if fmt.Sprint(a.Data) != fmt.Sprint(data) {
			t.Errorf("data %v read back as %v", data, a.Data)
		}
	}
}

func TestBadInput(t *testing.T) {
	for name, in := range map[string]string{
		"empty":     "",
		"magic":     "\x93NUMPZ\x01\x00\x10\x00",
		"fortran":   "\x93NUMPY\x01\x00\x3c\x00{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }      \n",
		"dtype":     "\x93NUMPY\x01\x00\x3c\x00{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }     \n",
		"truncated": "\x93NUMPY\x01\x00\x3c\x00{'descr': '<f4', 'fortran_order': False, 'shape': (9,), }     \n\x00\x00",
	} {
		if _, err := Read(bytes.NewReader([]byte(in))); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if err := Write(&bytes.Buffer{}, []int{2, 2}, []float32{1}); err == nil {
		t.Error("Write with a short data slice: no error")
	}
	if err := Write(&bytes.Buffer{}, []int{-1, -2}, []float32{1, 2}); err == nil {
		t.Error("Write with negative dimensions: no error")
	}
}

// A header announcing far more data than the stream holds (here 2^34-1 float64s, 128 GiB) is an
// error, without allocating what it announces.
func TestReadHugeShapeWithoutData(t *testing.T) {
	h := "{'descr': '<f8', 'fortran_order': False, 'shape': (17179869183,), }"
	h += strings.Repeat(" ", 64-10-len(h)%64-1) + "\n"
	in := append([]byte("\x93NUMPY\x01\x00"), byte(len(h)), byte(len(h)>>8))
	in = append(append(in, h...), 1, 2, 3, 4, 5, 6, 7, 8)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Read(bytes.NewReader(in))
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Read: %v, want io.ErrUnexpectedEOF", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("Read allocated %d bytes for an 8-byte payload", grew)
	}
}
