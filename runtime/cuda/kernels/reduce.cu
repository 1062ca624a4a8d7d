// reduce.cu: column sums and the sum of squares (float64 accumulation).
#include "common.cuh"

// sum_rows: out[c] = beta·out[c] + Σ_r x[r, c] for x [rows, cols]; one thread per column, rows
// split over blockIdx.y chunks combined with a second pass is not needed: columns are independent,
// so each thread walks all rows (coalesced across the warp).
extern "C" __global__ void sum_rows(float* out, const float* x, float beta, i64 rows, i64 cols) {
    FOR_EACH(c, cols) {
        double s = 0;
        for (i64 r = 0; r < rows; r++) s += x[r * cols + c];
        out[c] = beta == 0.f ? (float)s : (float)(beta * (double)out[c] + s);
    }
}

// sum_squares: partial[blockIdx.x] = Σ x² over this block's grid-stride share (the host adds the
// partials).
extern "C" __global__ void sum_squares(double* partial, const void* x, int dt, i64 n) {
    __shared__ double sd[32];
    double s = 0;
    FOR_EACH(i, n) {
        double v = load_w(x, i, dt);
        s += v * v;
    }
    s = block_sum_d(s, sd);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}
