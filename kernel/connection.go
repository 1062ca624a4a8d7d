package kernel

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
)

// ConnectionInfo is the content of a Jupyter connection file: where the five sockets listen and
// how messages are signed. A port of 0 asks New to pick a free TCP port; Kernel.Info reports the
// ports actually bound.
type ConnectionInfo struct {
	Transport       string `json:"transport"` // "tcp" or "ipc"
	IP              string `json:"ip"`        // address to bind (tcp) or path prefix (ipc)
	ShellPort       int    `json:"shell_port"`
	ControlPort     int    `json:"control_port"`
	StdinPort       int    `json:"stdin_port"`
	IOPubPort       int    `json:"iopub_port"`
	HBPort          int    `json:"hb_port"`
	Key             string `json:"key"`              // HMAC key, used as its UTF-8 bytes; empty: no signing
	SignatureScheme string `json:"signature_scheme"` // "hmac-sha256" (the only one supported) or empty
	KernelName      string `json:"kernel_name,omitempty"`
}

// ReadConnectionFile parses the connection file at path and checks that the kernel can use it.
func ReadConnectionFile(path string) (ConnectionInfo, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return ConnectionInfo{}, fmt.Errorf("read connection file: %w", err)
	}
	var ci ConnectionInfo
	if err := json.Unmarshal(b, &ci); err != nil {
		return ConnectionInfo{}, fmt.Errorf("parse connection file %s: %w", path, err)
	}
	if err := ci.validate(); err != nil {
		return ConnectionInfo{}, fmt.Errorf("connection file %s: %w", path, err)
	}
	return ci, nil
}

// validate fills defaults (transport tcp, ip 127.0.0.1, scheme hmac-sha256) and rejects what the
// kernel cannot serve.
func (ci *ConnectionInfo) validate() error {
	if ci.Transport == "" {
		ci.Transport = "tcp"
	}
	if ci.Transport != "tcp" && ci.Transport != "ipc" {
		return fmt.Errorf("transport %q: want tcp or ipc", ci.Transport)
	}
	if ci.IP == "" {
		if ci.Transport == "tcp" {
			ci.IP = "127.0.0.1"
		} else {
			return fmt.Errorf("transport ipc needs ip (the socket path prefix)")
		}
	}
	if ci.SignatureScheme == "" {
		ci.SignatureScheme = "hmac-sha256"
	}
	if ci.SignatureScheme != "hmac-sha256" {
		return fmt.Errorf("signature_scheme %q: only hmac-sha256 is supported", ci.SignatureScheme)
	}
	for name, p := range map[string]int{"shell_port": ci.ShellPort, "control_port": ci.ControlPort,
		"stdin_port": ci.StdinPort, "iopub_port": ci.IOPubPort, "hb_port": ci.HBPort} {
		if p < 0 || p > 65535 {
			return fmt.Errorf("%s %d out of range", name, p)
		}
		if p == 0 && ci.Transport == "ipc" {
			return fmt.Errorf("%s: ipc transport needs explicit socket numbers", name)
		}
	}
	return nil
}

// endpoint is the ZeroMQ address of one socket: tcp://IP:PORT ([IP]:PORT for IPv6) or ipc://IP-PORT.
func (ci ConnectionInfo) endpoint(port int) string {
	if ci.Transport == "ipc" {
		return fmt.Sprintf("ipc://%s-%d", ci.IP, port)
	}
	return "tcp://" + net.JoinHostPort(ci.IP, strconv.Itoa(port))
}
