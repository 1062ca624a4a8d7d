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
