package kernel

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/go-zeromq/zmq4"
)

// socket is a zmq4 socket with a lock that serializes sends from several goroutines and the
// kernel's signer for what goes out on it.
type socket struct {
	name string // "shell", "control", "stdin", "iopub", "hb"
	zs   zmq4.Socket
	mu   sync.Mutex
}

// listen creates a socket of the given kind bound to ci's port for it. A port of 0 binds a free
// TCP port and stores it back through port.
func listen(ctx context.Context, name string, newSock func(context.Context, ...zmq4.Option) zmq4.Socket,
	ci ConnectionInfo, port *int) (*socket, error) {
	zs := newSock(ctx)
	ep := ci.endpoint(*port)
	if err := zs.Listen(ep); err != nil {
		zs.Close()
		return nil, fmt.Errorf("%s socket: listen on %s: %w", name, ep, err)
	}
	if *port == 0 {
		if a, ok := zs.Addr().(*net.TCPAddr); ok {
			*port = a.Port
		}
	}
	return &socket{name: name, zs: zs}, nil
}

// sendFrames sends one multipart message.
func (s *socket) sendFrames(frames [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.zs.Send(zmq4.NewMsgFrom(frames...)); err != nil {
		return fmt.Errorf("send on %s: %w", s.name, err)
	}
	return nil
}

// sockets holds the five sockets of a kernel.
type sockets struct {
	shell, control, stdin, iopub, hb *socket
}

// openSockets binds all five sockets described by ci (ports of 0 are filled in).
func openSockets(ctx context.Context, ci *ConnectionInfo) (*sockets, error) {
	var ss sockets
	var err error
	steps := []struct {
		name string
		dst  **socket
		mk   func(context.Context, ...zmq4.Option) zmq4.Socket
		port *int
	}{
		{"shell", &ss.shell, zmq4.NewRouter, &ci.ShellPort},
		{"control", &ss.control, zmq4.NewRouter, &ci.ControlPort},
		{"stdin", &ss.stdin, zmq4.NewRouter, &ci.StdinPort},
		{"iopub", &ss.iopub, zmq4.NewPub, &ci.IOPubPort},
		{"hb", &ss.hb, zmq4.NewRep, &ci.HBPort},
	}
	for _, st := range steps {
		if *st.dst, err = listen(ctx, st.name, st.mk, *ci, st.port); err != nil {
			ss.close()
			return nil, err
		}
	}
	return &ss, nil
}

// close closes every open socket.
func (ss *sockets) close() {
	for _, s := range []*socket{ss.shell, ss.control, ss.stdin, ss.iopub, ss.hb} {
		if s != nil {
			s.zs.Close()
		}
	}
}
