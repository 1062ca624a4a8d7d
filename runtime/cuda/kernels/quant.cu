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

// Decode GEMVs: out[r, n] = alpha·Σ_k x[r, k]·W[n, k] + beta·out[r, n] for m ≤ 4 rows of x (F32
// [m, K]) and a quantized W [N, K], reading the packed codes directly (no dequantized copy). Each
// weight value is the dequant kernels' exactly (same rounding); the products and sums are float32
// (x is not rounded, unlike the tensor-core path). One warp per output row n, 8 warps per block;
// each lane reads 16 bytes of codes per step (coalesced across the warp).
#define GEMV_M 4

// gemv4: K % 32 == 0 and bs ≥ 32 (a lane's 32 elements share one absmax block).
extern "C" __global__ void gemv4(float* out, const float* x, int m, int N, int K, float alpha, float beta,
                                 const unsigned char* packed, const float* absmax, const unsigned char* codes, const float* nabs,
                                 const float* nmap, float noff, int nbs, const float* codebook, int bs, int round_dt) {
    __shared__ float cb[16];
    if (threadIdx.x < 16) cb[threadIdx.x] = codebook[threadIdx.x];
    __syncthreads();
    int n = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (n >= N) return;
    float acc[GEMV_M] = {0.f, 0.f, 0.f, 0.f};
    const uint4* row = (const uint4*)(packed + (i64)n * (K / 2));
    for (int c = lane; c < K / 32; c += 32) {
        uint4 pk = row[c];
        i64 e0 = (i64)n * K + (i64)c * 32;
        i64 blk = e0 / bs;
        float am = absmax ? absmax[blk] : __fadd_rn(__fmul_rn(nmap[codes[blk]], nabs[blk / nbs]), noff);
        u32 words[4] = {pk.x, pk.y, pk.z, pk.w};
        float w[32];
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int b = 0; b < 4; b++) {
                u32 byte = (words[i] >> (8 * b)) & 255u;
                w[8 * i + 2 * b] = round_to(__fmul_rn(cb[byte >> 4], am), round_dt);
                w[8 * i + 2 * b + 1] = round_to(__fmul_rn(cb[byte & 15], am), round_dt);
            }
#pragma unroll
        for (int r = 0; r < GEMV_M; r++) {
            if (r >= m) break;
            const float4* xv = (const float4*)(x + (i64)r * K + (i64)c * 32);
            float s = 0.f;
#pragma unroll
            for (int j = 0; j < 8; j++) {
                float4 v = __ldg(xv + j);
                s += v.x * w[4 * j] + v.y * w[4 * j + 1] + v.z * w[4 * j + 2] + v.w * w[4 * j + 3];
            }
            acc[r] += s;
        }
    }
#pragma unroll
    for (int r = 0; r < GEMV_M; r++) {
        if (r >= m) break;
        float s = warp_sum(acc[r]);
        if (lane == 0) {
            float* o = out + (i64)r * N + n;
            *o = beta == 0.f ? alpha * s : alpha * s + beta * *o;
        }
    }
}

// gemv8: LLM.int8 W (row scales scb); K % 16 == 0.
extern "C" __global__ void gemv8(float* out, const float* x, int m, int N, int K, float alpha, float beta, const signed char* q,
                                 const float* scb, int round_dt) {
    const float inv127 = 1.0f / 127.0f;
    int n = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (n >= N) return;
    float sc = scb[n];
    float acc[GEMV_M] = {0.f, 0.f, 0.f, 0.f};
    const uint4* row = (const uint4*)(q + (i64)n * K);
    for (int c = lane; c < K / 16; c += 32) {
        uint4 pk = row[c];
        u32 words[4] = {pk.x, pk.y, pk.z, pk.w};
        float w[16];
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int b = 0; b < 4; b++) {
                float qv = (float)(signed char)((words[i] >> (8 * b)) & 255u);
                w[4 * i + b] = round_to(__fmul_rn(__fmul_rn(qv, sc), inv127), round_dt);
            }
#pragma unroll
        for (int r = 0; r < GEMV_M; r++) {
            if (r >= m) break;
            const float4* xv = (const float4*)(x + (i64)r * K + (i64)c * 16);
            float s = 0.f;
#pragma unroll
            for (int j = 0; j < 4; j++) {
                float4 v = __ldg(xv + j);
                s += v.x * w[4 * j] + v.y * w[4 * j + 1] + v.z * w[4 * j + 2] + v.w * w[4 * j + 3];
            }
            acc[r] += s;
        }
    }
#pragma unroll
    for (int r = 0; r < GEMV_M; r++) {
        if (r >= m) break;
        float s = warp_sum(acc[r]);
        if (lane == 0) {
            float* o = out + (i64)r * N + n;
            *o = beta == 0.f ? alpha * s : alpha * s + beta * *o;
        }
    }
}

// dequant4_bf16: dequant4 into BF16, 16 elements per thread (8 packed bytes in, 32 bytes out);
// n % 16 == 0 and bs % 16 == 0 (a thread's elements share one absmax), out 16-byte aligned. Same
// values as dequant4 with out_dt BF16.
extern "C" __global__ void dequant4_bf16(u16* out, const unsigned char* packed, const float* absmax, const unsigned char* codes,
                                         const float* nabs, const float* nmap, float noff, int nbs, const float* codebook, int bs,
                                         int round_dt, i64 n) {
    __shared__ float cb[16];
    if (threadIdx.x < 16) cb[threadIdx.x] = codebook[threadIdx.x];
    __syncthreads();
    for (i64 g = (i64)blockIdx.x * blockDim.x + threadIdx.x; g < n / 16; g += (i64)gridDim.x * blockDim.x) {
        i64 e0 = g * 16;
        i64 blk = e0 / bs;
        float m = absmax ? absmax[blk] : __fadd_rn(__fmul_rn(nmap[codes[blk]], nabs[blk / nbs]), noff);
        uint2 pk = ((const uint2*)packed)[g];
        u32 words[2] = {pk.x, pk.y};
        u32 o[8];
#pragma unroll
        for (int i = 0; i < 2; i++)
#pragma unroll
            for (int b = 0; b < 4; b++) {
                u32 byte = (words[i] >> (8 * b)) & 255u;
                u16 hi = f32_to_bf16(round_to(__fmul_rn(cb[byte >> 4], m), round_dt));
                u16 lo = f32_to_bf16(round_to(__fmul_rn(cb[byte & 15], m), round_dt));
                o[4 * i + b] = (u32)hi | ((u32)lo << 16); // element 2j (high nibble) first in memory
            }
        uint4* dst = (uint4*)(out + e0);
        dst[0] = make_uint4(o[0], o[1], o[2], o[3]);
        dst[1] = make_uint4(o[4], o[5], o[6], o[7]);
    }
}

