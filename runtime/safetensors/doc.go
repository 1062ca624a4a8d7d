// Package safetensors reads and writes the safetensors checkpoint format of Hugging Face
// (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N, N bytes of
// JSON describing each tensor (dtype, shape, data_offsets relative to the data section) plus an
// optional "__metadata__" string map, then the raw little-endian tensor data.
//
// Files are memory-mapped and read lazily per tensor (Open); a model directory with a single
// model.safetensors or a sharded model.safetensors.index.json opens as a Set (OpenDir). Both
// satisfy Source, the read interface the model loaders use. Write and WriteSharded produce files
// the Rust crate and transformers accept. convert.go decodes every dtype to float32 (F8 here; the
// BF16 and F16 bit conversions are runtime/tensor's, the one implementation in the module).
package safetensors
