// elementwise.cu: fills, dtype conversions and the pointwise ops of tensor.Ops / tensor.Backward.
// All activations are F32; "w" operands may be F32/F16/BF16 (dt codes in common.cuh).
#include "common.cuh"

extern "C" __global__ void fill(void* x, int dt, float v, i64 n) {
    FOR_EACH(i, n) store_w(x, i, dt, v);
}

// convert copies n floats between dtypes (F32/F16/BF16 in any direction).
extern "C" __global__ void convert(void* dst, int ddt, const void* src, int sdt, i64 n) {
    FOR_EACH(i, n) store_w(dst, i, ddt, load_w(src, i, sdt));
}

// convert_bf16v rounds n floats to bf16 (the same bits as convert): 8 a thread, two 16-byte loads
// and one 16-byte store (src 16-byte aligned, dst 16-byte aligned; the caller checks), the last
// n % 8 by the thread after the last whole group. Grid-stride over groups.
extern "C" __global__ void convert_bf16v(u16* dst, const float* src, i64 n) {
    i64 groups = n >> 3;
    FOR_EACH(g, groups) {
        float4 a = ((const float4*)src)[2 * g], b = ((const float4*)src)[2 * g + 1];
        uint4 o;
        o.x = (u32)f32_to_bf16(a.x) | ((u32)f32_to_bf16(a.y) << 16);
        o.y = (u32)f32_to_bf16(a.z) | ((u32)f32_to_bf16(a.w) << 16);
        o.z = (u32)f32_to_bf16(b.x) | ((u32)f32_to_bf16(b.y) << 16);
        o.w = (u32)f32_to_bf16(b.z) | ((u32)f32_to_bf16(b.w) << 16);
        ((uint4*)dst)[g] = o;
    }
    if ((i64)blockIdx.x * blockDim.x + threadIdx.x == 0)
        for (i64 i = groups << 3; i < n; i++) dst[i] = f32_to_bf16(src[i]);
}

// add: out = a + alpha·b.
extern "C" __global__ void add(float* out, const float* a, const float* b, float alpha, i64 n) {
    FOR_EACH(i, n) out[i] = a[i] + alpha * b[i];
}

extern "C" __global__ void mul(float* out, const float* a, const float* b, i64 n) {
    FOR_EACH(i, n) out[i] = a[i] * b[i];
}

extern "C" __global__ void scale(float* out, const float* x, float s, i64 n) {
    FOR_EACH(i, n) out[i] = s * x[i];
}

// swiglu: out = silu(gate)·up, silu(g) = g·sigmoid(g).
extern "C" __global__ void swiglu(float* out, const float* gate, const float* up, i64 n) {
    FOR_EACH(i, n) {
        float g = gate[i];
        out[i] = g / (1.f + expf(-g)) * up[i];
    }
}

// swiglu_bwd: s = sigmoid(g); dgate = dy·up·s·(1 + g·(1−s)); dup = dy·g·s. dgate may alias gate,
// dup may alias up (each element is read before it is written).
extern "C" __global__ void swiglu_bwd(float* dgate, float* dup, const float* dy, const float* gate, const float* up, i64 n) {
    FOR_EACH(i, n) {
        float g = gate[i], u = up[i], y = dy[i];
        float s = 1.f / (1.f + expf(-g));
        dgate[i] = y * u * s * (1.f + g * (1.f - s));
        dup[i] = y * g * s;
    }
}

// swiglu_b / swiglu_bwd_b: swiglu / swiglu_bwd that also write the outputs rounded to bf16 (ob;
// dgb, dub), the operand copies a following bf16 Gemm would otherwise convert (conv.go). The
// float32 outputs are the same bits as the plain kernels'.
extern "C" __global__ void swiglu_b(float* out, u16* ob, const float* gate, const float* up, i64 n) {
    FOR_EACH(i, n) {
        float g = gate[i];
        float o = g / (1.f + expf(-g)) * up[i];
        out[i] = o;
        ob[i] = f32_to_bf16(o);
    }
}

extern "C" __global__ void swiglu_bwd_b(float* dgate, float* dup, u16* dgb, u16* dub, const float* dy, const float* gate, const float* up, i64 n) {
    FOR_EACH(i, n) {
        float g = gate[i], u = up[i], y = dy[i];
        float s = 1.f / (1.f + expf(-g));
        float a = y * u * s * (1.f + g * (1.f - s)), b = y * g * s;
        dgate[i] = a;
        dup[i] = b;
        dgb[i] = f32_to_bf16(a);
        dub[i] = f32_to_bf16(b);
    }
}

// add_bias: x[r, c] += bias[c] for x [rows, cols].
extern "C" __global__ void add_bias(float* x, const void* bias, int dt, i64 cols, i64 n) {
    FOR_EACH(i, n) x[i] += load_w(bias, i % cols, dt);
}

// mul_cols: out[r, c] = x[r, c]·v[c].
extern "C" __global__ void mul_cols(float* out, const float* x, const float* v, i64 cols, i64 n) {
    FOR_EACH(i, n) out[i] = x[i] * v[i % cols];
}

// copy_rows copies `outer` blocks of `width` elements of size esize bytes with strides (in
// elements) sstride and dstride: the strided part of Slice/SetSlice. Uses 4-, 2- or 1-byte units.
extern "C" __global__ void copy_blocks(char* dst, const char* src, i64 outer, i64 width, i64 dstride, i64 sstride, int esize) {
    i64 n = outer * width;
    FOR_EACH(i, n) {
        i64 o = i / width, w = i % width;
        const char* s = src + (o * sstride + w) * esize;
        char* d = dst + (o * dstride + w) * esize;
        if (esize == 4) *(u32*)d = *(const u32*)s;
        else if (esize == 2) *(u16*)d = *(const u16*)s;
        else if (esize == 8) *(i64*)d = *(const i64*)s;
        else *d = *s;
    }
}
