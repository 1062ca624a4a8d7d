// attention.cu: causal grouped-query attention with left padding and a sliding window (the
// visibility rule of tensor.AttentionParams), forward and backward. Straightforward and exact
// (float32, scores of one query row in shared memory); a flash-style tiled version comes later.
//
// Shapes: q, out, dq, dout [B, T, Hq, D]; k, v, dk, dv [B, S, Hkv, D]; lse, delta [B, Hq, T].
// Query row t of sequence b sits at slot qs = q_start + t and sees key slot j when
// key_start[b] ≤ j ≤ qs, j < kv_len and (window == 0 or qs − j < window).
#include "common.cuh"

#define MAX_D 256

__device__ __forceinline__ void visible(const int* key_start, int b, int qs, int kv_len, int window, int* lo, int* hi) {
    int l = key_start ? key_start[b] : 0;
    if (window > 0) l = max(l, qs - window + 1);
    *lo = l;
    *hi = min(qs, kv_len - 1); // inclusive
}

// scores fills sc[j − lo] = scale·q·k_j for the visible j (q in shared memory) and returns the
// row maximum (all threads). red is 32 floats of shared scratch.
__device__ float scores(float* sc, const float* qsh, const float* k, int b, int kh, int S, int Hkv, int D, int lo, int hi, float scale, float* red) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    float mx = NEG_INF;
    for (int j = lo + warp; j <= hi; j += nw) {
        const float* kr = k + (((i64)b * S + j) * Hkv + kh) * D;
        float s = 0;
        for (int i = lane; i < D; i += 32) s += qsh[i] * kr[i];
        s = warp_sum(s) * scale;
        if (lane == 0) sc[j - lo] = s;
        mx = fmaxf(mx, s);
    }
    return block_max(mx, red);
}

// attn_fwd: grid (T, Hq, B), dynamic shared (D + S) floats.
extern "C" __global__ void attn_fwd(float* out, float* lse, const float* q, const float* k, const float* v, const int* key_start,
                                    int T, int Hq, int S, int Hkv, int D, int q_start, int kv_len, int window, float scale) {
    extern __shared__ float sm[];
    __shared__ float red[32];
    int t = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    int kh = h / (Hq / Hkv);
    int lo, hi;
    visible(key_start, b, q_start + t, kv_len, window, &lo, &hi);
    i64 row = ((i64)b * T + t) * Hq + h;
    float* orow = out + row * D;
    i64 lrow = ((i64)b * Hq + h) * T + t;
    if (lo > hi) {
        for (int i = threadIdx.x; i < D; i += blockDim.x) orow[i] = 0.f;
        if (lse && threadIdx.x == 0) lse[lrow] = NEG_INF;
        return;
    }
    float* qsh = sm;
    float* sc = sm + D;
    for (int i = threadIdx.x; i < D; i += blockDim.x) qsh[i] = q[row * D + i];
    __syncthreads();
    float mx = scores(sc, qsh, k, b, kh, S, Hkv, D, lo, hi, scale, red);
    float z = 0;
    for (int j = lo + threadIdx.x; j <= hi; j += blockDim.x) {
        float e = expf(sc[j - lo] - mx);
        sc[j - lo] = e;
        z += e;
    }
    z = block_sum(z, red);
    float iz = 1.f / z;
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        float acc = 0;
        for (int j = lo; j <= hi; j++) acc += sc[j - lo] * v[(((i64)b * S + j) * Hkv + kh) * D + i];
        orow[i] = acc * iz;
    }
    if (lse && threadIdx.x == 0) lse[lrow] = mx + logf(z);
}

// attn_bwd_prep: delta = Σ dout⊙out per query row, and lse (recomputed unless have_lse). Grid
// (T, Hq, B), dynamic shared (D + S) floats.
extern "C" __global__ void attn_bwd_prep(float* lse, float* delta, const float* dout, const float* out, const float* q, const float* k,
                                         const int* key_start, int have_lse, int T, int Hq, int S, int Hkv, int D, int q_start,
                                         int kv_len, int window, float scale) {
    extern __shared__ float sm[];
    __shared__ float red[32];
    int t = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    int kh = h / (Hq / Hkv);
    i64 row = ((i64)b * T + t) * Hq + h;
    i64 lrow = ((i64)b * Hq + h) * T + t;
    float d = 0;
    for (int i = threadIdx.x; i < D; i += blockDim.x) d += dout[row * D + i] * out[row * D + i];
    d = block_sum(d, red);
    if (threadIdx.x == 0) delta[lrow] = d;
    if (have_lse) return;
    int lo, hi;
    visible(key_start, b, q_start + t, kv_len, window, &lo, &hi);
    if (lo > hi) {
        if (threadIdx.x == 0) lse[lrow] = NEG_INF;
        return;
    }
    float* qsh = sm;
    float* sc = sm + D;
    for (int i = threadIdx.x; i < D; i += blockDim.x) qsh[i] = q[row * D + i];
    __syncthreads();
    float mx = scores(sc, qsh, k, b, kh, S, Hkv, D, lo, hi, scale, red);
    float z = 0;
    for (int j = lo + threadIdx.x; j <= hi; j += blockDim.x) z += expf(sc[j - lo] - mx);
    z = block_sum(z, red);
    if (threadIdx.x == 0) lse[lrow] = mx + logf(z);
}

