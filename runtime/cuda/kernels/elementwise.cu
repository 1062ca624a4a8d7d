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
    FOR_EACH(i, n) out[i] = silu_mul(gate[i], up[i]);
}

// swiglu_bwd: s = sigmoid(g); dgate = dy·up·s·(1 + g·(1−s)); dup = dy·g·s. dgate may alias gate,
// dup may alias up (each element is read before it is written).
extern "C" __global__ void swiglu_bwd(float* dgate, float* dup, const float* dy, const float* gate, const float* up, i64 n) {
    FOR_EACH(i, n) {
        float a, b;
        swiglu_grad(dy[i], gate[i], up[i], a, b);
        dgate[i] = a;
        dup[i] = b;
    }
}

// swiglu_b / swiglu_bwd_b: swiglu / swiglu_bwd that also write the outputs rounded to bf16 (ob;
// dgb, dub), the operand copies a following bf16 Gemm would otherwise convert (conv.go). The
// float32 outputs are the same bits as the plain kernels'.
extern "C" __global__ void swiglu_b(float* out, u16* ob, const float* gate, const float* up, i64 n) {
    FOR_EACH(i, n) {
        float o = silu_mul(gate[i], up[i]);
        out[i] = o;
        ob[i] = f32_to_bf16(o);
    }
}

extern "C" __global__ void swiglu_bwd_b(float* dgate, float* dup, u16* dgb, u16* dub, const float* dy, const float* gate, const float* up, i64 n) {
    FOR_EACH(i, n) {
        float a, b;
        swiglu_grad(dy[i], gate[i], up[i], a, b);
        dgate[i] = a;
        dup[i] = b;
        dgb[i] = f32_to_bf16(a);
        dub[i] = f32_to_bf16(b);
    }
}

// geglu: out = gelu_tanh(gate)·up (Gemma's MLP activation), with transformers' gelu_pytorch_tanh
// gelu_tanh(g) = 0.5·g·(1 + tanh(sqrt(2/π)·(g + 0.044715·g³))) in float32 as PyTorch's CUDA kernel
// computes it (the host path, runtime/train.GeGLU, rounds the float64 value). Outputs may alias
// inputs element for element (each element is read before it is written).
#define GELU_C 0.7978845608028654f
#define GELU_K 0.044715f
__device__ __forceinline__ float gelu_tanh_t(float g) { return tanhf(GELU_C * (g + GELU_K * g * g * g)); }
__device__ __forceinline__ float gelu_tanh_mul(float g, float u) { return 0.5f * g * (1.f + gelu_tanh_t(g)) * u; }

// geglu_grad: dgate and dup of one element: with t = tanh(sqrt(2/π)·(g + 0.044715·g³)),
// gelu' = 0.5·(1 + t) + 0.5·g·(1 − t²)·sqrt(2/π)·(1 + 3·0.044715·g²); dgate = dy·up·gelu', dup = dy·gelu.
__device__ __forceinline__ void geglu_grad(float y, float g, float u, float& dg, float& du) {
    float t = gelu_tanh_t(g);
    float d = 0.5f * (1.f + t) + 0.5f * g * (1.f - t * t) * GELU_C * (1.f + 3.f * GELU_K * g * g);
    dg = y * u * d;
    du = y * (0.5f * g * (1.f + t));
}

extern "C" __global__ void geglu(float* out, const float* gate, const float* up, i64 n) {
    FOR_EACH(i, n) out[i] = gelu_tanh_mul(gate[i], up[i]);
}

// geglu_bwd: dgate = dy·up·gelu_tanh'(gate), dup = dy·gelu_tanh(gate) (geglu_grad).
extern "C" __global__ void geglu_bwd(float* dgate, float* dup, const float* dy, const float* gate, const float* up, i64 n) {
    FOR_EACH(i, n) {
        float a, b;
        geglu_grad(dy[i], gate[i], up[i], a, b);
        dgate[i] = a;
        dup[i] = b;
    }
}

