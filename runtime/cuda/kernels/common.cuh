// common.cuh: helpers shared by every kernel file (inlined into each file before NVRTC compiles it).
// No CUDA headers are included: bf16/f16 are handled as raw 16-bit patterns, so NVRTC needs no
// include path at run time.

typedef unsigned short u16;
typedef unsigned int u32;
typedef long long i64;

#define NEG_INF __int_as_float(0xff800000)
#define POS_INF __int_as_float(0x7f800000)

// Weight dtype codes passed to kernels (see dtypeCode in dtype.go).
#define DT_F32 0
#define DT_F16 1
#define DT_BF16 2

__device__ __forceinline__ float bf16_to_f32(u16 h) { return __uint_as_float(((u32)h) << 16); }

// Round to nearest even, NaN kept quiet: the same bits as tensor.Float32ToBF16.
__device__ __forceinline__ u16 f32_to_bf16(float f) {
    u32 b = __float_as_uint(f);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (u16)((b >> 16) | 0x40);
    return (u16)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

__device__ __forceinline__ float f16_to_f32(u16 h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

__device__ __forceinline__ u16 f32_to_f16(float f) {
    u16 h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}

// load_w reads element i of a float tensor of dtype dt as float32.
__device__ __forceinline__ float load_w(const void* p, i64 i, int dt) {
    if (dt == DT_BF16) return bf16_to_f32(((const u16*)p)[i]);
    if (dt == DT_F16) return f16_to_f32(((const u16*)p)[i]);
    return ((const float*)p)[i];
}

// store_w writes v as element i of a float tensor of dtype dt (rounding to nearest even).
__device__ __forceinline__ void store_w(void* p, i64 i, int dt, float v) {
    if (dt == DT_BF16) ((u16*)p)[i] = f32_to_bf16(v);
    else if (dt == DT_F16) ((u16*)p)[i] = f32_to_f16(v);
    else ((float*)p)[i] = v;
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ __forceinline__ double warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// block_sum / block_max reduce over the whole block (blockDim.x a multiple of 32, ≤ 1024); every
// thread gets the result. scratch holds 32 floats of shared memory.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) scratch[w] = v;
    __syncthreads();
    v = lane < nw ? scratch[lane] : 0.f;
    return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v, float* scratch) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[w] = v;
    __syncthreads();
    v = lane < nw ? scratch[lane] : NEG_INF;
    return warp_max(v);
}

__device__ __forceinline__ double block_sum_d(double v, double* scratch) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum_d(v);
    __syncthreads();
    if (lane == 0) scratch[w] = v;
    __syncthreads();
    v = lane < nw ? scratch[lane] : 0.0;
    return warp_sum_d(v);
}

// silu_mul is silu(g)·u = g·sigmoid(g)·u, SwiGLU's forward for one element (the swiglu kernels of
// elementwise.cu, gemv4t_swiglu's epilogue): one expression, so the same bits everywhere.
__device__ __forceinline__ float silu_mul(float g, float u) { return g / (1.f + expf(-g)) * u; }

// swiglu_grad: dgate and dup of one element of SwiGLU's backward, s = sigmoid(g):
// dg = y·u·s·(1 + g·(1−s)), du = y·g·s.
__device__ __forceinline__ void swiglu_grad(float y, float g, float u, float& dg, float& du) {
    float s = 1.f / (1.f + expf(-g));
    dg = y * u * s * (1.f + g * (1.f - s));
    du = y * g * s;
}

// grid_dep_wait waits, in a kernel launched with programmatic dependent launch (kernels.launchDependent),
// until the kernels before it on the stream have finished and their writes are visible; elsewhere
// (or before sm_90) it does nothing. grid_dep_launch lets the next such kernel start its blocks as
// this one's exit.
__device__ __forceinline__ void grid_dep_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void grid_dep_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}

// Grid-stride loop over n elements.
#define FOR_EACH(i, n) for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)gridDim.x * blockDim.x)
