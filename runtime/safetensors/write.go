package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// Tensor is one tensor to write: Data holds product(Shape) x DType.Size() little-endian bytes.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// Order is the order a writer lays tensors out in a file: header entries and data alike.
type Order int

const (
	// ByName sorts tensors by name (Write's order).
	ByName Order = iota
	// ByDTypeThenName sorts as Python's safetensors package (safetensors.torch.save_file, which
	// transformers' save_pretrained calls) does: by dtype, descending in the crate's Dtype enum
	// order (U64, I64, F64, F32, U32, I32, BF16, F16, U16, I16, F8_E4M3, F8_E5M2, I8, U8, BOOL),
	// then by name. The two orders differ as soon as dtypes are mixed, as in every quantized
	// checkpoint; with this one a file can be byte-identical to the Python library's.
	ByDTypeThenName
)

// dtypeRank is the position of each dtype in the Rust crate's Dtype enum (BOOL < U8 < I8 <
// F8_E5M2 < F8_E4M3 < I16 < U16 < F16 < BF16 < I32 < U32 < F32 < F64 < I64 < U64).
var dtypeRank = map[DType]int{
	BOOL: 0, U8: 1, I8: 2, F8_E5M2: 3, F8_E4M3: 4, I16: 5, U16: 6, F16: 7,
	BF16: 8, I32: 9, U32: 10, F32: 11, F64: 12, I64: 13, U64: 14,
}

// Write writes tensors (any order; written sorted by name, contiguous) and metadata (may be nil)
// to path as one safetensors file. The header is padded with spaces to a multiple of 8 bytes, as the
// Rust crate does. The write is atomic: a temporary file in the same directory, synced, renamed.
// Tensor data is only read.
func Write(path string, tensors []Tensor, metadata map[string]string) error {
	return WriteOrdered(path, tensors, metadata, ByName)
}

// WriteOrdered is Write with the tensors laid out in the given order (ByName as Write, or
// ByDTypeThenName as Python's safetensors writes). The checks, header format and atomic write are
// Write's.
func WriteOrdered(path string, tensors []Tensor, metadata map[string]string, order Order) error {
	sorted, err := checkTensors(path, tensors)
	if err != nil {
		return err
	}
	switch order {
	case ByName:
	case ByDTypeThenName:
		// Stable: tensors of one dtype keep checkTensors' name order.
		sort.SliceStable(sorted, func(i, j int) bool { return dtypeRank[sorted[i].DType] > dtypeRank[sorted[j].DType] })
	default:
		return fmt.Errorf("safetensors %s: unknown tensor order %d", path, order)
	}
	hdr, err := encodeHeader(sorted, metadata)
	if err != nil {
		return fmt.Errorf("safetensors %s: %w", path, err)
	}
	return atomicWrite(path, func(w *os.File) error {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(hdr)))
		if _, err := w.Write(n[:]); err != nil {
			return err
		}
		if _, err := w.Write(hdr); err != nil {
			return err
		}
		for _, t := range sorted {
			if _, err := w.Write(t.Data); err != nil {
				return err
			}
		}
		return nil
	})
}

