package quant

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	st "github.com/finlora/finlora/runtime/safetensors"
)

// dtypeRank is the order of the Python safetensors package's Dtype enum (BOOL < U8 < I8 < F8 <
// I16 < U16 < F16 < BF16 < I32 < U32 < F32 < F64 < I64 < U64); it writes tensors by rank
// descending, then by name.
var dtypeRank = map[st.DType]int{
	st.BOOL: 0, st.U8: 1, st.I8: 2, st.F8_E5M2: 3, st.F8_E4M3: 4, st.I16: 5, st.U16: 6, st.F16: 7,
	st.BF16: 8, st.I32: 9, st.U32: 10, st.F32: 11, st.F64: 12, st.I64: 13, st.U64: 14,
}

// WriteHF writes tensors to path as one safetensors file laid out exactly as Python's
// safetensors.torch.save_file lays it out (the file transformers' save_pretrained writes):
// tensors ordered by dtype (F32 before BF16, F16, I8, U8, ...) then by name, the header
// {"__metadata__":{...},"name":{"dtype":..,"shape":[..],"data_offsets":[b,e]},...} padded with
// spaces to a multiple of 8. runtime/safetensors.Write orders by name only, which differs as soon
// as dtypes are mixed, as in every quantized checkpoint. The file is written to a temporary name
// and renamed. Tensor data is only read.
func WriteHF(path string, tensors []st.Tensor, metadata map[string]string) error {
	ts := append([]st.Tensor(nil), tensors...)
	for _, t := range ts {
		if _, ok := dtypeRank[t.DType]; !ok {
			return fmt.Errorf("write %s: tensor %s: unsupported dtype %q", path, t.Name, t.DType)
		}
		if want := numElements(t.Shape) * t.DType.Size(); want != len(t.Data) {
			return fmt.Errorf("write %s: tensor %s: %d bytes for %s %v (want %d)", path, t.Name, len(t.Data), t.DType, t.Shape, want)
		}
	}
	sort.SliceStable(ts, func(i, j int) bool {
		ri, rj := dtypeRank[ts[i].DType], dtypeRank[ts[j].DType]
		if ri != rj {
			return ri > rj
		}
		return ts[i].Name < ts[j].Name
	})
	var h bytes.Buffer
	h.WriteByte('{')
	if len(metadata) > 0 {
		md, err := json.Marshal(metadata)
		if err != nil {
			return fmt.Errorf("write %s: metadata: %w", path, err)
		}
		h.WriteString(`"__metadata__":`)
		h.Write(md)
	}
	var off int
	for i, t := range ts {
		if i > 0 || len(metadata) > 0 {
			h.WriteByte(',')
		}
		if i > 0 && ts[i-1].Name == t.Name {
			return fmt.Errorf("write %s: tensor %s given twice", path, t.Name)
		}
		name, _ := json.Marshal(t.Name)
		h.Write(name)
		h.WriteString(`:{"dtype":"` + string(t.DType) + `","shape":[`)
		for k, d := range t.Shape {
			if k > 0 {
				h.WriteByte(',')
			}
			h.WriteString(strconv.Itoa(d))
		}
		fmt.Fprintf(&h, `],"data_offsets":[%d,%d]}`, off, off+len(t.Data))
		off += len(t.Data)
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	w := bufio.NewWriterSize(tmp, 1<<20)
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(h.Len()))
	w.Write(n[:])
	w.Write(h.Bytes())
	for _, t := range ts {
		w.Write(t.Data)
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
