package gguf

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/finlora/finlora/runtime/safetensors"
)

// IsFileName reports whether path names a GGUF file by its extension (.gguf, any case): how the
// loaders tell a GGUF model file from a Hugging Face model directory.
func IsFileName(path string) bool { return strings.HasSuffix(strings.ToLower(path), ".gguf") }

// File is a parsed GGUF file whose bytes are memory-mapped (Open) or held in memory (FromBytes).
// It satisfies safetensors.Source. Its methods are safe for concurrent use until Close.
type File struct {
	path   string
	image  []byte // the whole file, read-only
	mapped bool   // image is an mmap to unmap on Close
	data   []byte // the data section within image
	h      *header
}

var _ safetensors.Source = (*File)(nil)

var errClosed = errors.New("file is closed")

// Open maps the GGUF file at path read-only and parses and validates its header, metadata and
// tensor infos (every tensor's data inside the file, offsets aligned, ranges not overlapping).
// Tensor data is read only when asked for. The caller must Close the File.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: open: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("gguf %s: stat: %w", path, err)
	}
	size := st.Size()
	if size < 24 {
		return nil, fmt.Errorf("gguf %s: %w: file of %d bytes is shorter than the 24-byte header", path, ErrFormat, size)
	}
	if int64(int(size)) != size {
		return nil, fmt.Errorf("gguf %s: file of %d bytes is too large to map", path, size)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("gguf %s: mmap: %w", path, err)
	}
	gf, err := FromBytes(path, m)
	if err != nil {
		_ = unix.Munmap(m)
		return nil, err
	}
	gf.mapped = true
	return gf, nil
}

// FromBytes parses a whole GGUF file image b; the File keeps b (the caller must not modify it).
// name is used in error messages only.
func FromBytes(name string, b []byte) (*File, error) {
	h, err := parseHeader(b)
	if err != nil {
		return nil, fmt.Errorf("gguf %s: %w", name, err)
	}
	return &File{path: name, image: b, data: b[h.dataOffset:], h: h}, nil
}

// Path returns the path (or name) the file was opened from.
func (f *File) Path() string { return f.path }

// Close unmaps the file (if mapped); slices returned by Bytes become invalid.
func (f *File) Close() error {
	if f.image == nil {
		return nil
	}
	var err error
	if f.mapped {
		err = unix.Munmap(f.image)
	}
	f.image, f.data = nil, nil
	if err != nil {
		return fmt.Errorf("gguf %s: munmap: %w", f.path, err)
	}
	return nil
}

// Version returns the GGUF version (2 or 3).
func (f *File) Version() uint32 { return f.h.version }

// Metadata returns the key/value pairs.
func (f *File) Metadata() *Metadata { return f.h.meta }

// Alignment returns the data alignment in bytes (general.alignment or 32).
func (f *File) Alignment() uint64 { return f.h.alignment }

// DataOffset returns the absolute byte offset of the data section.
func (f *File) DataOffset() uint64 { return f.h.dataOffset }

// Tensors returns the tensor infos in file order (a new slice; Dims are shared, do not modify).
func (f *File) Tensors() []TensorInfo { return append([]TensorInfo(nil), f.h.tensors...) }

// Tensor returns the GGUF info of tensor name (dims in GGML order).
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.h.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.h.tensors[i], true
}

// Names returns the tensor names sorted (a new slice).
func (f *File) Names() []string { return append([]string(nil), f.h.names...) }

// DType returns the safetensors dtype naming a GGML type: F32, F16, BF16, F64, I8, I16, I32, I64
// map to the safetensors dtypes; quantized types to their ggml name ("Q4_K"), which
// safetensors.DType.Known reports false for (their bytes are blocks, not elements).
func DType(t Type) safetensors.DType {
	switch t {
	case TypeF32:
		return safetensors.F32
	case TypeF16:
		return safetensors.F16
	case TypeBF16:
		return safetensors.BF16
	case TypeF64:
		return safetensors.F64
	case TypeI8:
		return safetensors.I8
	case TypeI16:
		return safetensors.I16
	case TypeI32:
		return safetensors.I32
	case TypeI64:
		return safetensors.I64
	}
	return safetensors.DType(t.String())
}

// Info returns the tensor as safetensors describes one: Shape in HF order (GGUF dims reversed),
// DType from DType(type), [Begin, End) relative to the data section.
func (f *File) Info(name string) (safetensors.TensorInfo, bool) {
	t, ok := f.Tensor(name)
	if !ok {
		return safetensors.TensorInfo{}, false
	}
	return safetensors.TensorInfo{Name: name, DType: DType(t.Type), Shape: t.Shape(),
		Begin: int64(t.Offset), End: int64(t.Offset + t.Size)}, true
}

// Bytes returns the raw data of tensor name (blocks for quantized types): a zero-copy view into
// the file image, valid until Close, never to be written.
func (f *File) Bytes(name string) ([]byte, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("gguf %s: no tensor %q", f.path, name)
	}
	if f.image == nil {
		return nil, fmt.Errorf("gguf %s: tensor %q: %w", f.path, name, errClosed)
	}
	return f.data[t.Offset : t.Offset+t.Size : t.Offset+t.Size], nil
}

// Float32 returns tensor name dequantized to float32, NumElements values in HF row-major order
// (which is GGML order: ne[0] fastest), in a new slice the caller owns.
func (f *File) Float32(name string) ([]float32, error) {
	b, err := f.Bytes(name)
	if err != nil {
		return nil, err
	}
	t, _ := f.Tensor(name)
	out := make([]float32, t.NumElements())
	if err := DequantizeInto(out, t.Type, b); err != nil {
		return nil, fmt.Errorf("gguf %s: tensor %q: %w", f.path, name, err)
	}
	return out, nil
}

// Rows dequantizes rows [start, start+n) of tensor name, a row being Dims[0] consecutive elements
// (for a weight of HF shape [out, in], one output row; for token_embd, one token's embedding).
// It returns n*Dims[0] float32 values in a new slice the caller owns. Use it to read a few rows of
// a large quantized matrix (embedding lookup) without dequantizing all of it.
func (f *File) Rows(name string, start, n int) ([]float32, error) {
	b, err := f.Bytes(name)
	if err != nil {
		return nil, err
	}
	t, _ := f.Tensor(name)
	rowLen := int64(t.Dims[0])
	rows := int64(t.NumElements()) / max(rowLen, 1)
	if start < 0 || n < 0 || int64(start)+int64(n) > rows {
		return nil, fmt.Errorf("gguf %s: tensor %q: rows [%d, %d) out of range (it has %d rows)", f.path, name, start, start+n, rows)
	}
	rb, _ := t.Type.RowBytes(rowLen)
	out := make([]float32, int64(n)*rowLen)
	if err := DequantizeInto(out, t.Type, b[int64(start)*rb:int64(start+n)*rb]); err != nil {
		return nil, fmt.Errorf("gguf %s: tensor %q rows [%d, %d): %w", f.path, name, start, start+n, err)
	}
	return out, nil
}
