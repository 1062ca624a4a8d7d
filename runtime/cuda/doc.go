// Package cuda is the GPU backend: it loads the NVIDIA driver (libcuda.so.1), NVRTC
// (libnvrtc.so.13/.12) and cuBLASLt (libcublasLt.so.13/.12) at run time with purego, so the binary
// builds with CGO_ENABLED=0 and still runs (on the CPU backend) where there is no GPU.
//
// Importing the package registers the backend as "cuda" (and "cuda:N"); tensor.Default() picks it
// when a GPU opens, unless FINLORA_DEVICE says otherwise (cpu, cuda, cuda:N).
//
// Layers, bottom up:
//
//   - lib.go: the library search (FINLORA_CUDA_PATH, the loader default, $CUDA_HOME/lib64,
//     /usr/local/cuda/lib64, Python site-packages nvidia/*/lib); a missing library is an error
//     wrapping ErrNoCUDA that names every place searched.
//   - driver.go, nvrtc.go, cublaslt.go: the C entry points; every status is checked and turned into
//     an *Error naming the call (cuGetErrorName/String, nvrtcGetErrorString, cublasLtGetStatus*).
//     DriverVersion, Devices, NVRTCVersion, CublasLtVersion report what was found (finlora doctor).
//   - device.go: Device (primary context, one non-blocking stream, events); alloc.go: the caching
//     Allocator with statistics by Purpose (weights, adapters, optimizer, activations, workspace);
//     an out-of-memory is an *OOMError with the sizes involved, and other allocations stay valid.
//   - module.go and kernels/*.cu: CUDA C kernels embedded in the binary, compiled by NVRTC for the
//     device's arch on first use and cached on disk (CacheDir: $FINLORA_CACHE/kernels or
//     ~/.cache/finlora/kernels) under a hash of source, options, arch and NVRTC version; launched
//     with cuLaunchKernel, or (kernels.launchDependent: the decode kernels gemv4t, rope_qk_cache,
//     attn_decode) with cuLaunchKernelEx and programmatic dependent launch, so their prologue runs
//     under the previous kernel's tail (FINLORA_PDL=0 turns it off). CompileAll compiles them all
//     with NVRTC alone (no GPU needed).
//   - backend.go, memory.go, ops.go, gemm.go, attention.go, backward.go: Backend, implementing
//     tensor.Backend and tensor.Backward. Storage: weights F32/F16/BF16, activations F32 (the
//     tensor package's contract), float32 math; Gemm via cuBLASLt with the precision of the weight
//     operand (BF16/F16 weights: the F32 operand is rounded to BF16/F16 and the tensor cores
//     accumulate in float32; F32 weights: a float32 product). Attention: bf16 tensor-core
//     FlashAttention-2 kernels for head dims 64/128 (attention_mma.cu; float32 softmax, F32
//     in and out), float32 tiled ones with FINLORA_ATTN=f32 (attention_tiled.cu), simple ones for
//     other head dims. optim.go, kernels/optim.cu: multi-tensor AdamW and gradient norm
//     (train.DeviceOptimizer).
//   - quantized.go, kernels/quant.cu: tensor.Quantized (NF4/FP4/LLM.int8 kept packed on the device,
//     dequantized into a workspace matrix for cuBLASLt; read directly by the decode GEMVs at up to
//     4 rows: gemv4t on the tensor cores at one row, fused for q/k/v and gate/up/SwiGLU).
//     Verified on an H100 (TestQuantizedMatchesCPU, TestQuantGEMV, TestGemv4tStreamK).
//   - profile.go: StartProfile/StopProfile, device time per kernel and matmul shape.
//
// Ownership: tensors are freed explicitly (Tensor.Free returns the block to the allocator's cache;
// Allocator.ReleaseCache gives cached blocks back to the driver). Ops are queued on the stream and
// return before the GPU finishes; transfers to the host and the ops that validate indices on the
// device (Embedding, Rope, CrossEntropy, CrossEntropyBackward) wait for it, so an asynchronous
// failure surfaces there or at Sync. The Backend serializes its methods with a mutex and makes the
// context current on the calling OS thread for each call, so any goroutine may use it.
//
// Tests that need a GPU skip without one, unless FINLORA_REQUIRE_GPU=1. scripts/build-gpu-bins.sh
// and scripts/gpu-check.sh build and run them on a GPU machine without Go.
package cuda