// attn_bwd_dq: dq_t = Σ_j dS_tj·k_j with p = exp(scale·q·k_j − lse), dS = scale·p·(dout·v_j − delta).
// Grid (T, Hq, B), dynamic shared (2D + S) floats.
extern "C" __global__ void attn_bwd_dq(float* dq, const float* dout, const float* q, const float* k, const float* v,
                                       const float* lse, const float* delta, const int* key_start, int T, int Hq, int S, int Hkv,
                                       int D, int q_start, int kv_len, int window, float scale) {
    extern __shared__ float sm[];
    int t = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    int kh = h / (Hq / Hkv);
    i64 row = ((i64)b * T + t) * Hq + h;
    i64 lrow = ((i64)b * Hq + h) * T + t;
    int lo, hi;
    visible(key_start, b, q_start + t, kv_len, window, &lo, &hi);
    float* dqr = dq + row * D;
    if (lo > hi) {
        for (int i = threadIdx.x; i < D; i += blockDim.x) dqr[i] = 0.f;
        return;
    }
    float* qsh = sm;
    float* gsh = sm + D;
    float* ds = sm + 2 * D;
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        qsh[i] = q[row * D + i];
        gsh[i] = dout[row * D + i];
    }
    __syncthreads();
    float l = lse[lrow], dl = delta[lrow];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int j = lo + warp; j <= hi; j += nw) {
        i64 off = (((i64)b * S + j) * Hkv + kh) * D;
        float s = 0, dp = 0;
        for (int i = lane; i < D; i += 32) {
            s += qsh[i] * k[off + i];
            dp += gsh[i] * v[off + i];
        }
        s = warp_sum(s);
        dp = warp_sum(dp);
        float p = expf(s * scale - l);
        if (lane == 0) ds[j - lo] = scale * p * (dp - dl);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        float acc = 0;
        for (int j = lo; j <= hi; j++) acc += ds[j - lo] * k[(((i64)b * S + j) * Hkv + kh) * D + i];
        dqr[i] = acc;
    }
}

// attn_bwd_dkdv: for key slot j of kv head kh, dk_j = Σ dS_tj·q_t and dv_j = Σ p_tj·dout_t over the
// query heads of the group and the query rows that see j. Grid (S, Hkv, B); each warp takes some
// (head, row) pairs and keeps its partial sums in registers (D ≤ 256); dynamic shared (2D + nw·2D) floats.
extern "C" __global__ void attn_bwd_dkdv(float* dk, float* dv, const float* dout, const float* q, const float* k, const float* v,
                                         const float* lse, const float* delta, const int* key_start, int T, int Hq, int S,
                                         int Hkv, int D, int q_start, int kv_len, int window, float scale) {
    extern __shared__ float sm[];
    int j = blockIdx.x, kh = blockIdx.y, b = blockIdx.z;
    int group = Hq / Hkv;
    i64 off = (((i64)b * S + j) * Hkv + kh) * D;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    int ks = key_start ? key_start[b] : 0;
    int tlo = max(0, j - q_start);
    int thi = T - 1;
    if (window > 0) thi = min(thi, j - q_start + window - 1);
    if (j < ks || j >= kv_len || tlo > thi) {
        for (int i = threadIdx.x; i < D; i += blockDim.x) {
            dk[off + i] = 0.f;
            dv[off + i] = 0.f;
        }
        return;
    }
    float* ksh = sm;
    float* vsh = sm + D;
    float* part = sm + 2 * D;
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        ksh[i] = k[off + i];
        vsh[i] = v[off + i];
    }
    __syncthreads();
    float dka[MAX_D / 32], dva[MAX_D / 32];
#pragma unroll
    for (int u = 0; u < MAX_D / 32; u++) dka[u] = dva[u] = 0.f;
    int nt = thi - tlo + 1;
    for (int w = warp; w < group * nt; w += nw) {
        int h = kh * group + w / nt;
        int t = tlo + w % nt;
        i64 row = ((i64)b * T + t) * Hq + h;
        i64 lrow = ((i64)b * Hq + h) * T + t;
        const float* qr = q + row * D;
        const float* gr = dout + row * D;
        float s = 0, dp = 0;
        for (int i = lane; i < D; i += 32) {
            s += qr[i] * ksh[i];
            dp += gr[i] * vsh[i];
        }
        s = warp_sum(s);
        dp = warp_sum(dp);
        float p = expf(s * scale - lse[lrow]);
        float dsv = scale * p * (dp - delta[lrow]);
#pragma unroll
        for (int u = 0; u < MAX_D / 32; u++) {
            int i = lane + 32 * u;
            if (i < D) {
                dka[u] += dsv * qr[i];
                dva[u] += p * gr[i];
            }
        }
    }
