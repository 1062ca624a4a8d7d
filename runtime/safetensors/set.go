package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// SingleFileName and IndexFileName are the names transformers gives a model's weights.
const (
	SingleFileName = "model.safetensors"
	IndexFileName  = "model.safetensors.index.json"
)

// Set is the weights of a model directory: one model.safetensors, or the shards listed by
// model.safetensors.index.json. Tensors are looked up by name across its files. The caller must
// Close it, which closes every file.
type Set struct {
	dir      string
	files    []*File          // in the order of Files()
	owner    map[string]*File // tensor name -> file holding it
	names    []string         // sorted
	metadata map[string]string
}

var _ Source = (*Set)(nil)

// indexJSON is the layout of model.safetensors.index.json.
type indexJSON struct {
	Metadata  map[string]any    `json:"metadata"`
	WeightMap map[string]string `json:"weight_map"`
}

// OpenDir opens the weights of model directory dir: the sharded index if present (every listed
// shard must exist and hold the tensors the weight_map assigns to it; tensors of a shard not in the
// weight_map are ignored, as transformers does), else model.safetensors.
func OpenDir(dir string) (*Set, error) {
	idxPath := filepath.Join(dir, IndexFileName)
	raw, err := os.ReadFile(idxPath)
	if errors.Is(err, fs.ErrNotExist) {
		f, err := Open(filepath.Join(dir, SingleFileName))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("safetensors: %s holds neither %s nor %s", dir, SingleFileName, IndexFileName)
			}
			return nil, err
		}
		s := &Set{dir: dir, files: []*File{f}, owner: map[string]*File{}, names: f.Names(), metadata: f.Metadata()}
		for _, n := range s.names {
			s.owner[n] = f
		}
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("safetensors: read index: %w", err)
	}
	var idx indexJSON
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("safetensors %s: index JSON: %w", idxPath, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("safetensors %s: empty or missing weight_map", idxPath)
	}
	s := &Set{dir: dir, owner: make(map[string]*File, len(idx.WeightMap))}
	byFile := map[string]*File{}
	shardNames := make([]string, 0)
	for _, shard := range idx.WeightMap {
		if _, seen := byFile[shard]; !seen {
			byFile[shard] = nil
			shardNames = append(shardNames, shard)
		}
	}
	sort.Strings(shardNames)
	for _, shard := range shardNames {
		if shard == "" || filepath.IsAbs(shard) || filepath.Base(shard) != shard {
			s.Close()
			return nil, fmt.Errorf("safetensors %s: shard name %q must be a plain file name", idxPath, shard)
		}
		f, err := Open(filepath.Join(dir, shard))
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("safetensors %s: shard listed in the index: %w", idxPath, err)
		}
		byFile[shard] = f
		s.files = append(s.files, f)
	}
	for name, shard := range idx.WeightMap {
		f := byFile[shard]
		if _, ok := f.Info(name); !ok {
			s.Close()
			return nil, fmt.Errorf("safetensors %s: tensor %q is mapped to %s, which does not hold it", idxPath, name, shard)
		}
		s.owner[name] = f
		s.names = append(s.names, name)
	}
	sort.Strings(s.names)
	s.metadata = map[string]string{}
	if len(s.files) > 0 {
		for k, v := range s.files[0].Metadata() {
			s.metadata[k] = v
		}
	}
	for k, v := range idx.Metadata {
		switch v := v.(type) {
		case string:
			s.metadata[k] = v
		case float64:
			s.metadata[k] = strconv.FormatFloat(v, 'f', -1, 64)
		default:
			b, _ := json.Marshal(v)
			s.metadata[k] = string(b)
		}
	}
	return s, nil
}

// Dir returns the directory the set was opened from.
func (s *Set) Dir() string { return s.dir }

// Files returns the paths of the files of the set (one, or the shards in sorted order).
func (s *Set) Files() []string {
	out := make([]string, len(s.files))
	for i, f := range s.files {
		out[i] = f.Path()
	}
	return out
}

// Close unmaps every file; slices from Bytes become invalid. It returns the first error.
func (s *Set) Close() error {
	var first error
	for _, f := range s.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Names returns the tensor names in sorted order (a new slice).
func (s *Set) Names() []string { return append([]string(nil), s.names...) }

// Info returns the dtype, shape and data range (within its own file) of a tensor.
func (s *Set) Info(name string) (TensorInfo, bool) {
	f, ok := s.owner[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Info(name)
}

// File returns the file holding tensor name.
func (s *Set) File(name string) (*File, bool) {
	f, ok := s.owner[name]
	return f, ok
}

// Metadata returns, for a single file, its "__metadata__"; for a sharded set, the first shard's
// "__metadata__" merged with the index's "metadata" (numbers formatted as decimal strings, e.g.
// "total_size"). Do not modify it.
func (s *Set) Metadata() map[string]string { return s.metadata }

// Bytes returns a zero-copy, read-only view of tensor name's data, valid until Close.
func (s *Set) Bytes(name string) ([]byte, error) {
	f, ok := s.owner[name]
	if !ok {
		return nil, fmt.Errorf("safetensors %s: no tensor %q", s.dir, name)
	}
	return f.Bytes(name)
}

// Float32 returns tensor name decoded to float32 in a new slice owned by the caller.
func (s *Set) Float32(name string) ([]float32, error) {
	f, ok := s.owner[name]
	if !ok {
		return nil, fmt.Errorf("safetensors %s: no tensor %q", s.dir, name)
	}
	return f.Float32(name)
}
