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