// dequant8_bf16: dequant8 into BF16, 16 elements per thread; cols % 16 == 0, out 16-byte aligned.
extern "C" __global__ void dequant8_bf16(u16* out, const signed char* q, const float* scb, int round_dt, i64 cols, i64 n) {
    const float inv127 = 1.0f / 127.0f;
    for (i64 g = (i64)blockIdx.x * blockDim.x + threadIdx.x; g < n / 16; g += (i64)gridDim.x * blockDim.x) {
        i64 e0 = g * 16;
        float sc = scb[e0 / cols];
        uint4 pk = ((const uint4*)q)[g];
        u32 words[4] = {pk.x, pk.y, pk.z, pk.w};
        u32 o[8];
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int b = 0; b < 4; b += 2) {
                float q0 = (float)(signed char)((words[i] >> (8 * b)) & 255u);
                float q1 = (float)(signed char)((words[i] >> (8 * b + 8)) & 255u);
                u16 v0 = f32_to_bf16(round_to(__fmul_rn(__fmul_rn(q0, sc), inv127), round_dt));
                u16 v1 = f32_to_bf16(round_to(__fmul_rn(__fmul_rn(q1, sc), inv127), round_dt));
                o[2 * i + b / 2] = (u32)v0 | ((u32)v1 << 16);
            }
        uint4* dst = (uint4*)(out + e0);
        dst[0] = make_uint4(o[0], o[1], o[2], o[3]);
        dst[1] = make_uint4(o[4], o[5], o[6], o[7]);
    }
}

// gemv4h: the 4-bit decode GEMV for 2 ≤ m ≤ 4 rows of x (gemv4t and gemv4s take m = 1). Each warp
// owns GV_R = 4 consecutive output rows (a block of GV_THREADS threads owns GV_THREADS/32·GV_R
// rows); its lanes walk K in 16-byte chunks (32 codes) with a stride of 32 chunks, loading the next
// chunk of all GV_R rows before using the current one (GV_R·16 bytes in flight per lane, coalesced
// across the warp), and the matching 32 floats of x once for the GV_R rows. Per chunk
// s = Σ x·codebook[nibble], acc += absmax·s; the double-quant absmax is nmap[codes[blk]]·
// nabs[blk >> nsh] + noff with nmap in shared memory and block indices by shifts (block sizes are
// powers of two). The row sums reduce with warp shuffles. Half of each chunk's codes are looked up
// in the float32 codebook in shared memory, half by byte permutes (prmt) of bf16-rounded codebook
// tables held in registers (the integer pipe beside the shared-memory pipe); weights are
// codebook·absmax in float32, not rounded to the checkpoint dtype (the bf16 bound). The all-shared
// (gemv4v), deferred-absmax (gemv4d), 2/8-rows-a-warp (gemv4r2/r8) and float32 one-warp-a-row
// (gemv4f) forms measured slower on the H100 and were removed (runtime/cuda/NOTES.md).
#define GV_THREADS 128

// prmt16: for the 4 nibbles in the low 16 bits of q (nibble k selects entry k of a 16-entry byte
// table t0..t3, t0 holding entries 0-3), returns the 4 looked-up bytes, byte k for nibble k; sel
// is 0x3210 | ((q & 0x8888) >> 1) (nibble k: k, plus 4 when the entry is ≥ 8).
__device__ __forceinline__ u32 prmt16(u32 q, u32 sel, u32 t0, u32 t1, u32 t2, u32 t3) {
    u32 lo = __byte_perm(t0, t1, q), hi = __byte_perm(t2, t3, q);
    return __byte_perm(lo, hi, sel);
}

// chunk_dot_hybrid: Σ x·codebook[code] over one 16-byte chunk (32 codes; byte b of a word: high
// nibble = element 2b, low nibble = element 2b+1) and its 32 floats of x (xs: 8 float4). Words 0
// and 2 look their codes up in the float32 codebook in shared memory (cbb: its bytes), words 1 and
// 3 by byte permutes of the bf16-rounded codebook tables hiT/loT (high and low bytes) in registers.
__device__ __forceinline__ float chunk_dot_hybrid(uint4 pk, const float4* xs, const char* cbb, u32 hiT0, u32 hiT1, u32 hiT2,
                                                  u32 hiT3, u32 loT0, u32 loT1, u32 loT2, u32 loT3) {
    u32 words[4] = {pk.x, pk.y, pk.z, pk.w};
    float s = 0.f;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        u32 w = words[i];
        float4 a = xs[2 * i], b2 = xs[2 * i + 1];
        if (i & 1) {
            // byte b of w: high nibble = element 2b, low nibble = element 2b+1
            u32 sel = 0x32103210u | ((w & 0x88888888u) >> 1);
            u32 w16 = w >> 16, s16 = sel >> 16;
            u32 hA = prmt16(w, sel, hiT0, hiT1, hiT2, hiT3);
            u32 lA = prmt16(w, sel, loT0, loT1, loT2, loT3);
            u32 hB = prmt16(w16, s16, hiT0, hiT1, hiT2, hiT3);
            u32 lB = prmt16(w16, s16, loT0, loT1, loT2, loT3);
            u32 p01 = __byte_perm(lA, hA, 0x5140), p23 = __byte_perm(lA, hA, 0x7362);
            u32 p45 = __byte_perm(lB, hB, 0x5140), p67 = __byte_perm(lB, hB, 0x7362);
            s = fmaf(a.x, __uint_as_float(p01 & 0xffff0000u), s);
            s = fmaf(a.y, __uint_as_float(p01 << 16), s);
            s = fmaf(a.z, __uint_as_float(p23 & 0xffff0000u), s);
            s = fmaf(a.w, __uint_as_float(p23 << 16), s);
            s = fmaf(b2.x, __uint_as_float(p45 & 0xffff0000u), s);
            s = fmaf(b2.y, __uint_as_float(p45 << 16), s);
            s = fmaf(b2.z, __uint_as_float(p67 & 0xffff0000u), s);
            s = fmaf(b2.w, __uint_as_float(p67 << 16), s);
        } else {
#define CB(sh) (*(const float*)(cbb + ((sh) >= 0 ? ((w >> (sh)) & 60u) : ((w << 2) & 60u))))
            s = fmaf(a.x, CB(2), s);
            s = fmaf(a.y, CB(-2), s);
            s = fmaf(a.z, CB(10), s);
            s = fmaf(a.w, CB(6), s);
            s = fmaf(b2.x, CB(18), s);
            s = fmaf(b2.y, CB(14), s);
            s = fmaf(b2.z, CB(26), s);
            s = fmaf(b2.w, CB(22), s);
#undef CB
        }
    }
    return s;
}

