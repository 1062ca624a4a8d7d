// optim.cu: multi-tensor optimizer kernels (one launch for every adapter tensor): the sum of
// squares of the gradients (float64 partials, one per block, summed by the host) and torch's
// AdamW (single-tensor formula, float32), both over a table of tensors.
#include "common.cuh"

#define OPT_CHUNK 4096 // elements per block

// opt_entry describes tensor i of a multi-tensor launch: its pointers (p, m, v may be 0 when the
// kernel does not use them), its element count and the first block that works on it.
struct opt_entry {
    float* p;
    float* g;
    float* m;
    float* v;
    i64 n;
    i64 block0;
};

// find_entry returns the entry whose blocks contain blockIdx.x (entries sorted by block0).
__device__ __forceinline__ int find_entry(const opt_entry* tab, int nt) {
    int lo = 0, hi = nt - 1;
    i64 blk = blockIdx.x;
    while (lo < hi) {
        int mid = (lo + hi + 1) >> 1;
        if (tab[mid].block0 <= blk) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

// multi_sumsq: partial[blockIdx.x] = Σ g² over the block's chunk of its tensor (256 threads).
extern "C" __global__ void multi_sumsq(double* partial, const opt_entry* tab, int nt) {
    __shared__ double sd[32];
    int e = find_entry(tab, nt);
    const float* g = tab[e].g;
    i64 start = (blockIdx.x - tab[e].block0) * (i64)OPT_CHUNK;
    i64 end = min(start + (i64)OPT_CHUNK, tab[e].n);
    double s = 0;
    for (i64 i = start + threadIdx.x; i < end; i += blockDim.x) {
        double x = g[i];
        s += x * x;
    }
    s = block_sum_d(s, sd);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// multi_adamw: one torch.optim.AdamW step (float32) on every element of every tensor, then the
// gradient is zeroed (the accumulator of the next step):
//   g ← g·clip when clip < 1;  p ← p·decay when wd;  m ← m + (1−β1)(g − m);  v ← β2·v + (1−β2)·g²
//   p ← p − step_size · m / (sqrt(v)/bc2_sqrt + eps)
extern "C" __global__ void multi_adamw(const opt_entry* tab, int nt, float clip, float step_size, float bc2_sqrt, float beta1,
                                       float beta2, float eps, float decay, int wd) {
    int e = find_entry(tab, nt);
    opt_entry t = tab[e];
    i64 start = (blockIdx.x - t.block0) * (i64)OPT_CHUNK;
    i64 end = min(start + (i64)OPT_CHUNK, t.n);
    float ob1 = 1.f - beta1, ob2 = 1.f - beta2;
    for (i64 i = start + threadIdx.x; i < end; i += blockDim.x) {
        float g = t.g[i];
        if (clip < 1.f) g *= clip;
        float p = t.p[i];
        if (wd) p *= decay;
        float m = t.m[i];
        m += ob1 * (g - m);
        float v = t.v[i] * beta2 + ob2 * g * g;
        float denom = sqrtf(v) / bc2_sqrt + eps;
        p += -step_size * (m / denom);
        t.p[i] = p;
        t.m[i] = m;
        t.v[i] = v;
        t.g[i] = 0.f;
    }
}
