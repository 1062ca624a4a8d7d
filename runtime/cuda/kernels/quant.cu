// quant.cu: dequantization of bitsandbytes-layout weights (tensor.QuantHost): NF4/FP4 with one
// absmax per block (optionally double-quantized) and LLM.int8 with one scale per row. The value of
// element e is exactly tensor.QuantHost's formula: products rounded to float32 one at a time
// (__fmul_rn/__fadd_rn: no fused multiply-add), then rounded to `round_dt` (F32: none).
#include "common.cuh"

__device__ __forceinline__ float round_to(float v, int dt) {
    if (dt == DT_BF16) return bf16_to_f32(f32_to_bf16(v));
    if (dt == DT_F16) return f16_to_f32(f32_to_f16(v));
    return v;
}

// dequant4 writes n = rows·cols elements into out (dtype out_dt). Nibble order: element 2i is the
// high nibble of packed[i], element 2i+1 the low one. absmax null means double quantization:
// absmax(b) = float32(nmap[codes[b]]·nabs[b / nbs]) + noff.
extern "C" __global__ void dequant4(void* out, int out_dt, const unsigned char* packed, const float* absmax,
                                    const unsigned char* codes, const float* nabs, const float* nmap, float noff, int nbs,
                                    const float* codebook, int bs, int round_dt, i64 n) {
    FOR_EACH(e, n) {
        i64 blk = e / bs;
        float m = absmax ? absmax[blk] : __fadd_rn(__fmul_rn(nmap[codes[blk]], nabs[blk / nbs]), noff);
        unsigned char byte = packed[e >> 1];
        int nib = (e & 1) ? (byte & 15) : (byte >> 4);
        store_w(out, e, out_dt, round_to(__fmul_rn(codebook[nib], m), round_dt));
    }
}

// dequant8: out[r, c] = round(float32(float32(q[r, c])·scb[r])·float32(1/127)).
extern "C" __global__ void dequant8(void* out, int out_dt, const signed char* q, const float* scb, int round_dt, i64 cols, i64 n) {
    const float inv127 = 1.0f / 127.0f;
    FOR_EACH(e, n) {
        float v = __fmul_rn(__fmul_rn((float)q[e], scb[e / cols]), inv127);
        store_w(out, e, out_dt, round_to(v, round_dt));
    }
}
