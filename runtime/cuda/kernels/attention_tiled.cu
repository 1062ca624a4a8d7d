// attention_tiled.cu: tiled causal GQA attention (FlashAttention-2 style, float32 math on the
// CUDA cores): a block keeps a tile of BQ query rows (or BK key rows) in shared memory and streams
// the other operand through it in tiles, so each key/value row is read once per query tile rather
// than once per query row; the forward uses the online softmax. Same visibility rule and shapes as
// attention.cu; HD (head dim) is a compile-time 64 or 128.
//
// Thread layout (256 threads): ty = tid / 16, tx = tid % 16. A thread owns query rows ty + 16·i
// (i < 4) of a 64-row tile, key columns tx + 16·jj (jj < 2) of a 32-key tile, and head dims
// tx + 16·kk (kk < HD/16). Shared rows are padded by one float so column walks hit distinct banks.
#include "common.cuh"

#define BQ 64
#define BK 32
#define NT 256

__device__ __forceinline__ float red16_max(float v) {
    for (int o = 8; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ __forceinline__ float red16_sum(float v) {
    for (int o = 8; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// visible_tj: does query row t (slot q_start + t) see key slot j?
__device__ __forceinline__ bool visible_tj(int t, int j, int T, int ks, int q_start, int kv_len, int window) {
    int qs = q_start + t;
    return t < T && j >= ks && j <= qs && j < kv_len && (window <= 0 || qs - j < window);
}

// load_rows copies rows [r0, r0+n) of a [.., rows, heads, HD] tensor (head hh) into shared memory
// with row stride ld; rows at or past `limit` are zero.
template <int HD>
__device__ __forceinline__ void load_rows(float* dst, int ld, const float* src, int b, int r0, int n, int rows, int heads, int hh, int limit) {
    for (int idx = threadIdx.x; idx < n * HD; idx += NT) {
        int r = idx / HD, d = idx % HD;
        int rr = r0 + r;
        dst[r * ld + d] = rr < limit ? src[(((i64)b * rows + rr) * heads + hh) * HD + d] : 0.f;
    }
}

// Forward: grid (ceil(T/BQ), Hq, B). Shared: Qs[BQ][HD+1], Ks[BK][HD+1], Vs[BK][HD], Ps[BQ][BK+1].
template <int HD>
__device__ void fwd_tile(float* out, float* lse, const float* q, const float* k, const float* v, const int* key_start,
                         int T, int Hq, int S, int Hkv, int q_start, int kv_len, int window, float scale) {
    extern __shared__ float sm[];
    float* Qs = sm;
    float* Ks = Qs + BQ * (HD + 1);
    float* Vs = Ks + BK * (HD + 1);
    float* Ps = Vs + BK * HD;
    const int KK = HD / 16;
    int t0 = blockIdx.x * BQ, h = blockIdx.y, b = blockIdx.z;
    int kh = h / (Hq / Hkv);
    int ty = threadIdx.x >> 4, tx = threadIdx.x & 15;
    int ks = key_start ? key_start[b] : 0;
    load_rows<HD>(Qs, HD + 1, q, b, t0, BQ, T, Hq, h, T);
    float m[4], l[4], o[4][KK];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        m[i] = NEG_INF;
        l[i] = 0.f;
#pragma unroll
        for (int kk = 0; kk < KK; kk++) o[i][kk] = 0.f;
    }
    int tlast = min(t0 + BQ - 1, T - 1);
    int jmin = max(ks, 0);
    if (window > 0) jmin = max(jmin, q_start + t0 - window + 1);
    int jmax = min(q_start + tlast, kv_len - 1);
    for (int j0 = (jmin / BK) * BK; j0 <= jmax; j0 += BK) {
        __syncthreads(); // the previous tile's readers of Ks/Vs/Ps are done; Qs is loaded
        load_rows<HD>(Ks, HD + 1, k, b, j0, BK, S, Hkv, kh, S);
        load_rows<HD>(Vs, HD, v, b, j0, BK, S, Hkv, kh, S);
        __syncthreads();
        float s[4][2];
#pragma unroll
        for (int i = 0; i < 4; i++) s[i][0] = s[i][1] = 0.f;
#pragma unroll 8
        for (int d = 0; d < HD; d++) {
            float k0 = Ks[tx * (HD + 1) + d], k1 = Ks[(tx + 16) * (HD + 1) + d];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                float qv = Qs[(ty + 16 * i) * (HD + 1) + d];
                s[i][0] += qv * k0;
                s[i][1] += qv * k1;
            }
        }
#pragma unroll
        for (int i = 0; i < 4; i++) {
            int t = t0 + ty + 16 * i;
            float mt = NEG_INF;
#pragma unroll
            for (int jj = 0; jj < 2; jj++) {
                int j = j0 + tx + 16 * jj;
                s[i][jj] = visible_tj(t, j, T, ks, q_start, kv_len, window) ? s[i][jj] * scale : NEG_INF;
                mt = fmaxf(mt, s[i][jj]);
            }
            mt = red16_max(mt);
            float mnew = fmaxf(m[i], mt);
            float corr = mnew == NEG_INF ? 1.f : expf(m[i] - mnew);
            float rs = 0.f;
#pragma unroll
            for (int jj = 0; jj < 2; jj++) {
                float p = mnew == NEG_INF ? 0.f : expf(s[i][jj] - mnew);
                Ps[(ty + 16 * i) * (BK + 1) + tx + 16 * jj] = p;
                rs += p;
            }
            rs = red16_sum(rs);
            l[i] = l[i] * corr + rs;
            m[i] = mnew;
#pragma unroll
            for (int kk = 0; kk < KK; kk++) o[i][kk] *= corr;
        }
        __syncthreads();
#pragma unroll 4
        for (int c = 0; c < BK; c++) {
            float pv[4];
#pragma unroll
            for (int i = 0; i < 4; i++) pv[i] = Ps[(ty + 16 * i) * (BK + 1) + c];
#pragma unroll
            for (int kk = 0; kk < KK; kk++) {
                float vv = Vs[c * HD + tx + 16 * kk];
#pragma unroll
                for (int i = 0; i < 4; i++) o[i][kk] += pv[i] * vv;
            }
        }
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int t = t0 + ty + 16 * i;
        if (t >= T) continue;
        i64 row = ((i64)b * T + t) * Hq + h;
        float inv = l[i] > 0.f ? 1.f / l[i] : 0.f;
#pragma unroll
        for (int kk = 0; kk < KK; kk++) out[row * HD + tx + 16 * kk] = o[i][kk] * inv;
        if (lse && tx == 0) lse[((i64)b * Hq + h) * T + t] = l[i] > 0.f ? m[i] + logf(l[i]) : NEG_INF;
    }
}

// p_ds computes, for the thread's 4 query rows × 2 key columns of the current tiles, the
// probabilities P = exp(scale·q·k − lse) (0 where not visible) and dS = scale·P·(dout·v − delta).
template <int HD>
__device__ __forceinline__ void p_ds(float p[4][2], float ds[4][2], const float* Qs, const float* Gs, const float* Ks, const float* Vs,
                                     const float* Ls, const float* Dl, int t0, int j0, int T, int ks, int q_start, int kv_len,
                                     int window, float scale) {
    int ty = threadIdx.x >> 4, tx = threadIdx.x & 15;
    float s[4][2], dp[4][2];
#pragma unroll
    for (int i = 0; i < 4; i++) s[i][0] = s[i][1] = dp[i][0] = dp[i][1] = 0.f;
#pragma unroll 4
    for (int d = 0; d < HD; d++) {
        float k0 = Ks[tx * (HD + 1) + d], k1 = Ks[(tx + 16) * (HD + 1) + d];
        float v0 = Vs[tx * (HD + 1) + d], v1 = Vs[(tx + 16) * (HD + 1) + d];
#pragma unroll
        for (int i = 0; i < 4; i++) {
            float qv = Qs[(ty + 16 * i) * (HD + 1) + d], gv = Gs[(ty + 16 * i) * (HD + 1) + d];
            s[i][0] += qv * k0;
            s[i][1] += qv * k1;
            dp[i][0] += gv * v0;
            dp[i][1] += gv * v1;
        }
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int r = ty + 16 * i;
#pragma unroll
        for (int jj = 0; jj < 2; jj++) {
            int j = j0 + tx + 16 * jj;
            bool vis = visible_tj(t0 + r, j, T, ks, q_start, kv_len, window);
            float pv = vis ? expf(s[i][jj] * scale - Ls[r]) : 0.f;
            p[i][jj] = pv;
            ds[i][jj] = vis ? scale * pv * (dp[i][jj] - Dl[r]) : 0.f;
        }
    }
}

// dK, dV: grid (ceil(S/BK), Hkv, B). For the block's BK key rows, loop over the query heads of the
// group and the query tiles that can see them. Shared: Ks, Vs [BK][HD+1], Qs, Gs [BQ][HD+1],
// Ps, Ds [BQ][BK+1], Ls, Dl [BQ].
template <int HD>
__device__ void dkdv_tile(float* dk, float* dv, const float* dout, const float* q, const float* k, const float* v, const float* lse,
                          const float* delta, const int* key_start, int T, int Hq, int S, int Hkv, int q_start, int kv_len,
                          int window, float scale) {
    extern __shared__ float sm[];
    float* Ks = sm;
    float* Vs = Ks + BK * (HD + 1);
    float* Qs = Vs + BK * (HD + 1);
    float* Gs = Qs + BQ * (HD + 1);
    float* Ps = Gs + BQ * (HD + 1);
    float* Ds = Ps + BQ * (BK + 1);
    float* Ls = Ds + BQ * (BK + 1);
    float* Dl = Ls + BQ;
    const int KK = HD / 16;
    int j0 = blockIdx.x * BK, kh = blockIdx.y, b = blockIdx.z;
    int group = Hq / Hkv;
    int ty = threadIdx.x >> 4, tx = threadIdx.x & 15;
    int ks = key_start ? key_start[b] : 0;
    load_rows<HD>(Ks, HD + 1, k, b, j0, BK, S, Hkv, kh, S);
    load_rows<HD>(Vs, HD + 1, v, b, j0, BK, S, Hkv, kh, S);
    float ak[2][KK], av[2][KK]; // key rows ty + 16·cc, dims tx + 16·kk
#pragma unroll
    for (int cc = 0; cc < 2; cc++)
#pragma unroll
        for (int kk = 0; kk < KK; kk++) ak[cc][kk] = av[cc][kk] = 0.f;
    int tmin = max(0, j0 - q_start);
    int tmax = T - 1;
    if (window > 0) tmax = min(tmax, j0 + BK - 1 - q_start + window - 1);
    for (int hh = kh * group; hh < (kh + 1) * group; hh++) {
        for (int t0 = (tmin / BQ) * BQ; t0 <= tmax; t0 += BQ) {
            __syncthreads();
            load_rows<HD>(Qs, HD + 1, q, b, t0, BQ, T, Hq, hh, T);
            load_rows<HD>(Gs, HD + 1, dout, b, t0, BQ, T, Hq, hh, T);
            for (int r = threadIdx.x; r < BQ; r += NT) {
                int t = t0 + r;
                i64 lr = ((i64)b * Hq + hh) * T + t;
                Ls[r] = t < T ? lse[lr] : 0.f;
                Dl[r] = t < T ? delta[lr] : 0.f;
            }
            __syncthreads();
            float p[4][2], ds[4][2];
            p_ds<HD>(p, ds, Qs, Gs, Ks, Vs, Ls, Dl, t0, j0, T, ks, q_start, kv_len, window, scale);
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int jj = 0; jj < 2; jj++) {
                    Ps[(ty + 16 * i) * (BK + 1) + tx + 16 * jj] = p[i][jj];
                    Ds[(ty + 16 * i) * (BK + 1) + tx + 16 * jj] = ds[i][jj];
                }
            __syncthreads();
#pragma unroll 4
            for (int r = 0; r < BQ; r++) {
                float pc[2], dc[2];
#pragma unroll
                for (int cc = 0; cc < 2; cc++) {
                    pc[cc] = Ps[r * (BK + 1) + ty + 16 * cc];
                    dc[cc] = Ds[r * (BK + 1) + ty + 16 * cc];
                }
#pragma unroll
                for (int kk = 0; kk < KK; kk++) {
                    float g = Gs[r * (HD + 1) + tx + 16 * kk], qv = Qs[r * (HD + 1) + tx + 16 * kk];
#pragma unroll
                    for (int cc = 0; cc < 2; cc++) {
                        av[cc][kk] += pc[cc] * g;
                        ak[cc][kk] += dc[cc] * qv;
                    }
                }
            }
        }
    }
#pragma unroll
    for (int cc = 0; cc < 2; cc++) {
        int j = j0 + ty + 16 * cc;
        if (j >= S) continue;
        i64 off = (((i64)b * S + j) * Hkv + kh) * HD;
#pragma unroll
        for (int kk = 0; kk < KK; kk++) {
            dk[off + tx + 16 * kk] = ak[cc][kk];
            dv[off + tx + 16 * kk] = av[cc][kk];
        }
    }
}

// dQ: grid (ceil(T/BQ), Hq, B); loops over the key tiles the query tile can see. Shared as dkdv.
template <int HD>
__device__ void dq_tile(float* dq, const float* dout, const float* q, const float* k, const float* v, const float* lse,
                        const float* delta, const int* key_start, int T, int Hq, int S, int Hkv, int q_start, int kv_len,
                        int window, float scale) {
    extern __shared__ float sm[];
    float* Ks = sm;
    float* Vs = Ks + BK * (HD + 1);
    float* Qs = Vs + BK * (HD + 1);
    float* Gs = Qs + BQ * (HD + 1);
    float* Ds = Gs + BQ * (HD + 1);
    float* Ls = Ds + BQ * (BK + 1);
    float* Dl = Ls + BQ;
    const int KK = HD / 16;
    int t0 = blockIdx.x * BQ, h = blockIdx.y, b = blockIdx.z;
    int kh = h / (Hq / Hkv);
    int ty = threadIdx.x >> 4, tx = threadIdx.x & 15;
    int ks = key_start ? key_start[b] : 0;
    load_rows<HD>(Qs, HD + 1, q, b, t0, BQ, T, Hq, h, T);
    load_rows<HD>(Gs, HD + 1, dout, b, t0, BQ, T, Hq, h, T);
    for (int r = threadIdx.x; r < BQ; r += NT) {
        int t = t0 + r;
        i64 lr = ((i64)b * Hq + h) * T + t;
        Ls[r] = t < T ? lse[lr] : 0.f;
        Dl[r] = t < T ? delta[lr] : 0.f;
    }
    float acc[4][KK];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int kk = 0; kk < KK; kk++) acc[i][kk] = 0.f;
    int tlast = min(t0 + BQ - 1, T - 1);
    int jmin = max(ks, 0);
    if (window > 0) jmin = max(jmin, q_start + t0 - window + 1);
    int jmax = min(q_start + tlast, kv_len - 1);
    for (int j0 = (jmin / BK) * BK; j0 <= jmax; j0 += BK) {
        __syncthreads();
        load_rows<HD>(Ks, HD + 1, k, b, j0, BK, S, Hkv, kh, S);
        load_rows<HD>(Vs, HD + 1, v, b, j0, BK, S, Hkv, kh, S);
        __syncthreads();
        float p[4][2], ds[4][2];
        p_ds<HD>(p, ds, Qs, Gs, Ks, Vs, Ls, Dl, t0, j0, T, ks, q_start, kv_len, window, scale);
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int jj = 0; jj < 2; jj++) Ds[(ty + 16 * i) * (BK + 1) + tx + 16 * jj] = ds[i][jj];
        __syncthreads();
#pragma unroll 4
        for (int c = 0; c < BK; c++) {
            float dc[4];
#pragma unroll
            for (int i = 0; i < 4; i++) dc[i] = Ds[(ty + 16 * i) * (BK + 1) + c];
#pragma unroll
            for (int kk = 0; kk < KK; kk++) {
                float kv = Ks[c * (HD + 1) + tx + 16 * kk];
#pragma unroll
                for (int i = 0; i < 4; i++) acc[i][kk] += dc[i] * kv;
            }
        }
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int t = t0 + ty + 16 * i;
        if (t >= T) continue;
        i64 row = ((i64)b * T + t) * Hq + h;
#pragma unroll
        for (int kk = 0; kk < KK; kk++) dq[row * HD + tx + 16 * kk] = acc[i][kk];
    }
}

