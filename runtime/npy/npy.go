// Package npy reads and writes NumPy .npy files of float32 (or int32) arrays in C order: the
// format of the reference logits and of 'finlora logits --out'. Versions 1.0, 2.0 and 3.0 of the
// header are read; 1.0 is written (2.0 when the header needs it).
package npy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
)

var magic = []byte("\x93NUMPY")

// maxHeader bounds the header length accepted by Read (real headers are under 200 bytes).
const maxHeader = 1 << 16

// Array is a decoded array: row-major float32 data of the given shape.
type Array struct {
	Shape []int
	Data  []float32
}

// ReadFile reads a float32 (or float64/int32/int64, converted to float32) C-order array from path.
func ReadFile(path string) (*Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	defer f.Close()
	a, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("npy %s: %w", path, err)
	}
	return a, nil
}

var (
	reDescr   = regexp.MustCompile(`'descr'\s*:\s*'([^']*)'`)
	reFortran = regexp.MustCompile(`'fortran_order'\s*:\s*(True|False)`)
	reShape   = regexp.MustCompile(`'shape'\s*:\s*\(([^)]*)\)`)
)

// Read decodes an .npy stream. Supported descr: <f4, <f8, <i4, <i8 (little-endian), C order only.
func Read(r io.Reader) (*Array, error) {
	pre := make([]byte, 8)
	if _, err := io.ReadFull(r, pre); err != nil {
		return nil, fmt.Errorf("read preamble: %w", err)
	}
	if !bytes.Equal(pre[:6], magic) {
		return nil, fmt.Errorf("not an .npy file (bad magic %q)", pre[:6])
	}
	var hlen int
	switch pre[6] {
	case 1:
		b := make([]byte, 2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("read header length: %w", err)
		}
		hlen = int(binary.LittleEndian.Uint16(b))
	case 2, 3:
		b := make([]byte, 4)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("read header length: %w", err)
		}
		hlen = int(binary.LittleEndian.Uint32(b))
	default:
		return nil, fmt.Errorf("unsupported .npy version %d.%d", pre[6], pre[7])
	}
	if hlen > maxHeader {
		return nil, fmt.Errorf("header of %d bytes exceeds %d", hlen, maxHeader)
	}
	hb := make([]byte, hlen)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	h := string(hb)
	d, f, s := reDescr.FindStringSubmatch(h), reFortran.FindStringSubmatch(h), reShape.FindStringSubmatch(h)
	if d == nil || f == nil || s == nil {
		return nil, fmt.Errorf("malformed header %q", strings.TrimSpace(h))
	}
	if f[1] == "True" {
		return nil, fmt.Errorf("fortran_order arrays are not supported")
	}
	var shape []int
	n := 1
	for _, part := range strings.Split(s[1], ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		v, err := strconv.Atoi(part)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("bad shape %q", s[1])
		}
		shape = append(shape, v)
		n *= v
		if n > 1<<34 {
			return nil, fmt.Errorf("shape %q too large", s[1])
		}
	}
	var size int
	switch d[1] {
	case "<f4", "<i4":
		size = 4
	case "<f8", "<i8":
		size = 8
	default:
		return nil, fmt.Errorf("unsupported dtype %q (want <f4, <f8, <i4 or <i8)", d[1])
	}
	// Read through a limit rather than into n*size bytes allocated up front, so that a header
	// announcing more data than the stream holds is an error, not an allocation of that size.
	raw, err := io.ReadAll(io.LimitReader(r, int64(n)*int64(size)))
	if err != nil {
		return nil, fmt.Errorf("read %d elements of %s: %w", n, d[1], err)
	}
	if len(raw) != n*size {
		return nil, fmt.Errorf("read %d elements of %s: %w (%d of %d bytes)", n, d[1], io.ErrUnexpectedEOF, len(raw), n*size)
	}
	out := make([]float32, n)
	le := binary.LittleEndian
	for i := range out {
		switch d[1] {
		case "<f4":
			out[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		case "<f8":
			out[i] = float32(math.Float64frombits(le.Uint64(raw[8*i:])))
		case "<i4":
			out[i] = float32(int32(le.Uint32(raw[4*i:])))
		case "<i8":
			out[i] = float32(int64(le.Uint64(raw[8*i:])))
		}
	}
	return &Array{Shape: shape, Data: out}, nil
}

// Write encodes data (row-major, len = product of shape) as a float32 C-order .npy stream.
func Write(w io.Writer, shape []int, data []float32) error {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return fmt.Errorf("npy: negative dimension in shape %v", shape)
		}
		n *= d
	}
	if n != len(data) {
		return fmt.Errorf("npy: shape %v holds %d elements, got %d", shape, n, len(data))
	}
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	st := strings.Join(dims, ", ")
	if len(shape) == 1 {
		st += ","
	}
	h := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", st)
	// pad with spaces so that the data starts at a multiple of 64, ending in a newline
	ver, pre := byte(1), 10
	if len(h)+1+pre > 65535 {
		ver, pre = 2, 12
	}
	total := (pre + len(h) + 1 + 63) / 64 * 64
	h += strings.Repeat(" ", total-pre-len(h)-1) + "\n"
	var buf bytes.Buffer
	buf.Write(magic)
	buf.Write([]byte{ver, 0})
	if ver == 1 {
		binary.Write(&buf, binary.LittleEndian, uint16(len(h)))
	} else {
		binary.Write(&buf, binary.LittleEndian, uint32(len(h)))
	}
	buf.WriteString(h)
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	buf.Write(raw)
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("npy: write: %w", err)
	}
	return nil
}

// WriteFile writes a float32 .npy file at path.
func WriteFile(path string, shape []int, data []float32) error {
	var buf bytes.Buffer
	if err := Write(&buf, shape, data); err != nil {
		return err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	return nil
}