template <int M, int GV_R>
__device__ __forceinline__ void gemv4v_body(float* out, const float* x, int m, int N, int K, float alpha, float beta,
                                            const unsigned char* packed, const float* absmax, const unsigned char* codes,
                                            const float* nabs, const float* nmap, float noff, int nsh, const float* codebook, int bsh) {
    __shared__ float cb[16];
    __shared__ float nm[256];
    int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    if (tid < 16) cb[tid] = codebook[tid];
    if (!absmax)
        for (int i = tid; i < 256; i += GV_THREADS) nm[i] = nmap[i];
    // bf16 codebook byte tables for the prmt path: hiT = high bytes, loT = low bytes, 4 per word
    u32 hiT[4] = {0u, 0u, 0u, 0u}, loT[4] = {0u, 0u, 0u, 0u};
#pragma unroll
    for (int i = 0; i < 16; i++) {
        u32 h = f32_to_bf16(codebook[i]);
        hiT[i >> 2] |= ((h >> 8) & 255u) << (8 * (i & 3));
        loT[i >> 2] |= (h & 255u) << (8 * (i & 3));
    }
    __syncthreads();
    int n0 = (blockIdx.x * (GV_THREADS / 32) + warp) * GV_R;
    if (n0 >= N) return;
    int nch = K >> 5;
    float acc[M][GV_R];
#pragma unroll
    for (int r = 0; r < M; r++)
#pragma unroll
        for (int j = 0; j < GV_R; j++) acc[r][j] = 0.f;
    const char* cbb = (const char*)cb;
    uint4 pk[GV_R];
    float am[GV_R];
    auto load = [&](int c) {
#pragma unroll
        for (int j = 0; j < GV_R; j++) {
            int n = n0 + j;
            pk[j] = make_uint4(0u, 0u, 0u, 0u);
            am[j] = 0.f;
            if (n < N) {
                pk[j] = __ldg((const uint4*)(packed + (i64)n * (K >> 1)) + c);
                i64 blk = ((i64)n * K + ((i64)c << 5)) >> bsh;
                am[j] = absmax ? __ldg(absmax + blk) : __fadd_rn(__fmul_rn(nm[__ldg(codes + blk)], __ldg(nabs + (blk >> nsh))), noff);
            }
        }
    };
    int c = lane;
    if (c < nch) load(c);
    for (; c < nch; c += 32) {
        uint4 cur[GV_R];
        float cam[GV_R];
#pragma unroll
        for (int j = 0; j < GV_R; j++) {
            cur[j] = pk[j];
            cam[j] = am[j];
        }
        if (c + 32 < nch)
            load(c + 32);
#pragma unroll
        for (int r = 0; r < M; r++) {
            if (r >= m) break;
            const float4* xv = (const float4*)(x + (i64)r * K + ((i64)c << 5));
            float4 xs[8];
#pragma unroll
            for (int i = 0; i < 8; i++) xs[i] = __ldg(xv + i);
#pragma unroll
            for (int j = 0; j < GV_R; j++) {
                float s = chunk_dot_hybrid(cur[j], xs, cbb, hiT[0], hiT[1], hiT[2], hiT[3], loT[0], loT[1], loT[2], loT[3]);
                acc[r][j] = fmaf(cam[j], s, acc[r][j]);
            }
        }
    }
#pragma unroll
    for (int r = 0; r < M; r++) {
        if (r >= m) break;
#pragma unroll
        for (int j = 0; j < GV_R; j++) {
            float v = warp_sum(acc[r][j]);
            int n = n0 + j;
            if (lane == 0 && n < N) {
                float* o = out + (i64)r * N + n;
                *o = beta == 0.f ? alpha * v : alpha * v + beta * *o;
            }
        }
    }
}

// gemv4h: grid ceil(N / (GV_THREADS/32·GV_R)), block GV_THREADS; K % 32 == 0, block size 1 << bsh
// ≥ 32, nested block size 1 << nsh, packed and x 16-byte aligned, m ≤ GEMV_M. gemv4h_m1 is the
// same for m == 1, compiled apart so that its register count is not the m ≤ 4 version's.
extern "C" __global__ __launch_bounds__(GV_THREADS) void gemv4h(float* out, const float* x, int m, int N, int K, float alpha, float beta,
        const unsigned char* packed, const float* absmax, const unsigned char* codes, const float* nabs, const float* nmap, float noff,
        int nsh, const float* codebook, int bsh) {
    gemv4v_body<GEMV_M, 4>(out, x, m, N, K, alpha, beta, packed, absmax, codes, nabs, nmap, noff, nsh, codebook, bsh);
}
extern "C" __global__ __launch_bounds__(GV_THREADS) void gemv4h_m1(float* out, const float* x, int m, int N, int K, float alpha, float beta,
        const unsigned char* packed, const float* absmax, const unsigned char* codes, const float* nabs, const float* nmap, float noff,
        int nsh, const float* codebook, int bsh) {
    gemv4v_body<1, 4>(out, x, m, N, K, alpha, beta, packed, absmax, codes, nabs, nmap, noff, nsh, codebook, bsh);
}

// gemv4s: the 4-bit decode GEMV at m = 1 (batch 1), out[n] = alpha·Σ_k x[k]·W[n, k] + beta·out[n].
// A block of GS_THREADS threads owns R consecutive output rows; the 16-byte chunks (32 codes) of
// each row are dealt to the block's threads round robin (thread t: chunks t, t + GS_THREADS, ...),
// so at K = 4096 every thread reads one chunk of each of its R rows, and a thread issues the loads
// of U chunks of all R rows (codes, double-quant code byte, nested absmax) before it uses any.
// Every load of a small matrix is thus in flight at once instead of a warp walking K in passes
// (gemv4v: 0.13-0.72 TB/s, latency bound). x (F32) is read through L1, 32 floats a chunk, shared
// by the R rows. Half of the lookups use byte permutes of a bf16 codebook in registers, half the
// float32 codebook in shared memory (gemv4h's split of the two pipes); weights are codebook·absmax
// (not rounded to the checkpoint dtype: the bf16 bound, as gemv4h). The R row sums reduce
// by warp shuffles, then across the block's warps in shared memory.
// Grid ceil(N / R), block GS_THREADS; K % 32 == 0, block size 1 << bsh ≥ 32, nested block size
// 1 << nsh, packed and x 16-byte aligned.
#define GS_THREADS 128

