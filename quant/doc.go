// Package quant holds the bitsandbytes-compatible quantized weight formats and their reference
// (pure Go, float32) quantizers and dequantizers:
//
//   - 4-bit NF4 and FP4, blockwise absmax (blocksize 64 by default, any power of two from 64 to
//     4096), optionally with double quantization of the absmax (minus its mean) by the signed 8-bit
//     dynamic map in blocks of 256;
//   - LLM.int8: row-wise absmax (SCB) and int8 = round-half-even(w16 * 127/absmax_row) of the
//     weight rounded to float16 first, as bitsandbytes' Int8Params does.
//
// Every arithmetic step follows what bitsandbytes computes on the GPU (float32 reciprocal of the
// absmax, decision trees with float32 thresholds, float32 products, no fused multiply-add), so
// quantizing the same float32 weights gives the same bytes and dequantizing gives the same float32
// values: the tests check this against checkpoints written by transformers + bitsandbytes
// (testdata/README.md).
//
// Layouts (as transformers saves them, see checkpoint.go):
//
//	4-bit:  weight            U8  [(n+1)/2, 1]  element 2i in the high nibble, 2i+1 in the low one,
//	                                            n = out*in elements in row-major order
//	        weight.absmax     F32 [nblocks]     nblocks = ceil(n/blocksize)    (no double quant)
//	                          U8  [nblocks]     8-bit dynamic-map codes        (double quant)
//	        weight.nested_absmax     F32 [ceil(nblocks/256)]
//	        weight.nested_quant_map  F32 [256]  the signed dynamic map
//	        weight.quant_map         F32 [16]   the NF4 or FP4 codebook
//	        weight.quant_state.bitsandbytes__nf4|fp4  U8 [len]  JSON (QuantState)
//	int8:   weight            I8  [out, in]
//	        SCB               F32 [out]         row absmax of the float16-rounded weight
//	        weight_format     U8  []            0 (row-major)
//
// Entry points:
//
//   - Quantize4 / Weight4.Dequantize, QuantizeInt8 / WeightInt8.Dequantize: one matrix.
//   - ReadWeight4, ReadWeightInt8, Weight4.Tensors, WeightInt8.Tensors: the saved tensors of one
//     layer (reading validates every part and names the tensor and field at fault).
//   - QuantizeSource: a float checkpoint (safetensors.Source) to quantized items one tensor at a
//     time (memory: the quantized model plus one float32 layer); QuantizeCheckpoint writes a whole
//     transformers/bitsandbytes checkpoint directory (finlora quantize), its safetensors file
//     written in the Python library's tensor order (safetensors.WriteOrdered, ByDTypeThenName).
//   - DequantizedSource: a bitsandbytes checkpoint seen as float tensors (model.FromSource reads
//     it); OnLoadSource: a float checkpoint seen as its quantized-then-dequantized self.
//   - Config, ParseQuantizationConfig, RewriteConfigJSON: config.json's quantization_config.
package quant
