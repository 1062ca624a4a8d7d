package data

import (
	"bytes"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// FuzzReadJSONL: any input reads without panicking or leaking; with SkipBadLines it never fails,
// and rows + skipped lines never exceed the non-blank lines.
func FuzzReadJSONL(f *testing.F) {
	f.Add([]byte(`{"context": "a", "target": "b"}` + "\n" + `{"context": 1}`))
	f.Add([]byte(`{"input_ids": [1, 2], "labels": [-100, 2]}` + "\n" + `{"input_ids": [3000000000]}`))
	f.Add([]byte(`{"x": [[1]], "y": {"z": null}}` + "\n\n" + `[1,2]` + "\n" + `{"x": "s"}{}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		for _, infer := range []int{1, 0} {
			d, err := ReadJSONLFrom(bytes.NewReader(in), "fuzz", ReadOptions{Allocator: mem, InferRows: infer, ChunkRows: 2})
			if err == nil {
				d.Release()
			}
			d, err = ReadJSONLFrom(bytes.NewReader(in), "fuzz", ReadOptions{Allocator: mem, InferRows: infer, SkipBadLines: true, ChunkRows: 2})
			if err != nil {
				t.Fatalf("with SkipBadLines: %v", err)
			}
			lines := 0
			for _, l := range bytes.Split(in, []byte("\n")) {
				if len(bytes.TrimSpace(bytes.TrimRight(l, "\r"))) > 0 {
					lines++
				}
			}
			if d.NumRows()+len(d.Skipped()) > lines {
				t.Fatalf("%d rows + %d skipped > %d lines", d.NumRows(), len(d.Skipped()), lines)
			}
			_ = d.HTML()
			d.Release()
		}
		mem.AssertSize(t, 0)
	})
}
