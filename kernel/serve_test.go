package kernel

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestServeStopsWithContext(t *testing.T) {
	dir := t.TempDir()
	conn := filepath.Join(dir, "kernel.json")
	// Ports of 0: the kernel binds free ports.
	os.WriteFile(conn, []byte(`{"ip": "127.0.0.1", "transport": "tcp", "key": "k", "signature_scheme": "hmac-sha256"}`), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, conn, &fakeEvaluator{}, WithLog(testLogWriter{t}), WithHistoryFile("-"))
	}()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Serve returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context was cancelled")
	}
	if err := Serve(context.Background(), filepath.Join(dir, "missing.json"), &fakeEvaluator{}); err == nil {
		t.Error("Serve with a missing connection file succeeded")
	}
	if _, err := New(ConnectionInfo{}, nil); err == nil {
		t.Error("New with a nil Evaluator succeeded")
	}
}
