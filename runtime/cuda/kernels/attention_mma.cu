// attention_mma.cu: causal GQA attention on the tensor cores (FlashAttention-2 layout), forward and
// backward, for head dims 64 and 128. Same shapes and visibility rule as attention.cu and
// attention_tiled.cu (which stay as the float32 reference and for other head dims).
//
// Precision: q, k, v, dout (F32 in memory) are rounded to bf16 when a tile is staged in shared
// memory; the products run as mma.sync m16n8k16 bf16 with float32 accumulation; the softmax (max,
// exp, sums, log-sum-exp) and dS = P⊙(dP − delta) are float32, rounded to bf16 only as the A operand
// of the next product (P·V, Pᵀ·dO, dSᵀ·Q, dS·K). Outputs (out, lse, dq, dk, dv) are F32.
//
// Layout: 4 warps per block; each warp owns 16 rows of the block's tile (query rows in the forward
// and dQ, key rows in dK/dV). Tiles are bf16, row-major [rows][HD + 8] in shared memory (the pad of
// 16 bytes puts the 8 rows a quad-group reads in distinct banks). mma fragments of an operand used
// as "Bᵀ" (keys for S = Q·Kᵀ) are read with plain 32-bit loads; operands used untransposed as B
// (V in P·V, dO and Q in the dK/dV products, K in dS·K) are read with ldmatrix.trans.
#include "common.cuh"

#define MW 4
#define MT (MW * 32)

// pack_bf16 rounds two floats to bf16 (nearest even) and packs them, lo in the low half.
__device__ __forceinline__ u32 pack_bf16(float lo, float hi) {
    u32 r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

__device__ __forceinline__ u32 smem_addr(const void* p) {
    u32 r;
    asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(r) : "l"(p));
    return r;
}

// mma16816: c += a·b for a 16x16 bf16 A (row), a 16x8 bf16 B (col), float32 c.
__device__ __forceinline__ void mma16816(float c[4], const u32 a[4], const u32 b[2]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// frag_a loads the A fragment of rows r0..r0+15, columns k0..k0+15 of a row-major bf16 tile.
__device__ __forceinline__ void frag_a(u32 a[4], const u16* s, int ld, int r0, int k0) {
    int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const u16* p = s + (r0 + g) * ld + k0 + 2 * t;
    a[0] = *(const u32*)p;
    a[1] = *(const u32*)(p + 8 * ld);
    a[2] = *(const u32*)(p + 8);
    a[3] = *(const u32*)(p + 8 * ld + 8);
}

// frag_b loads the B fragment (k0..k0+15 × n0..n0+7) of B = Mᵀ where M is a row-major bf16 tile
// [n][k]: B(k, n) = M[n][k].
__device__ __forceinline__ void frag_b(u32 b[2], const u16* s, int ld, int n0, int k0) {
    int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const u16* p = s + (n0 + g) * ld + k0 + 2 * t;
    b[0] = *(const u32*)p;
    b[1] = *(const u32*)(p + 8);
}

// frag_b2t loads the B fragments of two column tiles (n0 and n0+8; k0..k0+15) of B = M, a row-major
// bf16 tile [k][n], with ldmatrix.x4.trans.
__device__ __forceinline__ void frag_b2t(u32 b0[2], u32 b1[2], const u16* s, int ld, int k0, int n0) {
    int lane = threadIdx.x & 31;
    int row = k0 + (lane & 7) + ((lane >> 3) & 1) * 8;
    int col = n0 + (lane >> 4) * 8;
    u32 addr = smem_addr(s + row * ld + col);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(b0[0]), "=r"(b0[1]), "=r"(b1[0]), "=r"(b1[1])
                 : "r"(addr)
                 : "memory");
}

// c_to_a turns two adjacent accumulator tiles (columns 8c..8c+7 and 8c+8..8c+15 of a 16-row
// result) into the bf16 A fragment of those 16 columns.
__device__ __forceinline__ void c_to_a(u32 a[4], const float c0[4], const float c1[4]) {
    a[0] = pack_bf16(c0[0], c0[1]);
    a[1] = pack_bf16(c0[2], c0[3]);
    a[2] = pack_bf16(c1[0], c1[1]);
    a[3] = pack_bf16(c1[2], c1[3]);
}

