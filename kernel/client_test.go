package kernel

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
)

// testClient is a minimal Jupyter front end over zmq4 for the dispatcher tests: DEALER sockets
// on shell, control and stdin, SUB on iopub, REQ on heartbeat. Every message it receives is
// verified with the connection key.
type testClient struct {
	t                     *testing.T
	k                     *Kernel
	sig                   *signer
	session               string
	shell, control, stdin zmq4.Socket
	iopub, hb             zmq4.Socket
	iopubC                chan *Message
	shellC, controlC      chan *Message
	stdinC                chan *Message
	runErr                chan error
	logBuf                *syncBuffer
	cancel                context.CancelFunc
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startKernel runs a kernel with ev on free ports and connects a client to it.
func startKernel(t *testing.T, ev Evaluator, opts ...Option) *testClient {
	t.Helper()
	logBuf := &syncBuffer{}
	opts = append([]Option{WithLog(io.MultiWriter(logBuf, testLogWriter{t})),
		WithHistoryFile(filepath.Join(t.TempDir(), "history.jsonl"))}, opts...)
	k, err := New(ConnectionInfo{Key: "test-key-" + t.Name()}, ev, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &testClient{t: t, k: k, sig: newSigner([]byte(k.info.Key)), session: "client-session",
		iopubC: make(chan *Message, 100000), shellC: make(chan *Message, 100), controlC: make(chan *Message, 100),
		stdinC: make(chan *Message, 10), runErr: make(chan error, 1), logBuf: logBuf, cancel: cancel}
	go func() { c.runErr <- k.Run(ctx) }()
	info := k.Info()
	id := zmq4.WithID(zmq4.SocketIdentity("test-client"))
	c.shell = zmq4.NewDealer(ctx, id)
	c.control = zmq4.NewDealer(ctx, id)
	c.stdin = zmq4.NewDealer(ctx, id)
	c.iopub = zmq4.NewSub(ctx)
	c.hb = zmq4.NewReq(ctx)
	for _, d := range []struct {
		s    zmq4.Socket
		port int
	}{{c.shell, info.ShellPort}, {c.control, info.ControlPort}, {c.stdin, info.StdinPort}, {c.iopub, info.IOPubPort}, {c.hb, info.HBPort}} {
		if err := d.s.Dial(info.endpoint(d.port)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.iopub.SetOption(zmq4.OptionSubscribe, ""); err != nil {
		t.Fatal(err)
	}
	go c.recvLoop(c.shell, c.shellC)
	go c.recvLoop(c.control, c.controlC)
	go c.recvLoop(c.stdin, c.stdinC)
	go c.recvLoop(c.iopub, c.iopubC)
	t.Cleanup(func() {
		cancel()
		for _, s := range []zmq4.Socket{c.shell, c.control, c.stdin, c.iopub, c.hb} {
			s.Close()
		}
		k.Close()
	})
	// Wait until the iopub subscription is live: ask kernel_info until a status arrives.
	deadline := time.Now().Add(10 * time.Second)
	for {
		id := c.send(c.shell, "kernel_info_request", map[string]any{})
		c.reply(c.shellC, id)
		select {
		case <-c.iopubC:
			c.drainIOPub(100 * time.Millisecond)
			return c
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("iopub never delivered a status message")
		}
	}
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

func (c *testClient) recvLoop(s zmq4.Socket, ch chan *Message) {
	for {
		zm, err := s.Recv()
		if err != nil {
			return
		}
		frames := zm.Frames
		if s.Type() == zmq4.Sub && len(frames) > 0 && !bytes.Equal(frames[0], delimiter) {
			frames = frames[1:] // the topic
		}
		m, err := decodeMessage(frames, c.sig)
		if err != nil {
			c.t.Errorf("client: kernel sent a bad message: %v", err)
			continue
		}
		ch <- m
	}
}

// sendRaw sends frames as they are (for malformed and badly signed messages).
func (c *testClient) sendRaw(s zmq4.Socket, frames [][]byte) {
	if err := s.Send(zmq4.NewMsgFrom(frames...)); err != nil {
		c.t.Fatal(err)
	}
}

// frames builds the signed frames of a request; sig overrides the signature when non-nil.
func (c *testClient) frames(msgType string, content any, sig []byte) ([][]byte, string) {
	raw, err := json.Marshal(content)
	if err != nil {
		c.t.Fatal(err)
	}
	m := &Message{Header: newHeader(msgType, c.session, "tester"), Content: raw}
	fr, err := m.encode(c.sig)
	if err != nil {
		c.t.Fatal(err)
	}
	if sig != nil {
		fr[1] = sig
	}
	return fr, m.Header.MsgID
}

// send sends a signed request and returns its msg_id.
func (c *testClient) send(s zmq4.Socket, msgType string, content any) string {
	fr, id := c.frames(msgType, content, nil)
	c.sendRaw(s, fr)
	return id
}

// reply waits for the reply to msgID on ch.
func (c *testClient) reply(ch chan *Message, msgID string) *Message {
	c.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-ch:
			if parentMsgID(m.ParentHeader) == msgID {
				return m
			}
		case <-timeout:
			c.t.Fatalf("no reply to %s", msgID)
		}
	}
}

// collect returns the iopub messages whose parent is msgID, from status busy to status idle
// (both included), failing if they do not come in time.
func (c *testClient) collect(msgID string) []*Message {
	c.t.Helper()
	var got []*Message
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m := <-c.iopubC:
			if parentMsgID(m.ParentHeader) != msgID {
				continue
			}
			got = append(got, m)
			if m.Header.MsgType == "status" && contentField(c.t, m, "execution_state") == "idle" {
				return got
			}
		case <-timeout:
			c.t.Fatalf("no status idle for %s; got %v", msgID, types(got))
		}
	}
}

// drainIOPub discards iopub messages until none arrives for d.
func (c *testClient) drainIOPub(d time.Duration) {
	for {
		select {
		case <-c.iopubC:
		case <-time.After(d):
			return
		}
	}
}

// execute runs code and returns the reply and the iopub messages of the request.
func (c *testClient) execute(code string, extra map[string]any) (*Message, []*Message) {
	c.t.Helper()
	content := map[string]any{"code": code, "silent": false, "store_history": true,
		"user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": true}
	for k, v := range extra {
		content[k] = v
	}
	id := c.send(c.shell, "execute_request", content)
	r := c.reply(c.shellC, id)
	return r, c.collect(id)
}

func contentMap(t *testing.T, m *Message) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(m.Content, &v); err != nil {
		t.Fatalf("%s content: %v", m.Header.MsgType, err)
	}
	return v
}

func contentField(t *testing.T, m *Message, key string) any {
	return contentMap(t, m)[key]
}

func types(ms []*Message) []string {
	var s []string
	for _, m := range ms {
		t := m.Header.MsgType
		if t == "status" {
			var c struct {
				S string `json:"execution_state"`
			}
			json.Unmarshal(m.Content, &c)
			t += ":" + c.S
		}
		s = append(s, t)
	}
	return s
}

func fmtTypes(ms []*Message) string { return fmt.Sprint(types(ms)) }

func zmqMsg(s string) zmq4.Msg { return zmq4.NewMsgString(s) }
