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
// beta·out[n] (and, as gemv4t_swiglu, silu of one such product times another). What bounds a
// 4-bit GEMV here is the L1/shared-memory pipe (ncu: 80% busy at 1.2 TB/s), which serves the code
// loads (one wavefront per 128-byte line a warp load touches), the absmax loads and the codebook
// lookups; the layout below is chosen to touch few lines and issue few instructions.
//   - Unit: two 64-code segments (one absmax block each at block size 64) of a 16-row tile. Lane
//     (g, t) (g = lane/4, t = lane%4) loads 16 bytes (32 codes) of rows g and g+8: segment t/2,
//     codes (t%2)·32 .. +31; a warp load covers 8 rows × 64 contiguous bytes.
//   - Blocks: one an SM, of GT_WARPS1 warps (GT_WARPS2 for the SwiGLU form: its registers), so the
//     tables and x are built once an SM.
//   - Products: mma.sync m16n8k16 (fp16 in, float32 accumulation), the lane's 32 codes of a row in
//     8 mmas. The two segments have different absmax, so B's columns split them: lane (g, t)
//     supplies x for column g only where its codes' segment t/2 matches g's parity, else zeros;
//     column n then sums the codes of segment n%2, and the lane's accumulators are (row g, seg 0),
//     (g, 1), (g+8, 0), (g+8, 1), scaled by their absmax after the unit.
//   - Lookup: one byte permute and one shared-memory load per code byte give the two fp16
//     codebook values of its nibbles as an mma A register: the permute puts the byte at bits 8-15
//     and lane·4 at bits 0-7, the offset of the lane's copy of the entry in a 64 KiB table of 256
//     entries 256 bytes apart (lane l's copy in bank l: no conflicts); the load's address is that
//     plus a constant (GT_SMEM0). The upper 128 bytes of entry s hold segment s of x as fp16
//     (K ≤ 16384; past that x follows the tile sums), odd segments rotated by 32 bytes so that a
//     warp's x load (segments s and s+1) touches each bank once; lanes whose B column is masked
//     keep zero registers and do not load. The codebook is exact to 2^-12 in fp16; x is scaled by a
//     power of two (max|x|·s < 2^14, undone at the end; the same in every block) and rounded to
//     fp16 (2^-12 relative): both well inside the bf16 bound.
//   - Work: block b takes tiles ⌊b·T/B⌋ .. ⌊(b+1)·T/B⌋ (T tiles, B blocks: ±1 tile, whatever the
//     shape), and its warps split the block's units (tile-major) in contiguous ranges of equal
//     length ±1, crossing tiles. A warp's sums of each tile it touches go to its slot in shared
//     memory (zero where it touches none); after one barrier the block adds each tile's slots in
//     warp order (the result does not depend on timing) and writes the outputs: no atomics, no
//     global workspace.
//   - Pipeline: GT_NB1 − 1 (NW = 1) or GT_NB2 − 1 units' loads in flight a warp (the first ones
//     issued before the block's prologue), and the blocks launched as dependents
//     (kernels.launchDependent): they start as the previous kernel's blocks exit, and wait for it
//     (grid_dep_wait) only before reading x.
// Grid: ≤ one block an SM; block 32·GT_WARPS1 (NW = 1) or 32·GT_WARPS2 (NW = 2) threads; dynamic
// shared memory GT_XEXT + ⌈T/B⌉·warps·NW·64 bytes (the tile sums) (+ 2·K when K > 16384: x), no
// static. K % 128 == 0, N·K < 2^31, block size 1 << bsh ≥ 64 dividing K, nested block size
// 1 << nsh ≥ 2, packed 16-byte and x 16-byte aligned.
#define GT_WARPS1 18
#define GT_WARPS2 12
#define GT_NB1 4 // load buffers a warp (units in flight + 1) for NW = 1 and 2
#define GT_NB2 3
#define GT_XR 6 // float4 of x a thread keeps in registers while staging (more: read twice)
#define GT_TAB 65536
#define GT_NM GT_TAB                 // nested maps nm[3][256]
#define GT_RED (GT_TAB + 3072)       // the warps' max |x| (32 floats) and sums of squares (32 doubles)
#define GT_XEXT (GT_TAB + 4096)      // the tile sums, then x when K > 16384