template <int R, int U>
__device__ __forceinline__ void gemv4s_body(float* out, const float* x, int N, int K, float alpha, float beta,
                                            const unsigned char* packed, const float* absmax, const unsigned char* codes,
                                            const float* nabs, const float* nmap, float noff, int nsh, const float* codebook,
                                            int bsh) {
    __shared__ float cb[16];
    __shared__ float nm[256];
    __shared__ float red[GS_THREADS / 32][R];
    int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    if (tid < 16) cb[tid] = codebook[tid];
    if (!absmax)
        for (int i = tid; i < 256; i += GS_THREADS) nm[i] = nmap[i];
    u32 hiT[4] = {0u, 0u, 0u, 0u}, loT[4] = {0u, 0u, 0u, 0u};
#pragma unroll
    for (int i = 0; i < 16; i++) {
        u32 h = f32_to_bf16(__ldg(codebook + i));
        hiT[i >> 2] |= ((h >> 8) & 255u) << (8 * (i & 3));
        loT[i >> 2] |= (h & 255u) << (8 * (i & 3));
    }
    __syncthreads();
    const int n0 = blockIdx.x * R, nch = K >> 5;
    const char* cbb = (const char*)cb;
    float acc[R];
#pragma unroll
    for (int j = 0; j < R; j++) acc[j] = 0.f;
    for (int c0 = tid; c0 < nch; c0 += GS_THREADS * U) {
        uint4 pk[U][R];
        float na[U][R];
        u32 code[U][R];
#pragma unroll
        for (int u = 0; u < U; u++) {
            int c = c0 + u * GS_THREADS;
#pragma unroll
            for (int j = 0; j < R; j++) {
                int n = n0 + j;
                pk[u][j] = make_uint4(0u, 0u, 0u, 0u);
                na[u][j] = 0.f;
                code[u][j] = 0u;
                if (c < nch && n < N) {
                    pk[u][j] = __ldg((const uint4*)(packed + (i64)n * (K >> 1)) + c);
                    i64 blk = ((i64)n * K + ((i64)c << 5)) >> bsh;
                    if (absmax) {
                        na[u][j] = __ldg(absmax + blk);
                    } else {
                        na[u][j] = __ldg(nabs + (blk >> nsh));
                        code[u][j] = (u32)__ldg(codes + blk);
                    }
                }
            }
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
            int c = c0 + u * GS_THREADS;
            if (c >= nch) break;
            const float4* xv = (const float4*)(x + ((i64)c << 5));
            float4 xs[8];
#pragma unroll
            for (int i = 0; i < 8; i++) xs[i] = __ldg(xv + i);
#pragma unroll
            for (int j = 0; j < R; j++) {
                float am = absmax ? na[u][j] : __fadd_rn(__fmul_rn(nm[code[u][j]], na[u][j]), noff);
                float s = chunk_dot_hybrid(pk[u][j], xs, cbb, hiT[0], hiT[1], hiT[2], hiT[3], loT[0], loT[1], loT[2], loT[3]);
                acc[j] = fmaf(am, s, acc[j]);
            }
        }
    }
#pragma unroll
    for (int j = 0; j < R; j++) {
        float v = warp_sum(acc[j]);
        if (lane == 0) red[warp][j] = v;
    }
    __syncthreads();
    if (tid < R && n0 + tid < N) {
        float v = 0.f;
#pragma unroll
        for (int w = 0; w < GS_THREADS / 32; w++) v += red[w][tid];
        float* o = out + n0 + tid;
        *o = beta == 0.f ? alpha * v : alpha * v + beta * *o;
    }
}

// gemv4s_rR_uU: R rows a block, U chunks of each row in flight a thread (U = 1 when K ≤ 32·GS_THREADS).
extern "C" __global__ __launch_bounds__(GS_THREADS) void gemv4s_r2_u1(float* out, const float* x, int N, int K, float alpha,
        float beta, const unsigned char* packed, const float* absmax, const unsigned char* codes, const float* nabs, const float* nmap,
        float noff, int nsh, const float* codebook, int bsh) {
    gemv4s_body<2, 1>(out, x, N, K, alpha, beta, packed, absmax, codes, nabs, nmap, noff, nsh, codebook, bsh);
}
extern "C" __global__ __launch_bounds__(GS_THREADS) void gemv4s_r4_u1(float* out, const float* x, int N, int K, float alpha,
        float beta, const unsigned char* packed, const float* absmax, const unsigned char* codes, const float* nabs, const float* nmap,
        float noff, int nsh, const float* codebook, int bsh) {
    gemv4s_body<4, 1>(out, x, N, K, alpha, beta, packed, absmax, codes, nabs, nmap, noff, nsh, codebook, bsh);
}
extern "C" __global__ __launch_bounds__(GS_THREADS) void gemv4s_r8_u1(float* out, const float* x, int N, int K, float alpha,
        float beta, const unsigned char* packed, const float* absmax, const unsigned char* codes, const float* nabs, const float* nmap,
        float noff, int nsh, const float* codebook, int bsh) {
    gemv4s_body<8, 1>(out, x, N, K, alpha, beta, packed, absmax, codes, nabs, nmap, noff, nsh, codebook, bsh);
}
extern "C" __global__ __launch_bounds__(GS_THREADS) void gemv4s_r2_u4(float* out, const float* x, int N, int K, float alpha,
        float beta, const unsigned char* packed, const float* absmax, const unsigned char* codes, const float* nabs, const float* nmap,
        float noff, int nsh, const float* codebook, int bsh) {
    gemv4s_body<2, 4>(out, x, N, K, alpha, beta, packed, absmax, codes, nabs, nmap, noff, nsh, codebook, bsh);
}
extern "C" __global__ __launch_bounds__(GS_THREADS) void gemv4s_r4_u4(float* out, const float* x, int N, int K, float alpha,
        float beta, const unsigned char* packed, const float* absmax, const unsigned char* codes, const float* nabs, const float* nmap,
        float noff, int nsh, const float* codebook, int bsh) {
    gemv4s_body<4, 4>(out, x, N, K, alpha, beta, packed, absmax, codes, nabs, nmap, noff, nsh, codebook, bsh);
}

// pack_bf16x2 rounds lo and hi to bf16 (nearest even) and packs them, lo in the low 16 bits.
__device__ __forceinline__ u32 pack_bf16x2(float lo, float hi) {
    u32 d;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(d) : "f"(hi), "f"(lo));
    return d;
}

// gemv4t: the 4-bit decode GEMV at m = 1 on the tensor cores, out[n] = alpha·Σ_k x[k]·W[n, k] +
// beta·out[n] (and, as gemv4t_swiglu, silu of one such product times another). Why: the SIMT
// kernels (gemv4h/gemv4s) spend ~7 instructions a weight on lookups, FMAs and index arithmetic
// and reach ~1 TB/s (ncu, H200: ALU pipe 60% busy); here a weight costs under 2.
//   - Lookup: one shared-memory load per code byte gives the two fp16 codebook values of its
//     nibbles, packed as an mma A register. The 256-entry pair table has one copy per lane, laid
//     out so that lane l's copy sits in bank l (word e·32 + l): no bank conflicts, 32 KB.
//   - Products: mma.sync m16n8k16 (fp16 in, float32 accumulation). The codebook is exact to 2^-12
//     in fp16; x is scaled by a power of two (max|x|·s < 2^14, undone at the end) and rounded to
//     fp16 (2^-12 relative): both well inside the bf16 bound, with no FMA per weight.
//   - Layout: a block of GT_WARPS warps owns 16-row tiles (grid-stride over tiles: the table and
//     x are built once per block); the 64-code segments of a row (one absmax block: block sizes
//     ≥ 64) are split into GT_WARPS contiguous ranges, one per warp. Lane (g, t) (g = lane/4,
//     t = lane%4) reads 8 bytes (16 codes) of rows g and g+8 of a segment; the mma's k slots map to
//     the segment's codes so that lane t supplies codes t·16 .. t·16+15, and the four mmas of a
//     segment sum all 64 codes of the two rows, scaled then by each row's absmax (the accumulator
//     restarts each segment). Every column of the mma's B is x, so each lane holds its rows' sums.
//   - Pipeline: the loads of the next G segments (codes, double-quant code bytes, nested absmax;
//     possibly of the next tile) are issued before the current ones are used.
// Grid: ≤ ceil(N/16) blocks (3 an SM); block 32·GT_WARPS; dynamic shared memory 2·K bytes (x).
// K % 64 == 0, K/64 ≥ GT_WARPS, N·K < 2^31, block size 1 << bsh ≥ 64, nested block size 1 << nsh,
// packed 8-byte and x 8-byte aligned.
#define GT_WARPS 8

