// Package kernelspec holds the Jupyter kernel specification of the finlora kernel (kernel.json
// and two logos, embedded) and installs it where Jupyter looks for kernels.
package kernelspec

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

//go:generate go run gen_logos.go

var (
	//go:embed kernel.json
	kernelJSON []byte
	//go:embed logo-32x32.png
	logo32 []byte
	//go:embed logo-64x64.png
	logo64 []byte
)

// DefaultName is the kernel name front ends select (jupyter console --kernel finlora).
const DefaultName = "finlora"

// Spec is the content of kernel.json.
type Spec struct {
	Argv          []string          `json:"argv"` // command line; {connection_file} is filled in by Jupyter
	DisplayName   string            `json:"display_name"`
	Language      string            `json:"language"`
	InterruptMode string            `json:"interrupt_mode"` // "message": interrupts arrive as interrupt_request
	Env           map[string]string `json:"env,omitempty"`
	Metadata      map[string]any    `json:"metadata,omitempty"`
}

// NewSpec returns the kernel spec for the finlora binary at binaryPath (made absolute) under the
// kernel name name: argv = [binary, "kernel", "--connection-file", "{connection_file}"].
func NewSpec(name, binaryPath string) (Spec, error) {
	var s Spec
	if err := json.Unmarshal(kernelJSON, &s); err != nil {
		return Spec{}, fmt.Errorf("embedded kernel.json: %w", err)
	}
	abs, err := filepath.Abs(binaryPath)
	if err != nil {
		return Spec{}, fmt.Errorf("kernel binary %s: %w", binaryPath, err)
	}
	for i, a := range s.Argv {
		if a == "{binary}" {
			s.Argv[i] = abs
		}
	}
	if name != DefaultName {
		s.DisplayName = fmt.Sprintf("%s [%s]", s.DisplayName, name)
	}
	return s, nil
}

var validName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// Install writes the kernel spec named name into dir/name (dir is a "kernels" folder such as
// UserKernelsDir()): kernel.json, logo-32x32.png and logo-64x64.png, replacing an earlier
// install. binaryPath must be an existing executable file. It returns the folder written.
func Install(dir, name, binaryPath string) (string, error) {
	if !validName.MatchString(name) {
		return "", fmt.Errorf("kernel name %q: use letters, digits, '.', '_' and '-' only", name)
	}
	st, err := os.Stat(binaryPath)
	if err != nil {
		return "", fmt.Errorf("kernel binary: %w", err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("kernel binary %s is not an executable file", binaryPath)
	}
	spec, err := NewSpec(name, binaryPath)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", " ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(spec); err != nil {
		return "", fmt.Errorf("encode kernel.json: %w", err)
	}
	dest := filepath.Join(dir, name)
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return "", fmt.Errorf("install kernel spec: %w", err)
	}
	for file, data := range map[string][]byte{"kernel.json": buf.Bytes(), "logo-32x32.png": logo32, "logo-64x64.png": logo64} {
		if err := os.WriteFile(filepath.Join(dest, file), data, 0o644); err != nil {
			return "", fmt.Errorf("install kernel spec: %w", err)
		}
	}
	return dest, nil
}

// UserDataDir is the user's Jupyter data folder: $JUPYTER_DATA_DIR, else ~/Library/Jupyter on
// macOS, else $XDG_DATA_HOME/jupyter, else ~/.local/share/jupyter.
func UserDataDir() (string, error) {
	if d := os.Getenv("JUPYTER_DATA_DIR"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the Jupyter data folder: %w", err)
	}
	if runtime.GOOS == "darwin" {
		return filepath.Join(home, "Library", "Jupyter"), nil
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "jupyter"), nil
	}
	return filepath.Join(home, ".local", "share", "jupyter"), nil
}

// UserKernelsDir is UserDataDir()/kernels, where --user installs go.
func UserKernelsDir() (string, error) {
	d, err := UserDataDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "kernels"), nil
}

// PrefixKernelsDir is PREFIX/share/jupyter/kernels, where --prefix installs go (a virtualenv or
// conda prefix, or /usr/local for a system-wide install).
func PrefixKernelsDir(prefix string) string {
	return filepath.Join(strings.TrimRight(prefix, "/"), "share", "jupyter", "kernels")
}