// GT_SMEM0: the shared-window offset of a gemv4t block's dynamic shared memory: the 1 KiB the
// hardware reserves, then (no static shared memory in these kernels) the dynamic part. gemv4t_run
// checks it, so that a lookup is one load at [offset + GT_SMEM0] (the address arithmetic folded
// into the instruction) instead of an add and a load.
#define GT_SMEM0 0x400

// gt_lds reads the 32-bit word at byte offset off of the block's dynamic shared memory.
__device__ __forceinline__ u32 gt_lds(u32 off) {
    u32 v;
    asm volatile("ld.shared.u32 %0, [%1+0x400];" : "=r"(v) : "r"(off));
    return v;
}

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

// GtBuf: one weight's loads for one unit of the lane's rows A (g) and B (g+8): the codes; DQ: the
// double-quant code bytes (byte 2r+e: row r, segment e) and the nested absmax a[r][0]; else the
// absmax a[r][e].
struct GtBuf {
    uint4 c[2];
    u32 q;
    float a[2][2];
};

// GtW: one 4-bit weight's device arrays, and the load cursor's rows on its current tile: codes of
// rows A and B + t·16, the absmax block of each row's first code.
struct GtW {
    const unsigned char* packed;
    const float* absmax;
    const unsigned char* codes;
    const float* nabs;
    float noff;
    int nsh;
    const unsigned char *pA, *pB;
    int bA, bB;
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

// gt_load loads the unit at segment s (even) of w's rows: lane (g, t) the 16 bytes of segment
// s + t/2 at (t%2)·16 (pA, pB hold the t·16), and each row's absmax state of segments s, s+1 (one
// block for both when blocks are ≥ 128 codes; one nested block for both: nested blocks hold an
// even number of blocks).
template <bool DQ, bool B64>
__device__ __forceinline__ void gt_load(GtBuf& b, const GtW& w, int s, int bsh) {
    b.c[0] = __ldg((const uint4*)(w.pA + s * 32));
    b.c[1] = __ldg((const uint4*)(w.pB + s * 32));
    const int iA = w.bA + (B64 ? s : s >> (bsh - 6)), iB = w.bB + (B64 ? s : s >> (bsh - 6));
    if (DQ) {
        if (B64) { // both code bytes of a row in one load (aligned: rows start on an even block, s is even)
            b.q = (u32)__ldg((const unsigned short*)(w.codes + iA)) | (u32)__ldg((const unsigned short*)(w.codes + iB)) << 16;
        } else {
            const u32 cA = __ldg(w.codes + iA), cB = __ldg(w.codes + iB);
            b.q = cA * 0x101u | cB * 0x1010000u;
        }
        b.a[0][0] = __ldg(w.nabs + (iA >> w.nsh));
        b.a[1][0] = __ldg(w.nabs + (iB >> w.nsh));
    } else if (B64) {
        const float2 vA = __ldg((const float2*)(w.absmax + iA)), vB = __ldg((const float2*)(w.absmax + iB));
        b.a[0][0] = vA.x, b.a[0][1] = vA.y, b.a[1][0] = vB.x, b.a[1][1] = vB.y;
    } else {
        b.a[0][0] = b.a[0][1] = __ldg(w.absmax + iA);
        b.a[1][0] = b.a[1][1] = __ldg(w.absmax + iB);
    }
}

// GT_PAIR: the A register of byte J of the code word w: lane l's copy of the pair-table entry.
#define GT_PAIR(w, J) gt_lds(__byte_perm((w), lane4, 0x5504u | ((J) << 4)))

// gemv4t_run: the kernel body. NW = 1: out_i = alpha·x·W_iᵀ + beta·out_i for the weights of S along
// the tiles; NW = 2: out_0 = silu(x·W_0ᵀ)·(x·W_1ᵀ). DQ: double-quantized absmax (every weight);
// B64: block size 64; NORM: x is RMS-normalized by nw first.
template <int NW, bool DQ, bool B64, bool NORM>
__device__ __forceinline__ void gemv4t_run(const GtSet& S, const float* x, int K, float alpha, float beta, const float* codebook,
                                           int bsh, const void* nw, int ndt, float eps, int addOne) {
    extern __shared__ __align__(16) u32 gsm[]; // all of the block's shared memory (GT_SMEM0)
    unsigned char* const sm = (unsigned char*)gsm;
    float(*nm)[256] = (float(*)[256])(sm + GT_NM);
    float* redf = (float*)(sm + GT_RED);
    double* redd = (double*)(sm + GT_RED + 128);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3, nwarp = blockDim.x >> 5;
    const int nseg = K >> 6, npair = nseg >> 1, ntiles = S.tileEnd[2];
    const int tb0 = (int)((long long)blockIdx.x * ntiles / gridDim.x), tb1 = (int)((long long)(blockIdx.x + 1) * ntiles / gridDim.x);
    const int maxT = (ntiles + gridDim.x - 1) / gridDim.x, Ub = (tb1 - tb0) * npair; // tiles of any block ≤ maxT
    const int u0 = tb0 * npair + warp * Ub / nwarp, u1 = tb0 * npair + (warp + 1) * Ub / nwarp; // the warp's units
    float* const tsum = (float*)(sm + GT_XEXT);  // [maxT][nwarp][NW·16]: the warps' sums of the block's tiles
    const u32 lane4 = (u32)lane * 4u;
    const int xb = nseg <= 256 ? 128 : GT_XEXT + maxT * nwarp * NW * 64, xs = nseg <= 256 ? 256 : 128; // segment s of x at byte xb + s·xs
    if (((u32)__cvta_generic_to_shared(gsm) & 0xffffffu) != GT_SMEM0) __trap(); // a broken layout assumption
    grid_dep_launch(); // the next dependent kernel's blocks may take SMs as these blocks exit
    GtW wl[NW]; // the load cursor's rows
    constexpr int NB = NW == 1 ? GT_NB1 : GT_NB2; // load buffers: NB − 1 units in flight while one is used
    GtBuf bufs[NB][NW];
    int lu = u0, lt = u0 / npair, ls = 2 * (u0 - lt * npair); // load cursor: unit, tile, segment
    auto setRows = [&](GtW& w, const GtW& src, int rA, int rB) { // field by field: no copy of S through local memory
        w.absmax = src.absmax;
        w.codes = src.codes;
        w.nabs = src.nabs;
        w.nsh = src.nsh;
        w.pA = src.packed + rA * (K >> 1) + t * 16;
        w.pB = src.packed + rB * (K >> 1) + t * 16;
        w.bA = (rA * K) >> bsh;
        w.bB = (rB * K) >> bsh;
    };
    auto wid = [&](int tile) { return NW == 2 || tile < S.tileEnd[0] ? 0 : (tile < S.tileEnd[1] ? 1 : 2); }; // a tile's weight
    auto tileRows = [&](int tile) {
        if (NW == 2) {
            int rA = min(tile * 16 + g, S.N[0] - 1), rB = min(tile * 16 + g + 8, S.N[0] - 1); // rows past N: row N-1, not written
            setRows(wl[0], S.w[0], rA, rB);
            setRows(wl[NW - 1], S.w[1], rA, rB);
        } else if (tile < S.tileEnd[0]) {
            setRows(wl[0], S.w[0], min(tile * 16 + g, S.N[0] - 1), min(tile * 16 + g + 8, S.N[0] - 1));
        } else if (tile < S.tileEnd[1]) {
            int r = (tile - S.tileEnd[0]) * 16;
            setRows(wl[0], S.w[1], min(r + g, S.N[1] - 1), min(r + g + 8, S.N[1] - 1));
        } else {
            int r = (tile - S.tileEnd[1]) * 16;
            setRows(wl[0], S.w[2], min(r + g, S.N[2] - 1), min(r + g + 8, S.N[2] - 1));
        }
    };
    auto loadNext = [&](GtBuf(&buf)[NW]) {
        if (lu < u1) {
#pragma unroll
            for (int k = 0; k < NW; k++) gt_load<DQ, B64>(buf[k], wl[k], ls, bsh);
        }
        lu++;
        ls += 2;
        if (ls >= nseg) {
            ls = 0;
            lt++;
            if (lu < u1) tileRows(lt);
        }
    };
    if (u0 < u1) {
        tileRows(lt);
#pragma unroll
        for (int i = 0; i < NB - 1; i++) loadNext(bufs[i]); // the first loads fly while the tables are built
    }
    float nmv[3] = {0.f, 0.f, 0.f}; // the nested maps, loaded now and stored after the table
    if (DQ && tid < 256) {
        nmv[0] = __ldg(S.nmap[0] + tid);
        if (NW == 2 || S.tileEnd[1] > S.tileEnd[0]) nmv[1] = __ldg(S.nmap[1] + tid);
        if (NW == 1 && S.tileEnd[2] > S.tileEnd[1]) nmv[2] = __ldg(S.nmap[2] + tid);
    }
    { // the pair table: entry e = {fp16(codebook[e >> 4]), fp16(codebook[e & 15])}, lane l's copy at byte e·256 + l·4;
      // a thread writes four copies of an entry at once (8 lanes an entry)
        const float cb = __ldg(codebook + (lane & 15));
        for (int e0 = warp * 4; e0 < 256; e0 += nwarp * 4) {
            const int e = e0 + (lane >> 3);
            const u32 v = pack_f16x2(__shfl_sync(0xffffffffu, cb, e >> 4), __shfl_sync(0xffffffffu, cb, e & 15));
            *(uint4*)(sm + e * 256 + (lane & 7) * 16) = make_uint4(v, v, v, v);
        }
    }
    if (DQ && tid < 256) nm[0][tid] = nmv[0], nm[1][tid] = nmv[1], nm[2][tid] = nmv[2];
    for (int i = tid; i < maxT * nwarp * NW * 16; i += blockDim.x) tsum[i] = 0.f;
    // x (times the RMSNorm weight w' when nw is set: the norm's scalar 1/rms is applied to the
    // sums), scaled by s = 2^(14 − e) with its max = m·2^e (m in [0.5, 1)): fp16(s·x·w') (the
    // scaling exact: a power of two). Every block computes the same s and 1/rms.
    auto wq = [&](int i) { // elements 4i..4i+3 of w' (a weight: readable before the wait)
        float f0 = load_w(nw, 4 * i, ndt), f1 = load_w(nw, 4 * i + 1, ndt), f2 = load_w(nw, 4 * i + 2, ndt), f3 = load_w(nw, 4 * i + 3, ndt);
        if (addOne) f0 += 1.f, f1 += 1.f, f2 += 1.f, f3 += 1.f;
        return make_float4(f0, f1, f2, f3);
    };
    auto wAt = [&](int i) { return NORM ? wq(i) : make_float4(1.f, 1.f, 1.f, 1.f); }; // w' (ones without the norm)
    float4 wv[GT_XR]; // NORM: w' of the thread's first GT_XR float4
    if (NORM) {
#pragma unroll
        for (int j = 0; j < GT_XR; j++) {
            const int i = tid + j * blockDim.x;
            if (i < (K >> 2)) wv[j] = wq(i);
        }
    }
    grid_dep_wait(); // launched as a dependent: x and the outputs are the previous kernels' (nothing global read or written before)
    auto xw = [&](int i, float4 f) { // elements 4i..4i+3 of x·w' (f: w' there)
        float4 v = __ldg((const float4*)x + i);
        if (NORM) v = make_float4(v.x * f.x, v.y * f.y, v.z * f.z, v.w * f.w);
        return v;
    };
    float amax = 0.f;
    double ss = 0;
    float4 xv[GT_XR]; // the thread's first GT_XR float4 of x·w', kept for the staging
    auto scan = [&](int i, float4 f) {
        if (NORM) { // the norm's sum of squares, of x itself, in float64 (as kernels/norm.cu)
            float4 r = __ldg((const float4*)x + i);
            ss += (double)r.x * r.x + (double)r.y * r.y + (double)r.z * r.z + (double)r.w * r.w;
        }
        float4 v = xw(i, f);
        amax = fmaxf(amax, fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))));
        return v;
    };