// mma_f16_16816: c += a·b for one m16n8k16 tile (fp16 a, b; float32 c).
__device__ __forceinline__ void mma_f16_16816(float c[4], u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// pack_f16x2 rounds lo and hi to fp16 (nearest even) and packs them, lo in the low 16 bits.
__device__ __forceinline__ u32 pack_f16x2(float lo, float hi) {
    u32 d;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(d) : "f"(hi), "f"(lo));
    return d;
}

// One weight's state for G segments of a lane's two rows: codes, double-quant code bytes (DQ) or
// absmax values.
template <int G>
struct GtBuf {
    uint2 c[G][2];
    u32 q[G][2];
    float a[G][2];
};

// GtW: one 4-bit weight's device arrays, and the per-tile state of the lane's two rows (A = g,
// B = g+8): their codes, their first absmax block, and (DQ) the nested absmax of the warp's
// segment range — at most two values, as a range no longer than a nested block crosses at most
// one nested boundary: nLo before segment nSplit, nHi from it. id: the weight's slot (its nested
// map in shared memory, its output).
struct GtW {
    const unsigned char* packed;
    const float* absmax;
    const unsigned char* codes;
    const float* nabs;
    float noff;
    int nsh;
    int id;
    const unsigned char *pA, *pB; // row codes + t·8
    int bA, bB;                   // absmax block of the row's first code
    const unsigned char *qA, *qB; // DQ: codes + bA, codes + bB (the rows' absmax codes)
    const float *aA, *aB;         // not DQ: absmax + bA, absmax + bB
    float nLoA, nHiA, nLoB, nHiB;
    int nSplitA, nSplitB;
};

// GtSet: the weights of one launch. NW = 2 (SwiGLU): w[0] and w[1] over the same rows. NW = 1:
// up to three weights one after another along the tiles (q, k, v sharing x): weight i owns tiles
// [tileEnd[i-1], tileEnd[i]) and writes out[i] (N[i] rows).
struct GtSet {
    GtW w[3];
    float* out[3];
    const float* nmap[3];
    int N[3], tileEnd[3];
};

// gt_tile sets w's row state for rows rA, rB (K % block size == 0: rows start on a block) and the
// warp's segments [sBeg, sEnd).
template <bool DQ>
__device__ __forceinline__ void gt_tile(GtW& w, int rA, int rB, int K, int t, int bsh, int sBeg, int sEnd) {
    w.pA = w.packed + (i64)rA * (K >> 1) + t * 8;
    w.pB = w.packed + (i64)rB * (K >> 1) + t * 8;
    w.bA = (rA * K) >> bsh;
    w.bB = (rB * K) >> bsh;
    if (DQ) {
        w.qA = w.codes + w.bA;
        w.qB = w.codes + w.bB;
    } else {
        w.aA = w.absmax + w.bA;
        w.aB = w.absmax + w.bB;
    }
    if (DQ) {
        int sh = bsh - 6; // segments a block: 1 << sh
        int lo = (w.bA + (sBeg >> sh)) >> w.nsh, hi = (w.bA + ((sEnd - 1) >> sh)) >> w.nsh;
        w.nLoA = __ldg(w.nabs + lo);
        w.nHiA = __ldg(w.nabs + hi);
        w.nSplitA = lo == hi ? sEnd : (((hi << w.nsh) - w.bA) << sh); // first segment of nested block hi
        lo = (w.bB + (sBeg >> sh)) >> w.nsh, hi = (w.bB + ((sEnd - 1) >> sh)) >> w.nsh;
        w.nLoB = __ldg(w.nabs + lo);
        w.nHiB = __ldg(w.nabs + hi);
        w.nSplitB = lo == hi ? sEnd : (((hi << w.nsh) - w.bB) << sh);
    }
}

// gt_load loads segments s0 .. s0+G-1 (clamped to sEnd-1: past the range, a valid segment not
// used) of w's rows. B64: block size 64 (one block a segment).
template <int G, bool DQ, bool B64>
__device__ __forceinline__ void gt_load(GtBuf<G>& b, const GtW& w, int s0, int sEnd, int bsh) {
    if (s0 + G <= sEnd) { // the whole group: offsets from one base
        const unsigned char* ga = w.pA + ((i64)s0 << 5);
        const unsigned char* gb = w.pB + ((i64)s0 << 5);
#pragma unroll
        for (int u = 0; u < G; u++) {
            b.c[u][0] = __ldg((const uint2*)(ga + 32 * u));
            b.c[u][1] = __ldg((const uint2*)(gb + 32 * u));
        }
        if (B64) { // one absmax block a segment: consecutive bytes (or floats)
#pragma unroll
            for (int u = 0; u < G; u++) {
                if (DQ) {
                    b.q[u][0] = __ldg(w.qA + s0 + u);
                    b.q[u][1] = __ldg(w.qB + s0 + u);
                } else {
                    b.a[u][0] = __ldg(w.aA + s0 + u);
                    b.a[u][1] = __ldg(w.aB + s0 + u);
                }
            }
            return;
        }
    } else {
#pragma unroll
        for (int u = 0; u < G; u++) {
            int s = min(s0 + u, sEnd - 1);
            b.c[u][0] = __ldg((const uint2*)(w.pA + ((i64)s << 5)));
            b.c[u][1] = __ldg((const uint2*)(w.pB + ((i64)s << 5)));
        }
    }
    const int sh = B64 ? 0 : bsh - 6;
#pragma unroll
    for (int u = 0; u < G; u++) {
        int s = min(s0 + u, sEnd - 1);
        if (DQ) {
            b.q[u][0] = __ldg(w.qA + (s >> sh));
            b.q[u][1] = __ldg(w.qB + (s >> sh));
        } else {
            b.a[u][0] = __ldg(w.aA + (s >> sh));
            b.a[u][1] = __ldg(w.aB + (s >> sh));
        }
    }
}

// lds_u32 loads the 32-bit word at shared-memory (.shared::cta) address a.
__device__ __forceinline__ u32 lds_u32(u32 a) {
    u32 v;
    asm volatile("ld.shared::cta.u32 %0, [%1];" : "=r"(v) : "r"(a));
    return v;
}

// GT_PAIR: the A register of the code byte at bit SH of w: lane l's copy of the pair-table entry
// (byte·128 + l·4 is its byte offset in gtab; tb4 = gtab's shared address + l·4): a byte permute,
// a shift-add and the load.
#define GT_PAIR(w, SH) lds_u32((__byte_perm((w), 0u, 0x4440u | ((SH) >> 3)) << 7) + tb4)

