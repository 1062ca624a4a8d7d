package gguf

import (
	"os"
	"testing"
)

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o644) }

// FuzzParse feeds arbitrary bytes to the parser and, when a file parses, reads every tensor: no
// input may panic.
func FuzzParse(f *testing.F) {
	f.Add(testFile{kvs: allKinds(), tensors: []testTensor{
		{"w", []uint64{32, 2}, TypeQ4_0, make([]byte, 36)},
		{"k", []uint64{256}, TypeQ6_K, make([]byte, 210)},
	}}.bytes())
	f.Add(testFile{version: 2, kvs: []testKV{{"general.alignment", ValueUint32, uint32(8)}}, tensors: []testTensor{
		{"x", []uint64{2, 2}, TypeF16, make([]byte, 8)},
	}}.bytes())
	f.Add([]byte("GGUF"))
	f.Fuzz(func(t *testing.T, b []byte) {
		gf, err := FromBytes("fuzz", b)
		if err != nil {
			return
		}
		for _, name := range gf.Names() {
			info, _ := gf.Tensor(name)
			if info.NumElements() > 1<<20 {
				continue
			}
			_, _ = gf.Float32(name)
			_, _ = gf.Rows(name, 0, 1)
		}
		m := gf.Metadata()
		for _, k := range m.Keys() {
			v, _ := m.Get(k)
			_ = v.String()
			_, _ = m.Ints(k)
		}
	})
}