#pragma unroll
    for (int j = 0; j < GT_XR; j++) {
        const int i = tid + j * blockDim.x;
        if (i < (K >> 2)) xv[j] = scan(i, NORM ? wv[j] : make_float4(1.f, 1.f, 1.f, 1.f));
    }
    for (int i = tid + GT_XR * blockDim.x; i < (K >> 2); i += blockDim.x) scan(i, wAt(i));
    amax = warp_max(amax);
    if (NORM) ss = warp_sum_d(ss);
    if (lane == 0) {
        redf[warp] = amax;
        redd[warp] = ss;
    }
    __syncthreads();
    amax = 0.f;
    double tot = 0;
    for (int w = 0; w < nwarp; w++) {
        amax = fmaxf(amax, redf[w]);
        tot += redd[w];
    }
    int ex = 14;
    if (amax > 0.f && amax <= 3.0e38f) frexpf(amax, &ex);
    const float sc = ldexpf(1.f, 14 - ex);
    float inv = ldexpf(1.f, ex - 14);
    if (NORM) inv *= (float)(1.0 / sqrt(tot / K + (double)eps)); // 1/rms, as kernels/norm.cu
    auto stage = [&](int i, float4 v) { // odd segments rotated by 32 bytes
        const int s = i >> 4;
        *(uint2*)(sm + xb + s * xs + (((i & 15) * 8 + (s & 1) * 32) & 127)) =
            make_uint2(pack_f16x2(v.x * sc, v.y * sc), pack_f16x2(v.z * sc, v.w * sc));
    };
