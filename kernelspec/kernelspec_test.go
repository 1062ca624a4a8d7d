package kernelspec

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func TestInstall(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "finlora")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	kernels := filepath.Join(dir, "share", "jupyter", "kernels")
	dest, err := Install(kernels, DefaultName, bin)
	if err != nil {
		t.Fatal(err)
	}
	if dest != filepath.Join(kernels, "finlora") {
		t.Errorf("installed into %s", dest)
	}
	b, err := os.ReadFile(filepath.Join(dest, "kernel.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	argv, _ := json.Marshal(spec["argv"])
	if want := `["` + bin + `","kernel","--connection-file","{connection_file}"]`; string(argv) != want {
		t.Errorf("argv %s, want %s", argv, want)
	}
	if spec["display_name"] != "Go (FinLoRA)" || spec["language"] != "go" || spec["interrupt_mode"] != "message" {
		t.Errorf("kernel.json %s", b)
	}
	for _, tc := range []struct {
		file string
		size int
	}{{"logo-32x32.png", 32}, {"logo-64x64.png", 64}} {
		data, err := os.ReadFile(filepath.Join(dest, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if b := img.Bounds(); b.Dx() != tc.size || b.Dy() != tc.size {
			t.Errorf("%s is %v", tc.file, b)
		}
	}
	// Another name: another folder, distinguishable display name.
	dest2, err := Install(kernels, "finlora-dev", bin)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(dest2, "kernel.json"))
	json.Unmarshal(b, &spec)
	if spec["display_name"] != "Go (FinLoRA) [finlora-dev]" {
		t.Errorf("display_name %v", spec["display_name"])
	}
}

func TestInstallErrors(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "f")
	os.WriteFile(notExec, nil, 0o644)
	for _, tc := range []struct{ name, bin string }{
		{"bad/name", notExec}, {"", notExec}, {"ok", filepath.Join(dir, "missing")}, {"ok", notExec}, {"ok", dir},
	} {
		if _, err := Install(dir, tc.name, tc.bin); err == nil {
			t.Errorf("Install(%q, %q) succeeded", tc.name, tc.bin)
		}
	}
}

func TestDirs(t *testing.T) {
	t.Setenv("JUPYTER_DATA_DIR", "/data/j")
	if d, _ := UserKernelsDir(); d != "/data/j/kernels" {
		t.Errorf("UserKernelsDir with JUPYTER_DATA_DIR: %s", d)
	}
	t.Setenv("JUPYTER_DATA_DIR", "")
	t.Setenv("HOME", "/home/u")
	t.Setenv("XDG_DATA_HOME", "")
	if d, _ := UserKernelsDir(); d != "/home/u/.local/share/jupyter/kernels" {
		t.Errorf("UserKernelsDir default: %s", d)
	}
	if d := PrefixKernelsDir("/opt/env/"); d != "/opt/env/share/jupyter/kernels" {
		t.Errorf("PrefixKernelsDir: %s", d)
	}
}