#pragma unroll
    for (int u = 0; u < MAX_D / 32; u++) {
        int i = lane + 32 * u;
        if (i < D) {
            part[(warp * 2) * D + i] = dka[u];
            part[(warp * 2 + 1) * D + i] = dva[u];
        }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        float a = 0, c = 0;
        for (int w = 0; w < nw; w++) {
            a += part[(w * 2) * D + i];
            c += part[(w * 2 + 1) * D + i];
        }
        dk[off + i] = a;
        dv[off + i] = c;
    }
}

// attn_decode: attn_fwd for one query row per sequence (T == 1: decode), D ≤ 128 and D % 4 == 0,
// q, k, v, out 16-byte aligned. Grid (Hq, B), AD_WARPS·32 threads, dynamic shared kv_len floats.
// A warp takes every AD_WARPS-th visible key, four keys' loads issued before their sums: its lanes
// hold float4s of q and of the key row (coalesced), a warp sum gives the score; after the softmax
// each warp accumulates p·v over its keys in float4s (four loads ahead) and the partial rows add up
// in shared memory. Float32 throughout, like attn_fwd.
#define AD_WARPS 8
extern "C" __global__ void attn_decode(float* out, float* lse, const float* q, const float* k, const float* v, const int* key_start,
                                       int Hq, int S, int Hkv, int D, int q_start, int kv_len, int window, float scale) {
    extern __shared__ float sc[];
    __shared__ float red[32];
    __shared__ float4 part[AD_WARPS][32];
    grid_dep_wait(); // launched as a dependent (Backend.Attention): q, k and v are the previous kernels'
    grid_dep_launch();
    int h = blockIdx.x, b = blockIdx.y;
    int kh = h / (Hq / Hkv);
    int lo, hi;
    visible(key_start, b, q_start, kv_len, window, &lo, &hi);
    i64 row = (i64)b * Hq + h; // T == 1: out row and lse index
    float* orow = out + row * D;
    if (lo > hi) {
        for (int i = threadIdx.x; i < D; i += blockDim.x) orow[i] = 0.f;
        if (lse && threadIdx.x == 0) lse[row] = NEG_INF;
        return;
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, dv = D >> 2;
    bool on = lane < dv;
    const float4 zero = make_float4(0.f, 0.f, 0.f, 0.f);
    float4 qv = on ? ((const float4*)(q + row * D))[lane] : zero;
    const float4* kb = (const float4*)(k + ((i64)b * S * Hkv + kh) * D) + lane; // key j: kb[j·Hkv·D/4]
    const float4* vb = (const float4*)(v + ((i64)b * S * Hkv + kh) * D) + lane;
    i64 js = (i64)Hkv * dv; // float4s from one key slot to the next
    float mx = NEG_INF;
    for (int j0 = lo + warp; j0 <= hi; j0 += 4 * AD_WARPS) {
        float4 kv[4];
#pragma unroll
        for (int u = 0; u < 4; u++) {
            int j = j0 + u * AD_WARPS;
            kv[u] = on && j <= hi ? kb[j * js] : zero;
        }
#pragma unroll
        for (int u = 0; u < 4; u++) {
            int j = j0 + u * AD_WARPS;
            if (j > hi) break; // warp-uniform
            float s = warp_sum(qv.x * kv[u].x + qv.y * kv[u].y + qv.z * kv[u].z + qv.w * kv[u].w) * scale;
            if (lane == 0) sc[j - lo] = s;
            mx = fmaxf(mx, s);
        }
    }
    mx = block_max(mx, red);
    float z = 0;
    for (int j = lo + threadIdx.x; j <= hi; j += blockDim.x) {
        float e = expf(sc[j - lo] - mx);
        sc[j - lo] = e;
        z += e;
    }
    z = block_sum(z, red);
    float4 acc = zero;
    for (int j0 = lo + warp; j0 <= hi; j0 += 4 * AD_WARPS) {
        float4 vv[4];
#pragma unroll
        for (int u = 0; u < 4; u++) {
            int j = j0 + u * AD_WARPS;
            vv[u] = on && j <= hi ? vb[j * js] : zero;
        }
#pragma unroll
        for (int u = 0; u < 4; u++) {
            int j = j0 + u * AD_WARPS;
            if (j > hi) break;
            float p = sc[j - lo];
            acc.x += p * vv[u].x;
            acc.y += p * vv[u].y;
            acc.z += p * vv[u].z;
            acc.w += p * vv[u].w;
        }
    }
    part[warp][lane] = acc;
    __syncthreads();
    if (warp == 0 && on) {
        float iz = 1.f / z;
        float4 r = part[0][lane];
#pragma unroll
        for (int w = 1; w < AD_WARPS; w++) {
            float4 o = part[w][lane];
            r.x += o.x;
            r.y += o.y;
            r.z += o.z;
            r.w += o.w;
        }
        ((float4*)orow)[lane] = make_float4(r.x * iz, r.y * iz, r.z * iz, r.w * iz);
    }
    if (lse && threadIdx.x == 0) lse[row] = mx + logf(z);
}
