package safetensors

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fileImage builds a safetensors image from a raw header string and dataLen zero bytes of data.
func fileImage(hdr string, dataLen int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	b = append(b, hdr...)
	return append(b, make([]byte, dataLen)...)
}

func TestCorruptFiles(t *testing.T) {
	good := `{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[16,24]}}`
	valid := fileImage(good, 24)
	huge := binary.LittleEndian.AppendUint64(nil, 200<<20)
	huge = append(huge, valid[8:]...)
	long := binary.LittleEndian.AppendUint64(nil, uint64(len(good)+1000))
	long = append(long, valid[8:]...)
	cases := []struct {
		name  string
		image []byte
		want  []string // substrings of the error besides the file name
	}{
		{"empty", nil, []string{"too short"}},
		{"short", []byte{1, 2, 3}, []string{"too short"}},
		{"truncated data", valid[:len(valid)-5], []string{`"b"`, "beyond the data section"}},
		{"truncated header", valid[:40], []string{"exceeds the file"}},
		{"header too large", huge, []string{"exceeds the limit"}},
		{"header past end", long, []string{"exceeds the file"}},
		{"bad json", fileImage(`{"a":{"dtype":"F32",`, 0), []string{"header JSON"}},
		{"not an object", fileImage(`[1,2]`, 0), []string{"not a JSON object"}},
		{"trailing", fileImage(`{}{}`, 0), []string{"trailing"}},
		{"unknown dtype", fileImage(`{"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}`, 16), []string{`"w"`, "unknown dtype"}},
		{"wrong dtype size", fileImage(`{"w":{"dtype":"F16","shape":[2,2],"data_offsets":[0,16]}}`, 16), []string{`"w"`, "needs 8"}},
		{"offsets reversed", fileImage(`{"w":{"dtype":"U8","shape":[4],"data_offsets":[8,4]}}`, 16), []string{`"w"`, "bad data_offsets"}},
		{"negative offset", fileImage(`{"w":{"dtype":"U8","shape":[4],"data_offsets":[-4,0]}}`, 16), []string{`"w"`, "bad data_offsets"}},
		{"offset outside", fileImage(`{"w":{"dtype":"U8","shape":[4],"data_offsets":[14,18]}}`, 16), []string{`"w"`, "beyond"}},
		{"one offset", fileImage(`{"w":{"dtype":"U8","shape":[4],"data_offsets":[4]}}`, 16), []string{`"w"`, "2 numbers"}},
		{"overlap", fileImage(`{"x":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"y":{"dtype":"U8","shape":[8],"data_offsets":[4,12]}}`, 16), []string{`"y"`, "overlaps", `"x"`}},
		{"negative dim", fileImage(`{"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}`, 0), []string{`"w"`, "negative"}},
		{"overflowing shape", fileImage(`{"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, 0), []string{`"w"`, "overflows"}},
		{"fractional dim", fileImage(`{"w":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}`, 1), []string{`"w"`}},
		{"missing field", fileImage(`{"w":{"dtype":"U8","shape":[1]}}`, 1), []string{`"w"`, "data_offsets"}},
		{"unknown field", fileImage(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}}`, 1), []string{`"w"`}},
		{"metadata not strings", fileImage(`{"__metadata__":{"a":1}}`, 0), []string{"__metadata__"}},
		{"tensor not object", fileImage(`{"w":[1]}`, 0), []string{`"w"`}},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".safetensors")
			if err := os.WriteFile(path, c.image, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := Open(path)
			if err == nil {
				f.Close()
				t.Fatal("no error")
			}
			msg := err.Error()
			for _, w := range append([]string{path}, c.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
		})
	}
	// The valid image itself opens, with gaps allowed and padding spaces after the JSON.
	for _, hdr := range []string{good, good + "    ", `{"g":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}`} {
		path := filepath.Join(dir, "valid.safetensors")
		os.WriteFile(path, fileImage(hdr, 24), 0o644)
		f, err := Open(path)
		if err != nil {
			t.Errorf("valid header %s: %v", hdr, err)
			continue
		}
		f.Close()
	}
}

func TestBytesAfterClose(t *testing.T) {
	f, err := Open("testdata/tiny-llama.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := f.Bytes("lm_head.weight"); err == nil {
		t.Error("Bytes after Close: no error")
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestOpenDirMissing(t *testing.T) {
	if _, err := OpenDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), "neither") {
		t.Errorf("empty dir: %v", err)
	}
}