// gemv4t_run: the kernel body. NW = 1: out_i = alpha·x·W_iᵀ + beta·out_i for the weights of S along
// the tiles; NW = 2: out_0 = silu(x·W_0ᵀ)·(x·W_1ᵀ). G segments a load group; DQ: double-quantized
// absmax (every weight); B64: block size 64.
// x is scaled per warp (each warp stages, as fp16, only the segments it multiplies, with its own
// power of two: no block-wide reduction) and each warp's partial sums are unscaled before the
// block's reduction.
template <int NW, int G, bool DQ, bool B64, bool NORM>
__device__ __forceinline__ void gemv4t_run(const GtSet& S, const float* x, int K, float alpha, float beta, const float* codebook,
                                           int bsh, const void* nw, int ndt, float eps, int addOne) {
    extern __shared__ __align__(16) u32 xh[]; // K/2 fp16 pairs of s_w·x (s_w: the scale of the warp owning the segment)
    __shared__ __align__(16) u32 gtab[256 * 32]; // entry e = {fp16(codebook[e >> 4]), fp16(codebook[e & 15])}, lane l's copy at word e·32 + l
    __shared__ float nm[3][256];
    __shared__ float red[2][NW][GT_WARPS][16];
    __shared__ double ssq[GT_WARPS];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
    const int nseg = K >> 6, ntiles = S.tileEnd[2];
    const int sBeg = warp * nseg / GT_WARPS, sEnd = (warp + 1) * nseg / GT_WARPS; // ≥ 1 segment: nseg ≥ GT_WARPS
    const u32 off4 = (u32)lane * 4u;
    const u32 tb4 = (u32)__cvta_generic_to_shared(gtab) + off4; // the lane's column of the table
    GtW wl[NW], wc[NW]; // the load cursor's and the compute cursor's tile state
    GtBuf<G> A[NW], B[NW];
    int lt = blockIdx.x, ls = sBeg; // load cursor: tile, segment
    auto tileRows = [&](int tile) {
        if (NW == 2) {
            int rA = min(tile * 16 + g, S.N[0] - 1), rB = min(tile * 16 + g + 8, S.N[0] - 1); // rows past N: row N-1, not written
            wl[0] = S.w[0];
            wl[NW - 1] = S.w[1];
#pragma unroll
            for (int k = 0; k < NW; k++) gt_tile<DQ>(wl[k], rA, rB, K, t, bsh, sBeg, sEnd);
        } else {
            int i = tile < S.tileEnd[0] ? 0 : (tile < S.tileEnd[1] ? 1 : 2);
            int t0 = i == 0 ? 0 : (i == 1 ? S.tileEnd[0] : S.tileEnd[1]), n = i == 0 ? S.N[0] : (i == 1 ? S.N[1] : S.N[2]);
            wl[0] = i == 0 ? S.w[0] : (i == 1 ? S.w[1] : S.w[2]);
            gt_tile<DQ>(wl[0], min((tile - t0) * 16 + g, n - 1), min((tile - t0) * 16 + g + 8, n - 1), K, t, bsh, sBeg, sEnd);
        }
    };
    auto loadNext = [&](GtBuf<G>(&buf)[NW]) {
        if (lt < ntiles) {
#pragma unroll
            for (int k = 0; k < NW; k++) gt_load<G, DQ, B64>(buf[k], wl[k], ls, sEnd, bsh);
        }
        ls += G;
        if (ls >= sEnd) {
            ls = sBeg;
            lt += gridDim.x;
            if (lt < ntiles) tileRows(lt);
        }
    };
    if (lt < ntiles) tileRows(lt);
#pragma unroll
    for (int k = 0; k < NW; k++) wc[k] = wl[k];
    loadNext(A); // the first loads fly while the tables are built
    for (int i = tid; i < 256 * 32; i += 32 * GT_WARPS) {
        int e = i >> 5;
        gtab[i] = pack_f16x2(__ldg(codebook + (e >> 4)), __ldg(codebook + (e & 15)));
    }
    if (DQ) {
        for (int i = tid; i < 256; i += 32 * GT_WARPS) {
            nm[0][i] = S.nmap[0][i];
            if (NW == 2 || S.tileEnd[1] > S.tileEnd[0]) nm[1][i] = S.nmap[1][i];
            if (NW == 1 && S.tileEnd[2] > S.tileEnd[1]) nm[2][i] = S.nmap[2][i];
        }
    }
    // x: this warp's segments (times the RMSNorm weight w' when nw is set: the norm's scalar
    // 1/rms is applied to the sums), scaled by s = 2^(14 − e) with their max = m·2^e (m in
    // [0.5, 1)): xh = fp16(s·x·w') (the scaling exact: a power of two)
    auto xw = [&](int i) { // elements 4i..4i+3 of x·w'
        float4 v = __ldg((const float4*)x + i);
        if (NORM) {
            float f0 = load_w(nw, 4 * i, ndt), f1 = load_w(nw, 4 * i + 1, ndt), f2 = load_w(nw, 4 * i + 2, ndt), f3 = load_w(nw, 4 * i + 3, ndt);
            if (addOne) f0 += 1.f, f1 += 1.f, f2 += 1.f, f3 += 1.f;
            v = make_float4(v.x * f0, v.y * f1, v.z * f2, v.w * f3);
        }
        return v;
    };
    float amax = 0.f;
    double ss = 0;
    for (int i = (sBeg << 4) + lane; i < (sEnd << 4); i += 32) {
        if (NORM) { // the norm's sum of squares, of x itself, in float64 (as kernels/norm.cu)
            float4 r = __ldg((const float4*)x + i);
            ss += (double)r.x * r.x + (double)r.y * r.y + (double)r.z * r.z + (double)r.w * r.w;
        }
        float4 v = xw(i);
        amax = fmaxf(amax, fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))));
    }
    amax = warp_max(amax);
    if (NORM) {
        ss = warp_sum_d(ss);
        if (lane == 0) ssq[warp] = ss;
    }
    int ex = 14;
    if (amax > 0.f && amax <= 3.0e38f) frexpf(amax, &ex);
    const float sc = ldexpf(1.f, 14 - ex);
    float inv = ldexpf(1.f, ex - 14);
    for (int i = (sBeg << 4) + lane; i < (sEnd << 4); i += 32) {
        float4 v = xw(i);
        *(uint2*)(xh + 2 * i) = make_uint2(pack_f16x2(v.x * sc, v.y * sc), pack_f16x2(v.z * sc, v.w * sc));
    }
    __syncthreads(); // the table, the nested maps and the norm's partial sums (each warp reads only its own x)
    if (NORM) {
        double tot = 0;
#pragma unroll
        for (int w = 0; w < GT_WARPS; w++) tot += ssq[w];
        inv *= (float)(1.0 / sqrt(tot / K + (double)eps)); // 1/rms, as kernels/norm.cu
    }
    float acc[NW][2];
