// loss.cu: softmax, cross-entropy (forward and backward), argmax and the embedding gather.
#include "common.cuh"

// softmax: out[r] = softmax(x[r]) for rows of length v; out may be x.
extern "C" __global__ void softmax(float* out, const float* x, int v) {
    __shared__ float sc[32];
    i64 r = blockIdx.x;
    const float* xr = x + r * v;
    float* orow = out + r * v;
    float mx = NEG_INF;
    for (int i = threadIdx.x; i < v; i += blockDim.x) mx = fmaxf(mx, xr[i]);
    mx = block_max(mx, sc);
    float z = 0;
    for (int i = threadIdx.x; i < v; i += blockDim.x) z += expf(xr[i] - mx);
    z = block_sum(z, sc);
    float iz = 1.f / z;
    for (int i = threadIdx.x; i < v; i += blockDim.x) orow[i] = expf(xr[i] - mx) * iz;
}

// cross_entropy: loss[r] = logsumexp(logits[r]) − logits[r, label[r]]; label −100 gives 0; a label
// outside [0, v) sets *bad = 1.
extern "C" __global__ void cross_entropy(float* loss, const float* logits, const int* labels, int* bad, int v) {
    __shared__ float sc[32];
    i64 r = blockIdx.x;
    int l = labels[r];
    if (l == -100) {
        if (threadIdx.x == 0) loss[r] = 0.f;
        return;
    }
    if (l < 0 || l >= v) {
        if (threadIdx.x == 0) *bad = 1;
        return;
    }
    const float* xr = logits + r * v;
    float mx = NEG_INF;
    for (int i = threadIdx.x; i < v; i += blockDim.x) mx = fmaxf(mx, xr[i]);
    mx = block_max(mx, sc);
    float z = 0;
    for (int i = threadIdx.x; i < v; i += blockDim.x) z += expf(xr[i] - mx);
    z = block_sum(z, sc);
    if (threadIdx.x == 0) loss[r] = mx + logf(z) - xr[l];
}

// cross_entropy_bwd: d[r] = scale·(softmax(logits[r]) − onehot(label[r])); zeros for label −100.
// d may alias logits.
extern "C" __global__ void cross_entropy_bwd(float* d, const float* logits, const int* labels, int* bad, float scale, int v) {
    __shared__ float sc[32];
    i64 r = blockIdx.x;
    int l = labels[r];
    float* dr = d + r * v;
    if (l == -100) {
        for (int i = threadIdx.x; i < v; i += blockDim.x) dr[i] = 0.f;
        return;
    }
    if (l < 0 || l >= v) {
        if (threadIdx.x == 0) *bad = 1;
        return;
    }
    const float* xr = logits + r * v;
    float mx = NEG_INF;
    for (int i = threadIdx.x; i < v; i += blockDim.x) mx = fmaxf(mx, xr[i]);
    mx = block_max(mx, sc);
    float z = 0;
    for (int i = threadIdx.x; i < v; i += blockDim.x) z += expf(xr[i] - mx);
    z = block_sum(z, sc);
    float iz = scale / z;
    for (int i = threadIdx.x; i < v; i += blockDim.x) {
        float p = expf(xr[i] - mx) * iz;
        dr[i] = i == l ? p - scale : p;
    }
}

// argmax: out[r] = the first index of the largest value of row r.
extern "C" __global__ void argmax(int* out, const float* x, int v) {
    __shared__ float sv[32];
    __shared__ int si[32];
    i64 r = blockIdx.x;
    const float* xr = x + r * v;
    float best = NEG_INF;
    int bi = 0x7fffffff;
    if ((v & 3) == 0 && ((size_t)xr & 15) == 0) { // float4s, several loads in flight (the rule below is order-free)
        const float4* x4 = (const float4*)xr;
#pragma unroll 4
        for (int i = threadIdx.x; i < (v >> 2); i += blockDim.x) {
            float4 a = x4[i];
            float e[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
            for (int u = 0; u < 4; u++)
                if (e[u] > best || (e[u] == best && 4 * i + u < bi)) { best = e[u]; bi = 4 * i + u; }
        }
    } else {
        for (int i = threadIdx.x; i < v; i += blockDim.x) {
            float a = xr[i];
            if (a > best || (a == best && i < bi)) { best = a; bi = i; }
        }
    }
    for (int o = 16; o > 0; o >>= 1) {
        float ob = __shfl_xor_sync(0xffffffffu, best, o);
        int oi = __shfl_xor_sync(0xffffffffu, bi, o);
        if (ob > best || (ob == best && oi < bi)) { best = ob; bi = oi; }
    }
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (lane == 0) { sv[w] = best; si[w] = bi; }
    __syncthreads();
    if (w == 0) {
        best = lane < nw ? sv[lane] : NEG_INF;
        bi = lane < nw ? si[lane] : 0x7fffffff;
        for (int o = 16; o > 0; o >>= 1) {
            float ob = __shfl_xor_sync(0xffffffffu, best, o);
            int oi = __shfl_xor_sync(0xffffffffu, bi, o);
            if (ob > best || (ob == best && oi < bi)) { best = ob; bi = oi; }
        }
        if (lane == 0) out[r] = bi == 0x7fffffff ? 0 : bi;
    }
}

// embedding: out[r, :] = table[ids[r], :] widened to F32; an id outside [0, V) sets *bad = 1.
extern "C" __global__ void embedding(float* out, const void* table, int dt, const int* ids, int* bad, i64 n, int d, int V) {
    i64 total = n * d;
    FOR_EACH(i, total) {
        i64 r = i / d;
        int c = (int)(i % d);
        int id = ids[r];
        if (id < 0 || id >= V) {
            *bad = 1;
            continue;
        }
        out[i] = load_w(table, (i64)id * d + c, dt);
    }
}