// checkTensors validates names, dtypes and data sizes, and returns the tensors sorted by name.
func checkTensors(path string, tensors []Tensor) ([]Tensor, error) {
	sorted := append([]Tensor(nil), tensors...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for i, t := range sorted {
		if t.Name == "__metadata__" {
			return nil, fmt.Errorf("safetensors %s: tensor name %q is reserved", path, t.Name)
		}
		if i > 0 && sorted[i-1].Name == t.Name {
			return nil, fmt.Errorf("safetensors %s: tensor %q given twice", path, t.Name)
		}
		if !t.DType.Known() {
			return nil, fmt.Errorf("safetensors %s: tensor %q: unknown dtype %q", path, t.Name, t.DType)
		}
		n := int64(1)
		for _, d := range t.Shape {
			if d < 0 {
				return nil, fmt.Errorf("safetensors %s: tensor %q: negative dimension in shape %v", path, t.Name, t.Shape)
			}
			n *= int64(d)
		}
		if want := n * int64(t.DType.Size()); int64(len(t.Data)) != want {
			return nil, fmt.Errorf("safetensors %s: tensor %q: %d data bytes, shape %v of %s needs %d",
				path, t.Name, len(t.Data), t.Shape, t.DType, want)
		}
	}
	return sorted, nil
}

// encodeHeader renders the JSON header of sorted tensors laid out contiguously, padded to 8 bytes.
func encodeHeader(sorted []Tensor, metadata map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	if len(metadata) > 0 {
		md, err := json.Marshal(metadata) // keys sorted
		if err != nil {
			return nil, err
		}
		b.WriteString(`"__metadata__":`)
		b.Write(md)
		first = false
	}
	var off int64
	for _, t := range sorted {
		if !first {
			b.WriteByte(',')
		}
		first = false
		name, _ := json.Marshal(t.Name)
		b.Write(name)
		b.WriteString(`:{"dtype":"`)
		b.WriteString(string(t.DType))
		b.WriteString(`","shape":[`)
		for i, d := range t.Shape {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(d))
		}
		end := off + int64(len(t.Data))
		fmt.Fprintf(&b, `],"data_offsets":[%d,%d]}`, off, end)
		off = end
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	return b.Bytes(), nil
}

// atomicWrite writes path through fill into a temporary file beside it, syncs and renames it.
func atomicWrite(path string, fill func(*os.File) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := fill(tmp); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("safetensors: sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("safetensors: close %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("safetensors: chmod %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("safetensors: rename to %s: %w", path, err)
	}
	ok = true
	return nil
}

// WriteSharded writes tensors into dir as prefix-00001-of-0000N.safetensors shards (names sorted,
// a new shard started when the next tensor would pass maxShardBytes of data; a tensor larger than
// the limit gets a shard of its own) plus prefix.safetensors.index.json holding metadata.total_size
// (data bytes) and the weight_map, as transformers' save_pretrained does. With prefix "model" the
// result opens with OpenDir. metadata goes into every shard's header. Each file is written
// atomically; the index last.
func WriteSharded(dir, prefix string, tensors []Tensor, metadata map[string]string, maxShardBytes int64) error {
	if maxShardBytes <= 0 {
		return fmt.Errorf("safetensors: WriteSharded %s: maxShardBytes must be positive, got %d", dir, maxShardBytes)
	}
	sorted, err := checkTensors(dir, tensors)
	if err != nil {
		return err
	}
	var shards [][]Tensor
	var cur int64
	var total int64
	for _, t := range sorted {
		sz := int64(len(t.Data))
		total += sz
		if len(shards) == 0 || (cur+sz > maxShardBytes && len(shards[len(shards)-1]) > 0) {
			shards = append(shards, nil)
			cur = 0
		}
		shards[len(shards)-1] = append(shards[len(shards)-1], t)
		cur += sz
	}
	if len(shards) == 0 {
		shards = append(shards, nil)
	}
	weightMap := map[string]string{}
	for i, sh := range shards {
		name := fmt.Sprintf("%s-%05d-of-%05d.safetensors", prefix, i+1, len(shards))
		if err := Write(filepath.Join(dir, name), sh, metadata); err != nil {
			return err
		}
		for _, t := range sh {
			weightMap[t.Name] = name
		}
	}
	idx := struct {
		Metadata  map[string]any    `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}{map[string]any{"total_size": total}, weightMap}
	js, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return fmt.Errorf("safetensors: WriteSharded %s: index: %w", dir, err)
	}
	js = append(js, '\n')
	idxPath := filepath.Join(dir, prefix+".safetensors.index.json")
	return atomicWrite(idxPath, func(w *os.File) error { _, err := w.Write(js); return err })
}
