package quant

import "github.com/finlora/finlora/runtime/safetensors"

// roundBF16 rounds f to the nearest bfloat16 (ties to even), returned as float32.
func roundBF16(f float32) float32 { return safetensors.BF16ToFloat32(safetensors.Float32ToBF16(f)) }

// roundF16 rounds f to the nearest IEEE half (ties to even), returned as float32.
func roundF16(f float32) float32 { return safetensors.F16ToFloat32(safetensors.Float32ToF16(f)) }