#pragma unroll
    for (int k = 0; k < NW; k++) acc[k][0] = acc[k][1] = 0.f;
    int ct = blockIdx.x, cs = sBeg, par = 0; // compute cursor
    auto step = [&](GtBuf<G>(&buf)[NW]) {
#pragma unroll
        for (int u = 0; u < G; u++) {
            int s = cs + u;
            if (s >= sEnd) break; // warp-uniform
            uint4 x0 = *(const uint4*)(xh + (s << 5) + t * 8), x1 = *(const uint4*)(xh + (s << 5) + t * 8 + 4);
#pragma unroll
            for (int k = 0; k < NW; k++) {
                const GtBuf<G>& b = buf[k];
                u32 wa0 = b.c[u][0].x, wa1 = b.c[u][0].y, wb0 = b.c[u][1].x, wb1 = b.c[u][1].y;
                float c[4] = {0.f, 0.f, 0.f, 0.f};
                // tile j: codes 4j..4j+3 of the lane's 16 = bytes 2j, 2j+1; x pairs 2j, 2j+1
                mma_f16_16816(c, GT_PAIR(wa0, 0), GT_PAIR(wb0, 0), GT_PAIR(wa0, 8), GT_PAIR(wb0, 8), x0.x, x0.y);
                mma_f16_16816(c, GT_PAIR(wa0, 16), GT_PAIR(wb0, 16), GT_PAIR(wa0, 24), GT_PAIR(wb0, 24), x0.z, x0.w);
                mma_f16_16816(c, GT_PAIR(wa1, 0), GT_PAIR(wb1, 0), GT_PAIR(wa1, 8), GT_PAIR(wb1, 8), x1.x, x1.y);
                mma_f16_16816(c, GT_PAIR(wa1, 16), GT_PAIR(wb1, 16), GT_PAIR(wa1, 24), GT_PAIR(wb1, 24), x1.z, x1.w);
                float mA, mB;
                if (DQ) {
                    const GtW& w = wc[k];
                    const float* nmk = nm[NW == 2 ? k : w.id];
                    mA = __fadd_rn(__fmul_rn(nmk[b.q[u][0]], s < w.nSplitA ? w.nLoA : w.nHiA), w.noff);
                    mB = __fadd_rn(__fmul_rn(nmk[b.q[u][1]], s < w.nSplitB ? w.nLoB : w.nHiB), w.noff);
                } else {
                    mA = b.a[u][0];
                    mB = b.a[u][1];
                }
                acc[k][0] = fmaf(mA, c[0], acc[k][0]);
                acc[k][1] = fmaf(mB, c[2], acc[k][1]);
            }
        }
        cs += G;
        if (cs >= sEnd) { // this warp's last group of tile ct: the block's reduction and store
            if (t == 0) {
#pragma unroll
                for (int k = 0; k < NW; k++) {
                    red[par][k][warp][g] = acc[k][0] * inv;
                    red[par][k][warp][g + 8] = acc[k][1] * inv;
                }
            }
            __syncthreads();
            int i = NW == 2 ? 0 : (ct < S.tileEnd[0] ? 0 : (ct < S.tileEnd[1] ? 1 : 2));
            int t0 = i == 0 ? 0 : (i == 1 ? S.tileEnd[0] : S.tileEnd[1]), nN = i == 0 ? S.N[0] : (i == 1 ? S.N[1] : S.N[2]);
            float* o = i == 0 ? S.out[0] : (i == 1 ? S.out[1] : S.out[2]);
            int n = (ct - t0) * 16 + tid;
            if (tid < 16 && n < nN) {
                float v[NW];
#pragma unroll
                for (int k = 0; k < NW; k++) {
                    v[k] = 0.f;
#pragma unroll
                    for (int q = 0; q < GT_WARPS; q++) v[k] += red[par][k][q][tid];
                }
                if (NW == 2)
                    o[n] = v[0] / (1.f + expf(-v[0])) * v[NW - 1]; // silu(gate)·up, as kernels/elementwise.cu swiglu
                else
                    o[n] = beta == 0.f ? alpha * v[0] : alpha * v[0] + beta * o[n];
            }
#pragma unroll
            for (int k = 0; k < NW; k++) acc[k][0] = acc[k][1] = 0.f;
            par ^= 1;
            cs = sBeg;
            ct += gridDim.x;
#pragma unroll
            for (int k = 0; k < NW; k++) wc[k] = wl[k]; // the load cursor is at most one group ahead: on tile ct now
        }
    };
    while (ct < ntiles) {
        loadNext(B);
        step(A);
        if (ct >= ntiles) break;
        loadNext(A);
        step(B);
    }
}
#undef GT_PAIR

// GT_W(i): weight i's kernel parameters.
#define GT_W(i) float *out##i, int N##i, const unsigned char *packed##i, const float *absmax##i, const unsigned char *codes##i, \
                const float *nabs##i, const float *nmap##i, float noff##i, int nsh##i
#define GT_SET(i) S.w[i] = GtW{packed##i, absmax##i, codes##i, nabs##i, noff##i, nsh##i, i}; S.out[i] = out##i; \
                  S.nmap[i] = nmap##i; S.N[i] = N##i;
#define GT_COMMON const float *x, int K, float alpha, float beta, const float *codebook, int bsh, const void *nw, int ndt, float eps, \
                  int addOne

// gemv4t_{dq,ab}_{64,g}: out = alpha·x·Wᵀ + beta·out for one weight; gemv4t3_…: the same for two
// or three weights sharing x, one after another along the tiles (q, k and v of a decode layer in
// one launch; N2 = 0 for two). With nw set (a [K] weight of dtype ndt; gemv4t3 only: gemv4t ignores
// it), x is first RMS-normalized
// as kernels/norm.cu rmsnorm does (x / sqrt(mean(x²) + eps) · w', w' = w or 1 + w with addOne):
// the input_layernorm folded into the products. dq: double-quantized absmax, ab: float32 absmax; 64: block size 64,
// g: a larger power of two. Every weight of a launch has the same K, codebook, block size and
// absmax kind.
#define GT1_BODY(DQ, B64)                                                                    \
    GtSet S;                                                                                 \
    GT_SET(0) S.w[1] = S.w[2] = S.w[0];                                                      \
    S.out[1] = S.out[2] = out0;                                                              \
    S.nmap[1] = S.nmap[2] = nmap0;                                                           \
    S.N[1] = S.N[2] = N0;                                                                    \
    S.tileEnd[0] = S.tileEnd[1] = S.tileEnd[2] = (N0 + 15) >> 4;                             \
    gemv4t_run<1, 2, DQ, B64, false>(S, x, K, alpha, beta, codebook, bsh, nw, ndt, eps, addOne);
#define GT3_BODY(DQ, B64, NORM)                                                                   \
    GtSet S;                                                                                 \
    GT_SET(0) GT_SET(1) GT_SET(2)                                                            \
    S.tileEnd[0] = (N0 + 15) >> 4;                                                           \
    S.tileEnd[1] = S.tileEnd[0] + ((N1 + 15) >> 4);                                          \
    S.tileEnd[2] = S.tileEnd[1] + ((N2 + 15) >> 4);                                          \
    gemv4t_run<1, 2, DQ, B64, NORM>(S, x, K, alpha, beta, codebook, bsh, nw, ndt, eps, addOne);
