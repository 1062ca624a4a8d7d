// norm.cu: RMSNorm forward and backward, one block per row, float32 math with a float64 sum of squares.
#include "common.cuh"

// rmsnorm: out[r] = x[r] / sqrt(mean(x[r]²) + eps) · w' with w' = w (or 1 + w when add_one).
// x, out [rows, d] F32 (out may be x); w [d] of dtype dt.
extern "C" __global__ void rmsnorm(float* out, const float* x, const void* w, int dt, float eps, int add_one, int d) {
    __shared__ double sd[32];
    i64 r = blockIdx.x;
    const float* xr = x + r * d;
    float* orow = out + r * d;
    double ss = 0;
    for (int i = threadIdx.x; i < d; i += blockDim.x) ss += (double)xr[i] * xr[i];
    ss = block_sum_d(ss, sd);
    float inv = (float)(1.0 / sqrt(ss / d + (double)eps));
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        float f = load_w(w, i, dt);
        if (add_one) f += 1.f;
        orow[i] = xr[i] * inv * f;
    }
}

// rmsnorm_bwd: with r = 1/sqrt(mean(x²)+eps), dx = r·(dy⊙w') − x·r³·Σ(dy⊙w'⊙x)/d. dx may alias dy.
extern "C" __global__ void rmsnorm_bwd(float* dx, const float* dy, const float* x, const void* w, int dt, float eps, int add_one, int d) {
    __shared__ double sd[32];
    i64 r = blockIdx.x;
    const float* xr = x + r * d;
    const float* gr = dy + r * d;
    float* orow = dx + r * d;
    double ss = 0, dot = 0;
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        float f = load_w(w, i, dt);
        if (add_one) f += 1.f;
        ss += (double)xr[i] * xr[i];
        dot += (double)gr[i] * f * xr[i];
    }
    ss = block_sum_d(ss, sd);
    dot = block_sum_d(dot, sd);
    double inv = 1.0 / sqrt(ss / d + (double)eps);
    float c = (float)(inv * inv * inv * dot / d);
    float fi = (float)inv;
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        float f = load_w(w, i, dt);
        if (add_one) f += 1.f;
        orow[i] = fi * gr[i] * f - xr[i] * c;
    }
}

// rmsnorm4: rmsnorm with float4 accesses (d % 4 == 0, x and out 16-byte aligned; launched with 256
// threads for d ≥ 1024): the same float64 sum of squares (in another order) and the same float32
// expression per element, fewer threads to reduce over (a decode row is one block).
extern "C" __global__ void rmsnorm4(float* out, const float* x, const void* w, int dt, float eps, int add_one, int d) {
    __shared__ double sd[32];
    i64 r = blockIdx.x;
    const float4* xr = (const float4*)(x + r * d);
    float4* orow = (float4*)(out + r * d);
    int d4 = d >> 2;
    double ss = 0;
    for (int i = threadIdx.x; i < d4; i += blockDim.x) {
        float4 v = xr[i];
        ss += (double)v.x * v.x;
        ss += (double)v.y * v.y;
        ss += (double)v.z * v.z;
        ss += (double)v.w * v.w;
    }
    ss = block_sum_d(ss, sd);
    float inv = (float)(1.0 / sqrt(ss / d + (double)eps));
    for (int i = threadIdx.x; i < d4; i += blockDim.x) {
        float4 v = xr[i];
        float f[4];
#pragma unroll
        for (int k = 0; k < 4; k++) {
            f[k] = load_w(w, 4 * i + k, dt);
            if (add_one) f[k] += 1.f;
        }
        orow[i] = make_float4(v.x * inv * f[0], v.y * inv * f[1], v.z * inv * f[2], v.w * inv * f[3]);
    }
}