#pragma unroll
    for (int j = 0; j < GT_XR; j++) {
        const int i = tid + j * blockDim.x;
        if (i < (K >> 2)) stage(i, xv[j]);
    }
    for (int i = tid + GT_XR * blockDim.x; i < (K >> 2); i += blockDim.x) stage(i, xw(i, wAt(i)));
    __syncthreads(); // the table, the nested maps, x and the zeroed tile sums
    // emit: the output of row r of tile `tile` from its final sums v (times inv)
    auto emit = [&](int tile, int r, const float(&v)[NW]) {
        if (NW == 2) {
            int n = tile * 16 + r;
            if (n < S.N[0]) S.out[0][n] = silu_mul(v[0], v[NW - 1]); // silu(gate)·up, as kernels/elementwise.cu swiglu
        } else {
            const int i = wid(tile);
            int t0 = i == 0 ? 0 : (i == 1 ? S.tileEnd[0] : S.tileEnd[1]), nN = i == 0 ? S.N[0] : (i == 1 ? S.N[1] : S.N[2]);
            float* o = i == 0 ? S.out[0] : (i == 1 ? S.out[1] : S.out[2]);
            int n = (tile - t0) * 16 + r;
            if (n < nN) o[n] = beta == 0.f ? alpha * v[0] : alpha * v[0] + beta * o[n];
        }
    };
    float acc[NW][2];
