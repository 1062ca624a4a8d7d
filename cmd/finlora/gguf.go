package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/finlora/finlora/runtime/gguf"
)

func init() {
	register("gguf", "show a GGUF file: metadata, tensor types, tensors (-tensors), dequantization check (-check)", runGGUF)
}

// runGGUF prints the header, metadata and tensor summary of a GGUF file.
func runGGUF(args []string) error {
	fs := flag.NewFlagSet("gguf", flag.ContinueOnError)
	tensors := fs.Bool("tensors", false, "list every tensor (name, GGML type, HF shape, bytes)")
	check := fs.Bool("check", false, "dequantize every tensor and report non-finite values")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: finlora gguf [-tensors] [-check] FILE.gguf")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: want one GGUF file, got %d arguments", errUsage, fs.NArg())
	}
	f, err := gguf.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	return describeGGUF(os.Stdout, f, *tensors, *check)
}

func describeGGUF(w io.Writer, f *gguf.File, listTensors, check bool) error {
	fmt.Fprintf(w, "%s: GGUF v%d, %d metadata keys, %d tensors, alignment %d, data at byte %d\n",
		f.Path(), f.Version(), len(f.Metadata().Keys()), len(f.Names()), f.Alignment(), f.DataOffset())
	md := f.Metadata()
	for _, k := range md.Keys() {
		v, _ := md.Get(k)
		s := v.String()
		if len(s) > 100 {
			s = s[:100] + "..."
		}
		fmt.Fprintf(w, "  %-45s %-8s %s\n", k, v.Type, s)
	}
	byType := map[gguf.Type][2]uint64{} // count, bytes
	var params uint64
	for _, t := range f.Tensors() {
		c := byType[t.Type]
		byType[t.Type] = [2]uint64{c[0] + 1, c[1] + t.Size}
		params += t.NumElements()
	}
	types := make([]gguf.Type, 0, len(byType))
	for t := range byType {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool { return types[i] < types[j] })
	fmt.Fprintf(w, "tensors: %d parameters\n", params)
	for _, t := range types {
		fmt.Fprintf(w, "  %-8s %4d tensors %12d bytes\n", t, byType[t][0], byType[t][1])
	}
	if listTensors || check {
		for _, t := range f.Tensors() {
			line := fmt.Sprintf("  %-40s %-6s %v %d bytes", t.Name, t.Type, t.Shape(), t.Size)
			if check {
				v, err := f.Float32(t.Name)
				if err != nil {
					return err
				}
				bad := 0
				for _, x := range v {
					if x != x || x > 3.4e38 || x < -3.4e38 {
						bad++
					}
				}
				line += fmt.Sprintf("  ok (%d non-finite)", bad)
			}
			if listTensors || check {
				fmt.Fprintln(w, line)
			}
		}
	}
	return nil
}