extern "C" __global__ __launch_bounds__(32 * GT_WARPS, 3) void gemv4t_dq_64(GT_COMMON, GT_W(0)) { GT1_BODY(true, true) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS, 3) void gemv4t_dq_g(GT_COMMON, GT_W(0)) { GT1_BODY(true, false) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS, 3) void gemv4t_ab_64(GT_COMMON, GT_W(0)) { GT1_BODY(false, true) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS, 3) void gemv4t_ab_g(GT_COMMON, GT_W(0)) { GT1_BODY(false, false) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS, 3) void gemv4t3_dq_64(GT_COMMON, GT_W(0), GT_W(1), GT_W(2)) { GT3_BODY(true, true, false) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS, 3) void gemv4t3_dq_g(GT_COMMON, GT_W(0), GT_W(1), GT_W(2)) { GT3_BODY(true, false, false) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS, 3) void gemv4t3_ab_64(GT_COMMON, GT_W(0), GT_W(1), GT_W(2)) { GT3_BODY(false, true, false) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS, 3) void gemv4t3_ab_g(GT_COMMON, GT_W(0), GT_W(1), GT_W(2)) { GT3_BODY(false, false, false) }
// gemv4t3n_…: gemv4t3 with the RMSNorm (nw) folded in.
extern "C" __global__ __launch_bounds__(32 * GT_WARPS, 3) void gemv4t3n_dq_64(GT_COMMON, GT_W(0), GT_W(1), GT_W(2)) { GT3_BODY(true, true, true) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS, 3) void gemv4t3n_dq_g(GT_COMMON, GT_W(0), GT_W(1), GT_W(2)) { GT3_BODY(true, false, true) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS, 3) void gemv4t3n_ab_64(GT_COMMON, GT_W(0), GT_W(1), GT_W(2)) { GT3_BODY(false, true, true) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS, 3) void gemv4t3n_ab_g(GT_COMMON, GT_W(0), GT_W(1), GT_W(2)) { GT3_BODY(false, false, true) }
#undef GT1_BODY
#undef GT3_BODY

// gemv4t_swiglu_{dq,ab}_{64,g}: out0[n] = silu(Σ_k x[k]·G[n, k]) · Σ_k x[k]·U[n, k] for two 4-bit
// weights G (weight 0, gate) and U (weight 1, up; out1 and N1 unused) of the same shape, codebook,
// block size and absmax kind: the gate and up products and the SwiGLU of a decode layer in one
// launch. Same layout rules as gemv4t.
#define GS_BODY(DQ, B64, NORM)                                                                   \
    GtSet S;                                                                                 \
    GT_SET(0) GT_SET(1) S.w[2] = S.w[1];                                                     \
    S.out[2] = out0;                                                                         \
    S.nmap[2] = nmap1;                                                                       \
    S.N[2] = N0;                                                                             \
    S.tileEnd[0] = S.tileEnd[1] = S.tileEnd[2] = (N0 + 15) >> 4;                             \
    gemv4t_run<2, 1, DQ, B64, NORM>(S, x, K, 1.f, 0.f, codebook, bsh, nw, ndt, eps, addOne);
extern "C" __global__ __launch_bounds__(32 * GT_WARPS, 2) void gemv4t_swiglu_dq_64(GT_COMMON, GT_W(0), GT_W(1)) { GS_BODY(true, true, false) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS, 2) void gemv4t_swiglu_dq_g(GT_COMMON, GT_W(0), GT_W(1)) { GS_BODY(true, false, false) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS, 2) void gemv4t_swiglu_ab_64(GT_COMMON, GT_W(0), GT_W(1)) { GS_BODY(false, true, false) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS, 2) void gemv4t_swiglu_ab_g(GT_COMMON, GT_W(0), GT_W(1)) { GS_BODY(false, false, false) }
// gemv4t_swiglun_…: gemv4t_swiglu with the RMSNorm (nw) folded in.
extern "C" __global__ __launch_bounds__(32 * GT_WARPS, 2) void gemv4t_swiglun_dq_64(GT_COMMON, GT_W(0), GT_W(1)) { GS_BODY(true, true, true) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS, 2) void gemv4t_swiglun_dq_g(GT_COMMON, GT_W(0), GT_W(1)) { GS_BODY(true, false, true) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS, 2) void gemv4t_swiglun_ab_64(GT_COMMON, GT_W(0), GT_W(1)) { GS_BODY(false, true, true) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS, 2) void gemv4t_swiglun_ab_g(GT_COMMON, GT_W(0), GT_W(1)) { GS_BODY(false, false, true) }
#undef GS_BODY
#undef GT_COMMON
#undef GT_SET
#undef GT_W

// dequant4_bf16v: dequant4 into BF16 with coalesced accesses and one rounding. A thread converts
// 8 elements at a time (4 bytes of codes in, 16 bytes out: consecutive threads, consecutive
// groups), four groups a grid stride apart with their loads issued first. nmap and the codebook are
// in shared memory, block indices are shifts (block sizes are powers of two), and for round_dt
// BF16 or F32 the value is rounded to bf16 once, which is what rounding to round_dt and then to
// bf16 gives (bf16 rounding is idempotent); F16 keeps both steps. Pairs are packed by
// cvt.rn.bf16x2.f32 (round to nearest even: the bits of f32_to_bf16 for the finite values
// dequantization makes). n % 8 == 0, block size 1 << bsh ≥ 8, nested block size 1 << nsh, packed
// 4-byte and out 16-byte aligned. Same values as dequant4 with out_dt BF16.

extern "C" __global__ void dequant4_bf16v(u16* out, const unsigned char* packed, const float* absmax, const unsigned char* codes,
                                          const float* nabs, const float* nmap, float noff, int nsh, const float* codebook, int bsh,
                                          int round_dt, i64 n) {
    __shared__ float cb[16];
    __shared__ float nm[256];
    if (threadIdx.x < 16) cb[threadIdx.x] = codebook[threadIdx.x];
    if (!absmax)
        for (int i = threadIdx.x; i < 256; i += blockDim.x) nm[i] = nmap[i];
    __syncthreads();
    bool f16 = round_dt == DT_F16;
    i64 groups = n >> 3, stride = (i64)gridDim.x * blockDim.x;
    for (i64 g0 = (i64)blockIdx.x * blockDim.x + threadIdx.x; g0 < groups; g0 += 4 * stride) {
        u32 w[4];
        float m[4];
#pragma unroll
        for (int u = 0; u < 4; u++) {
            i64 g = g0 + u * stride;
            w[u] = 0u;
            m[u] = 0.f;
            if (g < groups) {
                w[u] = __ldg((const u32*)packed + g);
                i64 blk = (g << 3) >> bsh;
                m[u] = absmax ? __ldg(absmax + blk) : __fadd_rn(__fmul_rn(nm[__ldg(codes + blk)], __ldg(nabs + (blk >> nsh))), noff);
            }
        }
#pragma unroll
        for (int u = 0; u < 4; u++) {
            i64 g = g0 + u * stride;
            if (g >= groups) break;
            u32 o[4];
#pragma unroll
            for (int b = 0; b < 4; b++) {
                u32 byte = (w[u] >> (8 * b)) & 255u;
                float hi = __fmul_rn(cb[byte >> 4], m[u]), lo = __fmul_rn(cb[byte & 15], m[u]);
                if (f16) {
                    hi = round_to(hi, DT_F16);
                    lo = round_to(lo, DT_F16);
                }
                o[b] = pack_bf16x2(hi, lo); // element 2j (high nibble) first in memory
            }
            ((uint4*)out)[g] = make_uint4(o[0], o[1], o[2], o[3]);
        }
    }
}