__device__ __forceinline__ float quad_max(float v) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}

__device__ __forceinline__ float quad_sum(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// vis: does query row t (slot q_start + t) see key slot j?
__device__ __forceinline__ bool vis(int t, int j, int T, int ks, int q_start, int kv_len, int window) {
    int qs = q_start + t;
    return t < T && j >= ks && j <= qs && j < kv_len && (window <= 0 || qs - j < window);
}

// stage copies rows [r0, r0+n) of a F32 [.., rows, heads, HD] tensor (head hh) into a bf16 tile
// [n][HD+8]; rows at or past `limit` are zero (never read memory nothing wrote).
template <int HD>
__device__ __forceinline__ void stage(u16* dst, const float* src, int b, int r0, int n, int rows, int heads, int hh, int limit) {
    const int V = HD / 4, LD = HD + 8;
    for (int idx = threadIdx.x; idx < n * V; idx += MT) {
        int r = idx / V, d = (idx % V) * 4;
        int rr = r0 + r;
        float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
        if (rr < limit) x = *(const float4*)(src + (((i64)b * rows + rr) * heads + hh) * HD + d);
        u32* p = (u32*)(dst + r * LD + d);
        p[0] = pack_bf16(x.x, x.y);
        p[1] = pack_bf16(x.z, x.w);
    }
}

// Forward: grid (ceil(T/64), Hq, B), 128 threads, dynamic shared 3·64·(HD+8) bf16 (Q, K, V tiles).
template <int HD>
__device__ void fwd_mma(float* out, float* lse, const float* q, const float* k, const float* v, const int* key_start, int T, int Hq,
                        int S, int Hkv, int q_start, int kv_len, int window, float scale) {
    extern __shared__ __align__(16) unsigned char smraw[];
    const int LD = HD + 8, NO = HD / 8;
    u16* Qs = (u16*)smraw;
    u16* Ks = Qs + 64 * LD;
    u16* Vs = Ks + 64 * LD;
    int t0 = blockIdx.x * 64, h = blockIdx.y, b = blockIdx.z;
    int kh = h / (Hq / Hkv);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tq = lane & 3;
    int ks = key_start ? key_start[b] : 0;
    stage<HD>(Qs, q, b, t0, 64, T, Hq, h, T);
    int r0 = t0 + warp * 16 + g, r1 = r0 + 8;
    float o[NO][4];
#pragma unroll
    for (int n = 0; n < NO; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
    float m0 = NEG_INF, m1 = NEG_INF, l0 = 0.f, l1 = 0.f;
    int tlast = min(t0 + 63, T - 1);
    int jmin = max(ks, 0);
    if (window > 0) jmin = max(jmin, q_start + t0 - window + 1);
    int jmax = min(q_start + tlast, kv_len - 1);
    for (int j0 = (jmin / 64) * 64; j0 <= jmax; j0 += 64) {
        __syncthreads();
        stage<HD>(Ks, k, b, j0, 64, S, Hkv, kh, kv_len);
        stage<HD>(Vs, v, b, j0, 64, S, Hkv, kh, kv_len);
        __syncthreads();
        float s[8][4];
#pragma unroll
        for (int n = 0; n < 8; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
        for (int kc = 0; kc < HD / 16; kc++) {
            u32 a[4];
            frag_a(a, Qs, LD, warp * 16, kc * 16);
#pragma unroll
            for (int n = 0; n < 8; n++) {
                u32 bb[2];
                frag_b(bb, Ks, LD, n * 8, kc * 16);
                mma16816(s[n], a, bb);
            }
        }
        float mx0 = NEG_INF, mx1 = NEG_INF;
#pragma unroll
        for (int n = 0; n < 8; n++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int j = j0 + n * 8 + 2 * tq + e;
                s[n][e] = vis(r0, j, T, ks, q_start, kv_len, window) ? s[n][e] * scale : NEG_INF;
                s[n][2 + e] = vis(r1, j, T, ks, q_start, kv_len, window) ? s[n][2 + e] * scale : NEG_INF;
                mx0 = fmaxf(mx0, s[n][e]);
                mx1 = fmaxf(mx1, s[n][2 + e]);
            }
        mx0 = quad_max(mx0);
        mx1 = quad_max(mx1);
        float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
        float c0 = mn0 == NEG_INF ? 1.f : __expf(m0 - mn0), c1 = mn1 == NEG_INF ? 1.f : __expf(m1 - mn1);
        float rs0 = 0.f, rs1 = 0.f;
#pragma unroll
        for (int n = 0; n < 8; n++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                float p0 = mn0 == NEG_INF ? 0.f : __expf(s[n][e] - mn0);
                float p1 = mn1 == NEG_INF ? 0.f : __expf(s[n][2 + e] - mn1);
                s[n][e] = p0;
                s[n][2 + e] = p1;
                rs0 += p0;
                rs1 += p1;
            }
        l0 = l0 * c0 + quad_sum(rs0);
        l1 = l1 * c1 + quad_sum(rs1);
        m0 = mn0;
        m1 = mn1;
#pragma unroll
        for (int n = 0; n < NO; n++) {
            o[n][0] *= c0;
            o[n][1] *= c0;
            o[n][2] *= c1;
            o[n][3] *= c1;
        }
#pragma unroll
        for (int kc = 0; kc < 4; kc++) {
            u32 a[4];
            c_to_a(a, s[2 * kc], s[2 * kc + 1]);
#pragma unroll
            for (int n2 = 0; n2 < NO / 2; n2++) {
                u32 b0[2], b1[2];
                frag_b2t(b0, b1, Vs, LD, kc * 16, n2 * 16);
                mma16816(o[2 * n2], a, b0);
                mma16816(o[2 * n2 + 1], a, b1);
            }
        }
    }
    float i0 = l0 > 0.f ? 1.f / l0 : 0.f, i1 = l1 > 0.f ? 1.f / l1 : 0.f;
    if (r0 < T) {
        float* op = out + (((i64)b * T + r0) * Hq + h) * HD + 2 * tq;
#pragma unroll
        for (int n = 0; n < NO; n++) *(float2*)(op + n * 8) = make_float2(o[n][0] * i0, o[n][1] * i0);
        if (lse && tq == 0) lse[((i64)b * Hq + h) * T + r0] = l0 > 0.f ? m0 + logf(l0) : NEG_INF;
    }
    if (r1 < T) {
        float* op = out + (((i64)b * T + r1) * Hq + h) * HD + 2 * tq;
#pragma unroll
        for (int n = 0; n < NO; n++) *(float2*)(op + n * 8) = make_float2(o[n][2] * i1, o[n][3] * i1);
        if (lse && tq == 0) lse[((i64)b * Hq + h) * T + r1] = l1 > 0.f ? m1 + logf(l1) : NEG_INF;
    }
}

// dK, dV: grid (ceil(S/64), Hkv, B), 128 threads; each warp owns 16 key rows. Loops over the query
// heads of the group and the 32-row query tiles that can see the block's keys. Dynamic shared:
// K, V [64][HD+8], Q, dO [32][HD+8] bf16, then lse and delta [32] F32.
template <int HD>
__device__ void dkdv_mma(float* dk, float* dv, const float* dout, const float* q, const float* k, const float* v, const float* lse,
                         const float* delta, const int* key_start, int T, int Hq, int S, int Hkv, int q_start, int kv_len,
                         int window, float scale) {
    extern __shared__ __align__(16) unsigned char smraw[];
    const int LD = HD + 8, NO = HD / 8;
    u16* Ks = (u16*)smraw;
    u16* Vs = Ks + 64 * LD;
    u16* Qs = Vs + 64 * LD;
    u16* Gs = Qs + 32 * LD;
    float* Ls = (float*)(Gs + 32 * LD);
    float* Dl = Ls + 32;
    int j0 = blockIdx.x * 64, kh = blockIdx.y, b = blockIdx.z;
    int group = Hq / Hkv;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tq = lane & 3;
    int ks = key_start ? key_start[b] : 0;
    stage<HD>(Ks, k, b, j0, 64, S, Hkv, kh, kv_len);
    stage<HD>(Vs, v, b, j0, 64, S, Hkv, kh, kv_len);
    int jr0 = j0 + warp * 16 + g, jr1 = jr0 + 8;
    float ak[NO][4], av[NO][4];
#pragma unroll
    for (int n = 0; n < NO; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) ak[n][e] = av[n][e] = 0.f;
    int tmin = max(0, j0 - q_start);
    int tmax = T - 1;
    if (window > 0) tmax = min(tmax, j0 + 63 - q_start + window - 1);
    for (int hh = kh * group; hh < (kh + 1) * group; hh++) {
        for (int tt = (tmin / 32) * 32; tt <= tmax; tt += 32) {
            __syncthreads();
            stage<HD>(Qs, q, b, tt, 32, T, Hq, hh, T);
            stage<HD>(Gs, dout, b, tt, 32, T, Hq, hh, T);
            if (threadIdx.x < 32) {
                int t = tt + threadIdx.x;
                i64 lr = ((i64)b * Hq + hh) * T + t;
                Ls[threadIdx.x] = t < T ? lse[lr] : 0.f;
                Dl[threadIdx.x] = t < T ? delta[lr] : 0.f;
            }
            __syncthreads();
            float st[4][4], dp[4][4]; // Sᵀ and dPᵀ: this warp's 16 keys × 32 queries
#pragma unroll
            for (int n = 0; n < 4; n++)
#pragma unroll
                for (int e = 0; e < 4; e++) st[n][e] = dp[n][e] = 0.f;
#pragma unroll
            for (int kc = 0; kc < HD / 16; kc++) {
                u32 a[4], a2[4];
                frag_a(a, Ks, LD, warp * 16, kc * 16);
                frag_a(a2, Vs, LD, warp * 16, kc * 16);
#pragma unroll
                for (int n = 0; n < 4; n++) {
                    u32 bb[2];
                    frag_b(bb, Qs, LD, n * 8, kc * 16);
                    mma16816(st[n], a, bb);
                    frag_b(bb, Gs, LD, n * 8, kc * 16);
                    mma16816(dp[n], a2, bb);
                }
            }
#pragma unroll
            for (int n = 0; n < 4; n++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    int rl = n * 8 + 2 * tq + e, t = tt + rl;
                    float p0 = vis(t, jr0, T, ks, q_start, kv_len, window) ? __expf(st[n][e] * scale - Ls[rl]) : 0.f;
                    float p1 = vis(t, jr1, T, ks, q_start, kv_len, window) ? __expf(st[n][2 + e] * scale - Ls[rl]) : 0.f;
                    st[n][e] = p0;
                    st[n][2 + e] = p1;
                    dp[n][e] = p0 * (dp[n][e] - Dl[rl]);
                    dp[n][2 + e] = p1 * (dp[n][2 + e] - Dl[rl]);
                }
#pragma unroll
            for (int kc = 0; kc < 2; kc++) {
                u32 ap[4], ad[4];
                c_to_a(ap, st[2 * kc], st[2 * kc + 1]);
                c_to_a(ad, dp[2 * kc], dp[2 * kc + 1]);
#pragma unroll
                for (int n2 = 0; n2 < NO / 2; n2++) {
                    u32 b0[2], b1[2];
                    frag_b2t(b0, b1, Gs, LD, kc * 16, n2 * 16);
                    mma16816(av[2 * n2], ap, b0);
                    mma16816(av[2 * n2 + 1], ap, b1);
                    frag_b2t(b0, b1, Qs, LD, kc * 16, n2 * 16);
                    mma16816(ak[2 * n2], ad, b0);
                    mma16816(ak[2 * n2 + 1], ad, b1);
                }
            }
        }
    }
    if (jr0 < S) {
        i64 off = (((i64)b * S + jr0) * Hkv + kh) * HD + 2 * tq;
#pragma unroll
        for (int n = 0; n < NO; n++) {
            *(float2*)(dk + off + n * 8) = make_float2(ak[n][0] * scale, ak[n][1] * scale);
            *(float2*)(dv + off + n * 8) = make_float2(av[n][0], av[n][1]);
        }
    }
    if (jr1 < S) {
        i64 off = (((i64)b * S + jr1) * Hkv + kh) * HD + 2 * tq;
#pragma unroll
        for (int n = 0; n < NO; n++) {
            *(float2*)(dk + off + n * 8) = make_float2(ak[n][2] * scale, ak[n][3] * scale);
            *(float2*)(dv + off + n * 8) = make_float2(av[n][2], av[n][3]);
        }
    }
}

// dQ: grid (ceil(T/64), Hq, B), 128 threads; each warp owns 16 query rows; loops over the 32-key
// tiles the query tile can see. Dynamic shared: Q, dO [64][HD+8], K, V [32][HD+8] bf16, then lse
// and delta [64] F32.
template <int HD>
__device__ void dq_mma(float* dq, const float* dout, const float* q, const float* k, const float* v, const float* lse,
                       const float* delta, const int* key_start, int T, int Hq, int S, int Hkv, int q_start, int kv_len,
                       int window, float scale) {
    extern __shared__ __align__(16) unsigned char smraw[];
    const int LD = HD + 8, NO = HD / 8;
    u16* Qs = (u16*)smraw;
    u16* Gs = Qs + 64 * LD;
    u16* Ks = Gs + 64 * LD;
    u16* Vs = Ks + 32 * LD;
    float* Ls = (float*)(Vs + 32 * LD);
    float* Dl = Ls + 64;
    int t0 = blockIdx.x * 64, h = blockIdx.y, b = blockIdx.z;
    int kh = h / (Hq / Hkv);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tq = lane & 3;
    int ks = key_start ? key_start[b] : 0;
    stage<HD>(Qs, q, b, t0, 64, T, Hq, h, T);
    stage<HD>(Gs, dout, b, t0, 64, T, Hq, h, T);
    if (threadIdx.x < 64) {
        int t = t0 + threadIdx.x;
        i64 lr = ((i64)b * Hq + h) * T + t;
        Ls[threadIdx.x] = t < T ? lse[lr] : 0.f;
        Dl[threadIdx.x] = t < T ? delta[lr] : 0.f;
    }
    int lr0 = warp * 16 + g, lr1 = lr0 + 8;
    int r0 = t0 + lr0, r1 = t0 + lr1;
    float acc[NO][4];
#pragma unroll
    for (int n = 0; n < NO; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;
    int tlast = min(t0 + 63, T - 1);
    int jmin = max(ks, 0);
    if (window > 0) jmin = max(jmin, q_start + t0 - window + 1);
    int jmax = min(q_start + tlast, kv_len - 1);
    for (int j0 = (jmin / 32) * 32; j0 <= jmax; j0 += 32) {
        __syncthreads();
        stage<HD>(Ks, k, b, j0, 32, S, Hkv, kh, kv_len);
        stage<HD>(Vs, v, b, j0, 32, S, Hkv, kh, kv_len);
        __syncthreads();
        float s[4][4], dp[4][4];
#pragma unroll
        for (int n = 0; n < 4; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) s[n][e] = dp[n][e] = 0.f;
#pragma unroll
        for (int kc = 0; kc < HD / 16; kc++) {
            u32 a[4], a2[4];
            frag_a(a, Qs, LD, warp * 16, kc * 16);
            frag_a(a2, Gs, LD, warp * 16, kc * 16);
#pragma unroll
            for (int n = 0; n < 4; n++) {
                u32 bb[2];
                frag_b(bb, Ks, LD, n * 8, kc * 16);
                mma16816(s[n], a, bb);
                frag_b(bb, Vs, LD, n * 8, kc * 16);
                mma16816(dp[n], a2, bb);
            }
        }
        float L0 = Ls[lr0], L1 = Ls[lr1], D0 = Dl[lr0], D1 = Dl[lr1];
#pragma unroll
        for (int n = 0; n < 4; n++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int j = j0 + n * 8 + 2 * tq + e;
                float p0 = vis(r0, j, T, ks, q_start, kv_len, window) ? __expf(s[n][e] * scale - L0) : 0.f;
                float p1 = vis(r1, j, T, ks, q_start, kv_len, window) ? __expf(s[n][2 + e] * scale - L1) : 0.f;
                s[n][e] = p0 * (dp[n][e] - D0);
                s[n][2 + e] = p1 * (dp[n][2 + e] - D1);
            }
#pragma unroll
        for (int kc = 0; kc < 2; kc++) {
            u32 a[4];
            c_to_a(a, s[2 * kc], s[2 * kc + 1]);
#pragma unroll
            for (int n2 = 0; n2 < NO / 2; n2++) {
                u32 b0[2], b1[2];
                frag_b2t(b0, b1, Ks, LD, kc * 16, n2 * 16);
                mma16816(acc[2 * n2], a, b0);
                mma16816(acc[2 * n2 + 1], a, b1);
            }
        }
    }
    if (r0 < T) {
        float* p = dq + (((i64)b * T + r0) * Hq + h) * HD + 2 * tq;
#pragma unroll
        for (int n = 0; n < NO; n++) *(float2*)(p + n * 8) = make_float2(acc[n][0] * scale, acc[n][1] * scale);
    }
    if (r1 < T) {
        float* p = dq + (((i64)b * T + r1) * Hq + h) * HD + 2 * tq;
#pragma unroll
        for (int n = 0; n < NO; n++) *(float2*)(p + n * 8) = make_float2(acc[n][2] * scale, acc[n][3] * scale);
    }
}

// attn_delta: delta[b, h, t] = Σ_d dout⊙out of query row (b, t, h); one warp per row, rows =
// B·T·Hq in [B, T, Hq] order, HD a multiple of 4.
extern "C" __global__ void attn_delta(float* delta, const float* dout, const float* out, int rows, int T, int Hq, int HD) {
    int row = blockIdx.x * (blockDim.x / 32) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const float4* a = (const float4*)(dout + (i64)row * HD);
    const float4* o = (const float4*)(out + (i64)row * HD);
    float s = 0.f;
    for (int i = lane; i < HD / 4; i += 32) {
        float4 x = a[i], y = o[i];
        s += x.x * y.x + x.y * y.y + x.z * y.z + x.w * y.w;
    }
    s = warp_sum(s);
    if (lane == 0) {
        int h = row % Hq, t = (row / Hq) % T, b = row / (Hq * T);
        delta[((i64)b * Hq + h) * T + t] = s;
    }
}

#define MFWD_ARGS float *out, float *lse, const float *q, const float *k, const float *v, const int *key_start, int T, int Hq, int S, int Hkv, int q_start, int kv_len, int window, float scale
#define MFWD_PASS out, lse, q, k, v, key_start, T, Hq, S, Hkv, q_start, kv_len, window, scale
#define MBWD_ARGS const float *dout, const float *q, const float *k, const float *v, const float *lse, const float *delta, const int *key_start, int T, int Hq, int S, int Hkv, int q_start, int kv_len, int window, float scale
#define MBWD_PASS dout, q, k, v, lse, delta, key_start, T, Hq, S, Hkv, q_start, kv_len, window, scale

extern "C" __global__ __launch_bounds__(MT) void attn_fwd_mma64(MFWD_ARGS) { fwd_mma<64>(MFWD_PASS); }
extern "C" __global__ __launch_bounds__(MT) void attn_fwd_mma128(MFWD_ARGS) { fwd_mma<128>(MFWD_PASS); }
extern "C" __global__ __launch_bounds__(MT) void attn_dkdv_mma64(float* dk, float* dv, MBWD_ARGS) { dkdv_mma<64>(dk, dv, MBWD_PASS); }
extern "C" __global__ __launch_bounds__(MT) void attn_dkdv_mma128(float* dk, float* dv, MBWD_ARGS) { dkdv_mma<128>(dk, dv, MBWD_PASS); }
extern "C" __global__ __launch_bounds__(MT) void attn_dq_mma64(float* dq, MBWD_ARGS) { dq_mma<64>(dq, MBWD_PASS); }
extern "C" __global__ __launch_bounds__(MT) void attn_dq_mma128(float* dq, MBWD_ARGS) { dq_mma<128>(dq, MBWD_PASS); }