#pragma unroll
    for (int k = 0; k < NW; k++) acc[k][0] = acc[k][1] = 0.f;
    int cu = u0, ct = u0 / npair, cs = 2 * (u0 - ct * npair); // compute cursor
    int cid = 0;                                             // the compute cursor's weight (NW = 1) and its nested offset
    float cnoff = 0.f;
    auto setCid = [&]() {
        cid = wid(ct);
        cnoff = cid == 0 ? S.w[0].noff : (cid == 1 ? S.w[1].noff : S.w[2].noff);
    };
    setCid();
    // flush: the warp's sums of tile ct are complete (its last unit of the tile): to its slot
    auto flush = [&]() {
        if (t == 0) {
            float* slot = tsum + ((ct - tb0) * nwarp + warp) * (NW * 16);
#pragma unroll
            for (int k = 0; k < NW; k++) {
                slot[k * 16 + g] = acc[k][0] * inv;
                slot[k * 16 + g + 8] = acc[k][1] * inv;
            }
        }
#pragma unroll
        for (int k = 0; k < NW; k++) acc[k][0] = acc[k][1] = 0.f;
    };
    // the lane's x column: its codes' segment t/2 matches its B column g's parity, else zeros (the
    // lanes of the other parity never load: their registers stay zero): byte xl + cs·xs +
    // ((xr0 + 16j) & 127)
    const bool xon = (t >> 1) == (g & 1);
    const int xl = xb + (t >> 1) * xs, xr0 = (t & 1) * 64 + (t >> 1) * 32;
    uint4 xr[4];
