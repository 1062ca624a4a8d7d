// rope.cu: rotary position embedding, HF's rotate_half layout.
#include "common.cuh"

// rope_pair rotates the pair (a, b) = (x[i], x[i+D/2]) by the angle of (c, s):
// a' = a·c − b·s, b' = b·c + a·s, each product rounded to float32 before the sum (no fused
// multiply-add), the CPU reference's arithmetic. rope and rope_qk_cache both use it, so their
// results are the same bits.
__device__ __forceinline__ void rope_pair(float a, float b, float c, float s, float* ra, float* rb) {
    *ra = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
    *rb = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
}

// rope_at locates pair idx of a [rows, H, D/2] grid of rotated pairs: its row, head h and pair i,
// and the row position's c = cos[pos[row], i], s = sin[...]. A position outside [0, P) sets
// *bad = 1 and returns false (the pair is left as it is).
__device__ __forceinline__ bool rope_at(i64 idx, int H, int half, const int* pos, const float* cosT, const float* sinT, int P,
                                        int* bad, i64& row, int& h, int& i, float& c, float& s) {
    row = idx / (H * half);
    int rem = (int)(idx % (H * half));
    h = rem / half, i = rem % half;
    int p = pos[row];
    if (p < 0 || p >= P) {
        *bad = 1;
        return false;
    }
    c = cosT[(i64)p * half + i], s = sinT[(i64)p * half + i];
    return true;
}

// rope rotates x [rows = B·T, H, D] in place: for i < D/2 with c = cos[pos[row], i], s = sin[...],
// x'[i] = x[i]·c − x[i+D/2]·s, x'[i+D/2] = x[i+D/2]·c + x[i]·s. A position outside [0, P) sets
// *bad = 1 and leaves the row unchanged.
extern "C" __global__ void rope(float* x, const int* pos, const float* cosT, const float* sinT, int* bad, i64 rows, int H, int D, int P) {
    int half = D / 2;
    i64 n = rows * H * half;
    FOR_EACH(idx, n) {
        i64 row;
        int h, i;
        float c, s;
        if (!rope_at(idx, H, half, pos, cosT, sinT, P, bad, row, h, i, c, s)) continue;
        float* v = x + (row * H + h) * D;
        rope_pair(v[i], v[i + half], c, s, &v[i], &v[i + half]);
    }
}

// rope_qk_cache is rope of q [rows = B·T, Hq, D] and of k [rows, Hkv, D] in place, then the
// rotated k and v [rows, Hkv, D] copied into the caches ck, cv [B, C, Hkv, D] at slots
// start..start+T−1 (row b·T + t goes to slot b·C + start + t): one thread a rotated pair, the
// threads of k's pairs also carrying v's two elements. A position outside [0, P) sets *bad = 1
// and leaves its row (q, k and the cache slots) unchanged.
extern "C" __global__ void rope_qk_cache(float* q, float* k, const float* v, float* ck, float* cv, const int* pos,
                                         const float* cosT, const float* sinT, int* bad, i64 rows, int T, int Hq,
                                         int Hkv, int D, int P, i64 C, i64 start) {
    grid_dep_wait(); // launched as a dependent (Backend.RopeQKCache): q, k and v are the previous kernels'
    grid_dep_launch();
    int half = D / 2;
    int H = Hq + Hkv;
    i64 n = rows * H * half;
    FOR_EACH(idx, n) {
        i64 row;
        int h, i;
        float c, s;
        if (!rope_at(idx, H, half, pos, cosT, sinT, P, bad, row, h, i, c, s)) continue;
        if (h < Hq) {
            float* x = q + (row * Hq + h) * D;
            rope_pair(x[i], x[i + half], c, s, &x[i], &x[i + half]);
            continue;
        }
        h -= Hq;
        i64 src = (row * Hkv + h) * D;
        i64 slot = (row / T) * C + start + row % T;
        i64 dst = (slot * Hkv + h) * D;
        float a, b;
        rope_pair(k[src + i], k[src + i + half], c, s, &a, &b);
        k[src + i] = a;
        k[src + i + half] = b;
        ck[dst + i] = a;
        ck[dst + i + half] = b;
        cv[dst + i] = v[src + i];
        cv[dst + i + half] = v[src + i + half];
    }
}
