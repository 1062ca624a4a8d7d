package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// Source is the read interface shared by a single file (*File), a sharded set (*Set) and adapters
// of other formats. Names are sorted; Bytes returns the raw little-endian data of a tensor (a view
// owned by the source, valid until it is closed, never to be written); Float32 returns a new slice
// the caller owns, decoded from the tensor's dtype.
type Source interface {
	Names() []string
	Info(name string) (TensorInfo, bool)
	Bytes(name string) ([]byte, error)
	Float32(name string) ([]float32, error)
}

// File is one memory-mapped safetensors file. Its methods are safe for concurrent use until Close.
type File struct {
	path    string
	mapping []byte // the whole file, read-only
	data    []byte // the data section within mapping
	hdr     *header
}

var _ Source = (*File)(nil)

// Open maps the safetensors file at path read-only and validates its header (length at most
// MaxHeaderBytes and inside the file, JSON well formed, "__metadata__" a string map, every dtype
// known, every data range inside the data section and sized shape x dtype size, ranges not
// overlapping). Tensor data is not touched until asked for. The caller must Close the File, and
// the file must not be truncated or rewritten in place while it is open (reads would fault);
// replacing it by rename, as Write does, is safe.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: open: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: stat: %w", path, err)
	}
	size := st.Size()
	if size < 8 {
		return nil, fmt.Errorf("safetensors %s: file of %d bytes is too short for a header", path, size)
	}
	if int64(int(size)) != size {
		return nil, fmt.Errorf("safetensors %s: file of %d bytes too large to map", path, size)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: mmap: %w", path, err)
	}
	sf, err := fromBytes(path, m)
	if err != nil {
		_ = unix.Munmap(m)
		return nil, err
	}
	return sf, nil
}

// fromBytes parses a whole file image b (owned by the returned File).
func fromBytes(path string, b []byte) (*File, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("safetensors %s: %d bytes is too short for a header", path, len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > MaxHeaderBytes {
		return nil, fmt.Errorf("safetensors %s: header length %d exceeds the limit %d", path, n, MaxHeaderBytes)
	}
	if n > uint64(len(b)-8) {
		return nil, fmt.Errorf("safetensors %s: header length %d exceeds the file (%d bytes): truncated?", path, n, len(b))
	}
	h, err := parseHeader(path, b[8:8+n], int64(len(b))-8-int64(n))
	if err != nil {
		return nil, err
	}
	return &File{path: path, mapping: b, data: b[8+n:], hdr: h}, nil
}

// Path returns the path the file was opened from.
func (f *File) Path() string { return f.path }

// Close unmaps the file; every slice returned by Bytes becomes invalid (reading it faults).
func (f *File) Close() error {
	if f.mapping == nil {
		return nil
	}
	err := unix.Munmap(f.mapping)
	f.mapping, f.data = nil, nil
	if err != nil {
		return fmt.Errorf("safetensors %s: munmap: %w", f.path, err)
	}
	return nil
}

// Names returns the tensor names in sorted order (a new slice).
func (f *File) Names() []string { return append([]string(nil), f.hdr.names...) }

// Info returns the dtype, shape and data range of a tensor.
func (f *File) Info(name string) (TensorInfo, bool) {
	t, ok := f.hdr.infos[name]
	if ok {
		t.Shape = slices.Clone(t.Shape)
	}
	return t, ok
}

// Metadata returns the "__metadata__" map of the header (nil if absent). Do not modify it.
func (f *File) Metadata() map[string]string { return f.hdr.metadata }

// Bytes returns the raw little-endian data of tensor name: a zero-copy view into the read-only
// mapping, valid only until Close and never to be written to (writing faults).
func (f *File) Bytes(name string) ([]byte, error) {
	t, ok := f.hdr.infos[name]
	if !ok {
		return nil, fmt.Errorf("safetensors %s: no tensor %q", f.path, name)
	}
	if f.data == nil {
		return nil, fmt.Errorf("safetensors %s: tensor %q: %w", f.path, name, errClosed)
	}
	return f.data[t.Begin:t.End:t.End], nil
}

// Float32 returns tensor name decoded to float32 (row-major, NumElements values) in a new slice
// owned by the caller. F32/F16/BF16/F64/F8 convert as floats, integers by value, BOOL to 0/1.
func (f *File) Float32(name string) ([]float32, error) {
	b, err := f.Bytes(name)
	if err != nil {
		return nil, err
	}
	t := f.hdr.infos[name]
	out := make([]float32, (t.End-t.Begin)/int64(t.DType.Size()))
	decodeParallel(t.DType, b, out)
	return out, nil
}

// DecodeFloat32 converts little-endian data of dtype d to float32 into dst, as File.Float32 does
// (F32/F16/BF16/F64/F8 as floats, integers by value, BOOL to 0/1; large inputs on several
// goroutines), for callers that reuse dst across tensors. len(data) must be len(dst)*d.Size().
func DecodeFloat32(d DType, data []byte, dst []float32) error {
	if !d.Known() {
		return fmt.Errorf("safetensors: decode: unknown dtype %q", d)
	}
	if len(data) != len(dst)*d.Size() {
		return fmt.Errorf("safetensors: decode %s: %d bytes for %d values", d, len(data), len(dst))
	}
	decodeParallel(d, data, dst)
	return nil
}

// parallelMin is the element count above which Float32 decodes on several goroutines.
const parallelMin = 1 << 20

// decodeParallel is decodeFloat32 split into chunks over GOMAXPROCS goroutines for large tensors.
func decodeParallel(d DType, data []byte, dst []float32) {
	workers := runtime.GOMAXPROCS(0)
	if len(dst) < parallelMin || workers < 2 {
		decodeFloat32(d, data, dst)
		return
	}
	size := d.Size()
	chunk := (len(dst) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(dst); lo += chunk {
		hi := min(lo+chunk, len(dst))
		wg.Add(1)
		go func() {
			defer wg.Done()
			decodeFloat32(d, data[lo*size:hi*size], dst[lo:hi])
		}()
	}
	wg.Wait()
}

var errClosed = errors.New("file is closed")