#pragma unroll
    for (int j = 0; j < 4; j++) xr[j] = make_uint4(0u, 0u, 0u, 0u);
    auto step = [&](GtBuf(&buf)[NW]) {
        if (xon) {
#pragma unroll
            for (int j = 0; j < 4; j++) xr[j] = *(const uint4*)(sm + xl + cs * xs + ((xr0 + 16 * j) & 127));
        }
#pragma unroll
        for (int k = 0; k < NW; k++) {
            const GtBuf& b = buf[k];
            float c[4] = {0.f, 0.f, 0.f, 0.f}, d[4] = {0.f, 0.f, 0.f, 0.f}; // two accumulation chains
#pragma unroll
            for (int j = 0; j < 4; j++) { // register j of the lane's 16 code bytes: two mmas
                const u32 wa = j == 0 ? b.c[0].x : j == 1 ? b.c[0].y : j == 2 ? b.c[0].z : b.c[0].w;
                const u32 wb = j == 0 ? b.c[1].x : j == 1 ? b.c[1].y : j == 2 ? b.c[1].z : b.c[1].w;
                mma_f16_16816(c, GT_PAIR(wa, 0), GT_PAIR(wb, 0), GT_PAIR(wa, 1), GT_PAIR(wb, 1), xr[j].x, xr[j].y);
                mma_f16_16816(d, GT_PAIR(wa, 2), GT_PAIR(wb, 2), GT_PAIR(wa, 3), GT_PAIR(wb, 3), xr[j].z, xr[j].w);
            }
#pragma unroll
            for (int i = 0; i < 4; i++) c[i] += d[i];
            float m[2][2]; // [row][segment]
#pragma unroll
            for (int r = 0; r < 2; r++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    if (DQ) {
                        const float* nmk = nm[NW == 2 ? k : cid];
                        const float noff = NW == 2 ? (k == 0 ? S.w[0].noff : S.w[1].noff) : cnoff;
                        m[r][e] = __fadd_rn(__fmul_rn(nmk[(b.q >> (16 * r + 8 * e)) & 255u], b.a[r][0]), noff);
                    } else {
                        m[r][e] = b.a[r][e];
                    }
                }
            acc[k][0] = fmaf(m[0][1], c[1], fmaf(m[0][0], c[0], acc[k][0]));
            acc[k][1] = fmaf(m[1][1], c[3], fmaf(m[1][0], c[2], acc[k][1]));
        }
        cu++;
        cs += 2;
        if (cs >= nseg || cu == u1) flush();
        if (cs >= nseg) {
            cs = 0;
            ct++;
            if (NW == 1) setCid();
        }
    };
    while (cu < u1) {
#pragma unroll
        for (int i = 0; i < NB; i++) {
            if (cu < u1) {
                loadNext(bufs[(i + NB - 1) % NB]);
                step(bufs[i]);
            }
        }
    }
    __syncthreads(); // every warp's tile sums
    for (int i = tid; i < (tb1 - tb0) * 16; i += blockDim.x) { // (tile, row): the warps' slots in warp order
        const int tl = i >> 4, r = i & 15;
        float v[NW];
#pragma unroll
        for (int k = 0; k < NW; k++) {
            v[k] = 0.f;
            for (int w = 0; w < nwarp; w++) v[k] += tsum[(tl * nwarp + w) * (NW * 16) + k * 16 + r];
        }
        emit(tb0 + tl, r, v);
    }
}
#undef GT_PAIR
// GT_W(i): weight i's kernel parameters.
#define GT_W(i) float *out##i, int N##i, const unsigned char *packed##i, const float *absmax##i, const unsigned char *codes##i, \
                const float *nabs##i, const float *nmap##i, float noff##i, int nsh##i
#define GT_SET(i) S.w[i] = GtW{packed##i, absmax##i, codes##i, nabs##i, noff##i, nsh##i}; S.out[i] = out##i; \
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
    gemv4t_run<1, DQ, B64, false>(S, x, K, alpha, beta, codebook, bsh, nw, ndt, eps, addOne);
