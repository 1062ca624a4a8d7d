package cpu

import (
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tensor/tensortest"
)

func TestConformance(t *testing.T) {
	for _, workers := range []int{1, 3} {
		tensortest.Run(t, New(workers))
	}
}

// The pure-Go kernels (used where AVX2 is missing) pass the suite too.
func TestConformanceGoKernels(t *testing.T) {
	saved := haveAVX2
	haveAVX2 = false
	defer func() { haveAVX2 = saved }()
	tensortest.Run(t, New(2))
}

func TestRegistry(t *testing.T) {
	b, err := tensor.Get("cpu")
	if err != nil {
		t.Fatal(err)
	}
	if b2, _ := tensor.Get("cpu"); b2 != b {
		t.Error("tensor.Get(\"cpu\") returned two instances")
	}
	if _, err := tensor.Get("tpu"); err == nil {
		t.Error("tensor.Get(\"tpu\") succeeded")
	}
}
