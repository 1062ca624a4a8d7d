// Package gguf reads GGUF files (versions 2 and 3), the checkpoint format of llama.cpp and Ollama.
//
// Layout of a file (all integers little-endian):
//
//	magic "GGUF" | version u32 | tensor count u64 | metadata kv count u64
//	kv count × (key string | value type u32 | value)
//	tensor count × (name string | n_dims u32 | dims u64[n_dims] | ggml type u32 | offset u64)
//	padding to general.alignment (default 32) | data section
//
// A string is a u64 byte length and the bytes; an array is an element type u32, a u64 count and
// the elements (arrays may nest). Tensor dims are in GGML order: dims[0] (ne[0]) varies fastest,
// so a weight of HF shape [out, in] is stored with dims [in, out]. Tensor offsets are relative to
// the data section and multiples of the alignment.
//
// Open memory-maps a file and validates the whole header; tensor data is read only when asked
// for. A *File satisfies safetensors.Source, so model loaders read GGUF tensors as they read
// safetensors: shapes reported in HF order (the GGUF dims reversed), Float32 dequantizing every
// supported GGML type (F32, F16, BF16, F64, I8/I16/I32, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K,
// Q3_K, Q4_K, Q5_K, Q6_K, Q8_K) exactly as ggml's reference dequantizers define them. Metadata
// gives typed access to the key/value pairs (String, Uint, Float, Array, ...).
//
// Malformed input gives an error naming the byte offset and the field being read; no input panics
// (FuzzParse).
package gguf