// geglu_b / geglu_bwd_b: geglu / geglu_bwd that also write the outputs rounded to bf16 (ob; dgb,
// dub) for the next bf16 Gemm, as swiglu_b / swiglu_bwd_b. The float32 outputs are the same bits as
// the plain kernels'.
extern "C" __global__ void geglu_b(float* out, u16* ob, const float* gate, const float* up, i64 n) {
    FOR_EACH(i, n) {
        float o = gelu_tanh_mul(gate[i], up[i]);
        out[i] = o;
        ob[i] = f32_to_bf16(o);
    }
}

extern "C" __global__ void geglu_bwd_b(float* dgate, float* dup, u16* dgb, u16* dub, const float* dy, const float* gate, const float* up, i64 n) {
    FOR_EACH(i, n) {
        float a, b;
        geglu_grad(dy[i], gate[i], up[i], a, b);
        dgate[i] = a;
        dup[i] = b;
        dgb[i] = f32_to_bf16(a);
        dub[i] = f32_to_bf16(b);
    }
}

// add_v, swiglu_bv, swiglu_bwd_bv: add, swiglu_b and swiglu_bwd_b 4 elements a thread with 16-byte
// float accesses and 8-byte bf16 stores (every pointer 16-byte aligned, the bf16 ones 8-byte; the
// caller checks), the last n % 4 by the thread after the last whole group. The same arithmetic, so
// the same bits. Outputs may alias inputs element for element (each group is read before written).
__device__ __forceinline__ u32 bf16x2(float lo, float hi) { return (u32)f32_to_bf16(lo) | ((u32)f32_to_bf16(hi) << 16); }
__device__ __forceinline__ bool first_thread() { return (i64)blockIdx.x * blockDim.x + threadIdx.x == 0; }

extern "C" __global__ void add_v(float* out, const float* a, const float* b, float alpha, i64 n) {
    i64 groups = n >> 2;
    FOR_EACH(q, groups) {
        float4 x = ((const float4*)a)[q], y = ((const float4*)b)[q];
        ((float4*)out)[q] = make_float4(x.x + alpha * y.x, x.y + alpha * y.y, x.z + alpha * y.z, x.w + alpha * y.w);
    }
    if (first_thread())
        for (i64 i = groups << 2; i < n; i++) out[i] = a[i] + alpha * b[i];
}

extern "C" __global__ void swiglu_bv(float* out, u16* ob, const float* gate, const float* up, i64 n) {
    i64 groups = n >> 2;
    FOR_EACH(q, groups) {
        float4 g = ((const float4*)gate)[q], u = ((const float4*)up)[q];
        float4 o = make_float4(silu_mul(g.x, u.x), silu_mul(g.y, u.y), silu_mul(g.z, u.z), silu_mul(g.w, u.w));
        ((float4*)out)[q] = o;
        ((uint2*)ob)[q] = make_uint2(bf16x2(o.x, o.y), bf16x2(o.z, o.w));
    }
    if (first_thread())
        for (i64 i = groups << 2; i < n; i++) {
            float o = silu_mul(gate[i], up[i]);
            out[i] = o;
            ob[i] = f32_to_bf16(o);
        }
}

extern "C" __global__ void swiglu_bwd_bv(float* dgate, float* dup, u16* dgb, u16* dub, const float* dy, const float* gate, const float* up, i64 n) {
    i64 groups = n >> 2;
    FOR_EACH(q, groups) {
        float4 g = ((const float4*)gate)[q], u = ((const float4*)up)[q], y = ((const float4*)dy)[q];
        float4 a, b;
        swiglu_grad(y.x, g.x, u.x, a.x, b.x);
        swiglu_grad(y.y, g.y, u.y, a.y, b.y);
        swiglu_grad(y.z, g.z, u.z, a.z, b.z);
        swiglu_grad(y.w, g.w, u.w, a.w, b.w);
        ((float4*)dgate)[q] = a;
        ((float4*)dup)[q] = b;
        ((uint2*)dgb)[q] = make_uint2(bf16x2(a.x, a.y), bf16x2(a.z, a.w));
        ((uint2*)dub)[q] = make_uint2(bf16x2(b.x, b.y), bf16x2(b.z, b.w));
    }
    if (first_thread())
        for (i64 i = groups << 2; i < n; i++) {
            float a, b;
            swiglu_grad(dy[i], gate[i], up[i], a, b);
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
