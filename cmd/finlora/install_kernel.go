package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/finlora/finlora/kernelspec"
)

func init() {
	register("install-kernel", "register the Go (FinLoRA) Jupyter kernel (kernel.json and logos)", runInstallKernel)
}

// runInstallKernel implements: finlora install-kernel [--user | --prefix DIR] [--name NAME].
// The kernel spec points at this very binary (its absolute, symlink-resolved path).
func runInstallKernel(args []string) error {
	fs := flag.NewFlagSet("install-kernel", flag.ContinueOnError)
	user := fs.Bool("user", false, "install for the current user: $JUPYTER_DATA_DIR/kernels, else ~/.local/share/jupyter/kernels (the default)")
	prefix := fs.String("prefix", "", "install into `DIR`/share/jupyter/kernels (a virtualenv, conda env or /usr/local)")
	name := fs.String("name", kernelspec.DefaultName, "kernel `NAME` (jupyter console --kernel NAME)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: finlora install-kernel [--user | --prefix DIR] [--name NAME]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *user && *prefix != "" {
		return fmt.Errorf("%w: --user and --prefix exclude each other", errUsage)
	}
	var dir string
	if *prefix != "" {
		dir = kernelspec.PrefixKernelsDir(*prefix)
	} else {
		d, err := kernelspec.UserKernelsDir()
		if err != nil {
			return err
		}
		dir = d
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this binary: %w", err)
	}
	if r, err := filepath.EvalSymlinks(bin); err == nil {
		bin = r
	}
	dest, err := kernelspec.Install(dir, *name, bin)
	if err != nil {
		return err
	}
	fmt.Printf("installed kernel spec %q in %s (runs %s)\n", *name, dest, bin)
	return nil
}
