package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/finlora/finlora/runtime/cuda"
	"github.com/finlora/finlora/runtime/tensor"
)

func init() {
	register("doctor", "report the CUDA driver, libraries and GPUs (exits 0 without a GPU)", runDoctor)
}

// runDoctor prints what CUDA support this machine has. Missing pieces are reported, not errors:
// the CPU backend works everywhere. With -compile it also compiles every embedded kernel with NVRTC
// for the first GPU's arch (or -arch) and reports the cache.
func runDoctor(args []string) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	compile := fs.Bool("compile", false, "compile every embedded kernel with NVRTC (needs libnvrtc, not a GPU)")
	arch := fs.String("arch", "", "arch for -compile when no GPU is present (e.g. sm_90)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	w := os.Stdout
	fmt.Fprintf(w, "finlora %s doctor\n", version)
	fmt.Fprintf(w, "backends registered: %v; FINLORA_DEVICE=%q\n", tensor.Registered(), os.Getenv("FINLORA_DEVICE"))

	gpus := 0
	if maj, min, err := cuda.DriverVersion(); err != nil {
		fmt.Fprintf(w, "CUDA driver: not available: %v\n", err)
	} else {
		lib, _ := cuda.DriverLib()
		fmt.Fprintf(w, "CUDA driver: API %d.%d, %s (%s)\n", maj, min, lib.Path, lib.How)
		infos, err := cuda.Devices()
		if err != nil {
			fmt.Fprintf(w, "GPUs: %v\n", err)
		}
		gpus = len(infos)
		for _, i := range infos {
			fmt.Fprintf(w, "GPU %d: %s, %.1f GiB, compute capability %d.%d (%s), %d SMs, L2 %d MiB\n",
				i.Index, i.Name, float64(i.TotalMemory)/(1<<30), i.Major, i.Minor, i.Arch(), i.SMs, i.L2Bytes>>20)
		}
	}
	if maj, min, lib, err := cuda.NVRTCVersion(); err != nil {
		fmt.Fprintf(w, "NVRTC: not available: %v\n", err)
	} else {
		fmt.Fprintf(w, "NVRTC: %d.%d, %s (%s)\n", maj, min, lib.Path, lib.How)
	}
	if v, lib, err := cuda.CublasLtVersion(); err != nil {
		fmt.Fprintf(w, "cuBLASLt: not available: %v\n", err)
	} else {
		fmt.Fprintf(w, "cuBLASLt: %d.%d.%d, %s (%s)\n", v/10000, v/100%100, v%100, lib.Path, lib.How)
	}
	fmt.Fprintf(w, "kernel cache: %s (%d kernels embedded)\n", cuda.CacheDir(), len(cuda.KernelNames()))
	if *compile {
		a := *arch
		if a == "" && gpus > 0 {
			infos, _ := cuda.Devices()
			a = infos[0].Arch()
		}
		if a == "" {
			a = "sm_90"
		}
		start := time.Now()
		lines, err := cuda.CompileAll(a)
		for _, l := range lines {
			fmt.Fprintf(w, "  %s\n", l)
		}
		if err != nil {
			fmt.Fprintf(w, "kernel compile for %s failed: %v\n", a, err)
		} else {
			fmt.Fprintf(w, "kernels compiled for %s in %v\n", a, time.Since(start).Round(time.Millisecond))
		}
	}
	if gpus == 0 {
		fmt.Fprintln(w, "no GPU found: finlora runs on the CPU backend")
		return nil
	}
	b, err := tensor.Default()
	if err != nil {
		fmt.Fprintf(w, "default backend: %v\n", err)
		return nil
	}
	fmt.Fprintf(w, "default backend: %s (%s)\n", b.Name(), b.Capabilities().Device)
	return nil
}
