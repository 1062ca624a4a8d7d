package safetensors

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
)

// MaxHeaderBytes bounds the JSON header length a reader accepts (100 MB, the Rust crate's limit).
const MaxHeaderBytes = 100 << 20

// TensorInfo describes one tensor of a file: its dtype, its shape (row-major, outermost first) and
// the byte range [Begin, End) of its data relative to the start of the data section.
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int
	Begin int64
	End   int64
}

// NumElements returns the product of the shape (1 for a scalar).
func (t TensorInfo) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// header is a parsed and validated header.
type header struct {
	names    []string // sorted
	infos    map[string]TensorInfo
	metadata map[string]string
}

type rawTensor struct {
	DType       *string  `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets *[]int64 `json:"data_offsets"`
}

// parseHeader parses and validates the JSON header of file path (used in error messages) whose data
// section holds dataLen bytes. Every violation is an error naming the file and, where there is one,
// the tensor.
func parseHeader(path string, js []byte, dataLen int64) (*header, error) {
	trimmed := bytes.TrimLeft(js, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("safetensors %s: header is not a JSON object", path)
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("safetensors %s: header JSON: %w", path, err)
	}
	if rest := js[dec.InputOffset():]; len(bytes.TrimRight(rest, " \t\r\n\x00")) != 0 {
		return nil, fmt.Errorf("safetensors %s: header JSON: trailing data after the object", path)
	}
	h := &header{infos: make(map[string]TensorInfo, len(raw))}
	for name, msg := range raw {
		if name == "__metadata__" {
			var md map[string]string
			if err := json.Unmarshal(msg, &md); err != nil {
				return nil, fmt.Errorf("safetensors %s: __metadata__ must be a map of strings: %w", path, err)
			}
			h.metadata = md
			continue
		}
		info, err := parseTensor(name, msg, dataLen)
		if err != nil {
			return nil, fmt.Errorf("safetensors %s: tensor %q: %w", path, name, err)
		}
		h.infos[name] = info
		h.names = append(h.names, name)
	}
	sort.Strings(h.names)
	// Ranges sorted by start must not overlap (empty tensors may sit anywhere).
	order := make([]TensorInfo, 0, len(h.names))
	for _, n := range h.names {
		if t := h.infos[n]; t.End > t.Begin {
			order = append(order, t)
		}
	}
	sort.Slice(order, func(i, j int) bool { return order[i].Begin < order[j].Begin })
	for i := 1; i < len(order); i++ {
		if order[i].Begin < order[i-1].End {
			return nil, fmt.Errorf("safetensors %s: tensor %q: data [%d,%d) overlaps tensor %q [%d,%d)",
				path, order[i].Name, order[i].Begin, order[i].End, order[i-1].Name, order[i-1].Begin, order[i-1].End)
		}
	}
	return h, nil
}

func parseTensor(name string, msg json.RawMessage, dataLen int64) (TensorInfo, error) {
	var rt rawTensor
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rt); err != nil {
		return TensorInfo{}, fmt.Errorf("bad entry: %w", err)
	}
	if rt.DType == nil || rt.Shape == nil || rt.DataOffsets == nil {
		return TensorInfo{}, fmt.Errorf("entry needs dtype, shape and data_offsets")
	}
	dt := DType(*rt.DType)
	if !dt.Known() {
		return TensorInfo{}, fmt.Errorf("unknown dtype %q", *rt.DType)
	}
	shape := make([]int, len(*rt.Shape))
	n := int64(1)
	for i, d := range *rt.Shape {
		if d < 0 {
			return TensorInfo{}, fmt.Errorf("negative dimension %d in shape %v", d, *rt.Shape)
		}
		if d != 0 && n > math.MaxInt64/int64(dt.Size())/d {
			return TensorInfo{}, fmt.Errorf("shape %v overflows", *rt.Shape)
		}
		n *= d
		shape[i] = int(d)
	}
	offs := *rt.DataOffsets
	if len(offs) != 2 {
		return TensorInfo{}, fmt.Errorf("data_offsets must hold 2 numbers, got %d", len(offs))
	}
	begin, end := offs[0], offs[1]
	if begin < 0 || end < begin {
		return TensorInfo{}, fmt.Errorf("bad data_offsets [%d,%d]", begin, end)
	}
	if end > dataLen {
		return TensorInfo{}, fmt.Errorf("data_offsets [%d,%d] beyond the data section (%d bytes)", begin, end, dataLen)
	}
	if want := n * int64(dt.Size()); end-begin != want {
		return TensorInfo{}, fmt.Errorf("data_offsets [%d,%d] hold %d bytes, shape %v of %s needs %d",
			begin, end, end-begin, *rt.Shape, dt, want)
	}
	return TensorInfo{Name: name, DType: dt, Shape: shape, Begin: begin, End: end}, nil
}
