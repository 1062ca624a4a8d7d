package safetensors

import (
	"encoding/binary"
	"os"
	"testing"
)

// FuzzHeader feeds arbitrary file images to the parser: it must return an error or a File whose
// every tensor can be read, and never panic.
func FuzzHeader(f *testing.F) {
	f.Add(fileImage(`{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}`, 16))
	f.Add(fileImage(`{"a":{"dtype":"F8_E4M3","shape":[3],"data_offsets":[0,3]},"b":{"dtype":"BOOL","shape":[],"data_offsets":[3,4]}}`, 4))
	f.Add(fileImage(`{"x":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"y":{"dtype":"U8","shape":[8],"data_offsets":[4,12]}}`, 16))
	f.Add(fileImage(`{}`, 0))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	if b, err := os.ReadFile("testdata/tiny-llama.safetensors"); err == nil {
		n := binary.LittleEndian.Uint64(b)
		f.Add(b[:8+n+64]) // header intact, data truncated
	}
	f.Fuzz(func(t *testing.T, image []byte) {
		sf, err := fromBytes("fuzz", image)
		if err != nil {
			return
		}
		for _, n := range sf.Names() {
			info, ok := sf.Info(n)
			if !ok {
				t.Fatalf("name %q without info", n)
			}
			b, err := sf.Bytes(n)
			if err != nil || int64(len(b)) != info.End-info.Begin {
				t.Fatalf("%q: %d bytes, err %v", n, len(b), err)
			}
			v, err := sf.Float32(n)
			if err != nil || len(v) != info.NumElements() {
				t.Fatalf("%q: %d values for %d elements, err %v", n, len(v), info.NumElements(), err)
			}
		}
	})
}
