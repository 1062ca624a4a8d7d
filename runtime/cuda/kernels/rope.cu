// rope.cu: rotary position embedding, HF's rotate_half layout.
#include "common.cuh"

// rope rotates x [rows = B·T, H, D] in place: for i < D/2 with c = cos[pos[row], i], s = sin[...],
// x'[i] = x[i]·c − x[i+D/2]·s, x'[i+D/2] = x[i+D/2]·c + x[i]·s. A position outside [0, P) sets
// *bad = 1 and leaves the row unchanged.
extern "C" __global__ void rope(float* x, const int* pos, const float* cosT, const float* sinT, int* bad, i64 rows, int H, int D, int P) {
    int half = D / 2;
    i64 n = rows * H * half;
    FOR_EACH(idx, n) {
        i64 row = idx / (H * half);
        int rem = (int)(idx % (H * half));
        int h = rem / half, i = rem % half;
        int p = pos[row];
        if (p < 0 || p >= P) {
            *bad = 1;
            continue;
        }
        float c = cosT[(i64)p * half + i], s = sinT[(i64)p * half + i];
        float* v = x + (row * H + h) * D;
        float a = v[i], b = v[i + half];
        v[i] = a * c - b * s;
        v[i + half] = b * c + a * s;
    }
}