#define FWD_ARGS float *out, float *lse, const float *q, const float *k, const float *v, const int *key_start, int T, int Hq, int S, int Hkv, int q_start, int kv_len, int window, float scale
#define FWD_PASS out, lse, q, k, v, key_start, T, Hq, S, Hkv, q_start, kv_len, window, scale
#define BWD_ARGS const float *dout, const float *q, const float *k, const float *v, const float *lse, const float *delta, const int *key_start, int T, int Hq, int S, int Hkv, int q_start, int kv_len, int window, float scale
#define BWD_PASS dout, q, k, v, lse, delta, key_start, T, Hq, S, Hkv, q_start, kv_len, window, scale

extern "C" __global__ __launch_bounds__(NT) void attn_fwd_t64(FWD_ARGS) { fwd_tile<64>(FWD_PASS); }
extern "C" __global__ __launch_bounds__(NT) void attn_fwd_t128(FWD_ARGS) { fwd_tile<128>(FWD_PASS); }
extern "C" __global__ __launch_bounds__(NT) void attn_dkdv_t64(float* dk, float* dv, BWD_ARGS) { dkdv_tile<64>(dk, dv, BWD_PASS); }
extern "C" __global__ __launch_bounds__(NT) void attn_dkdv_t128(float* dk, float* dv, BWD_ARGS) { dkdv_tile<128>(dk, dv, BWD_PASS); }
extern "C" __global__ __launch_bounds__(NT) void attn_dq_t64(float* dq, BWD_ARGS) { dq_tile<64>(dq, BWD_PASS); }
extern "C" __global__ __launch_bounds__(NT) void attn_dq_t128(float* dq, BWD_ARGS) { dq_tile<128>(dq, BWD_PASS); }
