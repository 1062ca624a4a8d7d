package cuda

import (
	"os"
	"testing"
)

// TestKernelsCompile compiles every kernels/*.cu with NVRTC for sm_90 (no GPU needed, only
// libnvrtc; point FINLORA_CUDA_PATH at it). Skips when NVRTC is absent unless FINLORA_REQUIRE_GPU=1.
func TestKernelsCompile(t *testing.T) {
	if _, _, _, err := NVRTCVersion(); err != nil {
		if os.Getenv("FINLORA_REQUIRE_GPU") == "1" {
			t.Fatalf("NVRTC required: %v", err)
		}
		t.Skipf("no NVRTC: %v", err)
	}
	t.Setenv("FINLORA_CACHE", t.TempDir())
	lines, err := CompileAll("sm_90")
	for _, l := range lines {
		t.Log(l)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(KernelNames()) < 20 {
		t.Errorf("only %d kernels found: %v", len(KernelNames()), KernelNames())
	}
}