#define GT3_BODY(DQ, B64, NORM)                                                                   \
    GtSet S;                                                                                 \
    GT_SET(0) GT_SET(1) GT_SET(2)                                                            \
    S.tileEnd[0] = (N0 + 15) >> 4;                                                           \
    S.tileEnd[1] = S.tileEnd[0] + ((N1 + 15) >> 4);                                          \
    S.tileEnd[2] = S.tileEnd[1] + ((N2 + 15) >> 4);                                          \
    gemv4t_run<1, DQ, B64, NORM>(S, x, K, alpha, beta, codebook, bsh, nw, ndt, eps, addOne);
extern "C" __global__ __launch_bounds__(32 * GT_WARPS1, 1) void gemv4t_dq_64(GT_COMMON, GT_W(0)) { GT1_BODY(true, true) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS1, 1) void gemv4t_dq_g(GT_COMMON, GT_W(0)) { GT1_BODY(true, false) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS1, 1) void gemv4t_ab_64(GT_COMMON, GT_W(0)) { GT1_BODY(false, true) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS1, 1) void gemv4t_ab_g(GT_COMMON, GT_W(0)) { GT1_BODY(false, false) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS1, 1) void gemv4t3_dq_64(GT_COMMON, GT_W(0), GT_W(1), GT_W(2)) { GT3_BODY(true, true, false) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS1, 1) void gemv4t3_dq_g(GT_COMMON, GT_W(0), GT_W(1), GT_W(2)) { GT3_BODY(true, false, false) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS1, 1) void gemv4t3_ab_64(GT_COMMON, GT_W(0), GT_W(1), GT_W(2)) { GT3_BODY(false, true, false) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS1, 1) void gemv4t3_ab_g(GT_COMMON, GT_W(0), GT_W(1), GT_W(2)) { GT3_BODY(false, false, false) }
// gemv4t3n_…: gemv4t3 with the RMSNorm (nw) folded in.
extern "C" __global__ __launch_bounds__(32 * GT_WARPS1, 1) void gemv4t3n_dq_64(GT_COMMON, GT_W(0), GT_W(1), GT_W(2)) { GT3_BODY(true, true, true) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS1, 1) void gemv4t3n_dq_g(GT_COMMON, GT_W(0), GT_W(1), GT_W(2)) { GT3_BODY(true, false, true) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS1, 1) void gemv4t3n_ab_64(GT_COMMON, GT_W(0), GT_W(1), GT_W(2)) { GT3_BODY(false, true, true) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS1, 1) void gemv4t3n_ab_g(GT_COMMON, GT_W(0), GT_W(1), GT_W(2)) { GT3_BODY(false, false, true) }
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
    gemv4t_run<2, DQ, B64, NORM>(S, x, K, 1.f, 0.f, codebook, bsh, nw, ndt, eps, addOne);
extern "C" __global__ __launch_bounds__(32 * GT_WARPS2, 1) void gemv4t_swiglu_dq_64(GT_COMMON, GT_W(0), GT_W(1)) { GS_BODY(true, true, false) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS2, 1) void gemv4t_swiglu_dq_g(GT_COMMON, GT_W(0), GT_W(1)) { GS_BODY(true, false, false) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS2, 1) void gemv4t_swiglu_ab_64(GT_COMMON, GT_W(0), GT_W(1)) { GS_BODY(false, true, false) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS2, 1) void gemv4t_swiglu_ab_g(GT_COMMON, GT_W(0), GT_W(1)) { GS_BODY(false, false, false) }
// gemv4t_swiglun_…: gemv4t_swiglu with the RMSNorm (nw) folded in.
extern "C" __global__ __launch_bounds__(32 * GT_WARPS2, 1) void gemv4t_swiglun_dq_64(GT_COMMON, GT_W(0), GT_W(1)) { GS_BODY(true, true, true) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS2, 1) void gemv4t_swiglun_dq_g(GT_COMMON, GT_W(0), GT_W(1)) { GS_BODY(true, false, true) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS2, 1) void gemv4t_swiglun_ab_64(GT_COMMON, GT_W(0), GT_W(1)) { GS_BODY(false, true, true) }
extern "C" __global__ __launch_bounds__(32 * GT_WARPS2, 1) void gemv4t_swiglun_ab_g(GT_COMMON, GT_W(0), GT_W(1)) { GS_BODY(false, false, true) }
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
