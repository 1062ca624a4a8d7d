package kernel

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadConnectionFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, json string
		want       string // error substring; "" for success
		endpoint   string // endpoint of the shell port on success
	}{
		{"jupyter_client", `{"shell_port": 5001, "iopub_port": 5002, "stdin_port": 5003, "control_port": 5004,
			"hb_port": 5005, "ip": "127.0.0.1", "key": "a0b1", "transport": "tcp",
			"signature_scheme": "hmac-sha256", "kernel_name": "finlora"}`, "", "tcp://127.0.0.1:5001"},
		{"defaults", `{"shell_port": 1, "key": ""}`, "", "tcp://127.0.0.1:1"},
		{"ipv6", `{"shell_port": 7, "ip": "::1"}`, "", "tcp://[::1]:7"},
		{"ipc", `{"transport": "ipc", "ip": "/tmp/k", "shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5}`, "", "ipc:///tmp/k-1"},
		{"ipc without ports", `{"transport": "ipc", "ip": "/tmp/k"}`, "explicit socket numbers", ""},
		{"bad transport", `{"transport": "udp"}`, "transport", ""},
		{"bad scheme", `{"signature_scheme": "hmac-md5"}`, "hmac-md5", ""},
		{"bad port", `{"hb_port": 70000}`, "out of range", ""},
		{"not JSON", `{"shell_port": `, "parse connection file", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name+".json")
			os.WriteFile(p, []byte(tc.json), 0o600)
			ci, err := ReadConnectionFile(p)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := ci.endpoint(ci.ShellPort); got != tc.endpoint {
				t.Errorf("endpoint %s, want %s", got, tc.endpoint)
			}
		})
	}
	if _, err := ReadConnectionFile(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("missing file accepted")
	}
}
