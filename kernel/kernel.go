package kernel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/user"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Option configures a Kernel.
type Option func(*options)

type options struct {
	implVersion   string
	banner        string
	log           io.Writer
	historyPath   string // "" → DefaultHistoryPath(); "-" → history kept in memory only
	stayOnRestart bool
}

// WithVersion sets implementation_version in kernel_info_reply (the finlora release).
func WithVersion(v string) Option { return func(o *options) { o.implVersion = v } }

// WithBanner sets the banner text a console shows at start.
func WithBanner(b string) Option { return func(o *options) { o.banner = b } }

// WithLog sends the kernel's log (dropped messages, handler errors) to w instead of os.Stderr.
func WithLog(w io.Writer) Option { return func(o *options) { o.log = w } }

// WithHistoryFile keeps the execution history in the JSON-lines file at path (created with its
// folder when missing). "-" keeps history in memory only. Default: DefaultHistoryPath().
func WithHistoryFile(path string) Option { return func(o *options) { o.historyPath = path } }

// WithStayOnRestart makes a shutdown_request with restart=true reset the Evaluator and keep serving
// in the same process, instead of exiting (the default, which Jupyter's kernel manager expects: it
// starts a new process on restart).
func WithStayOnRestart() Option { return func(o *options) { o.stayOnRestart = true } }

// Kernel is one running Jupyter kernel: its sockets, its Evaluator and its execution state.
// Create it with New, serve with Run, release the sockets with Close.
type Kernel struct {
	info     ConnectionInfo
	ev       Evaluator
	opt      options
	sig      *signer
	socks    *sockets
	session  string // this kernel's session id (header.session of what it sends)
	username string
	log      *log.Logger
	hist     *history

	ctx    context.Context // cancelled by Close; parent of every cell context
	cancel context.CancelFunc

	stopOnce sync.Once
	stopped  chan struct{} // closed when a shutdown_request was handled

	cellMu     sync.Mutex
	cellCancel context.CancelFunc // cancels the running cell; nil when idle

	evMu      sync.Mutex // held while the Evaluator is in use (shell handlers, restart)
	execCount int        // execution counter, guarded by evMu

	inputMu      sync.Mutex    // one input_request at a time
	inputReplies chan *Message // input_reply messages read from stdin
}

// New binds the sockets described by info and returns a kernel ready to Run (once). Ports of 0
// are replaced by free TCP ports (see Info). The kernel calls ev's methods one at a time, never
// concurrently: from the shell goroutine, and Reset from the control goroutine for an in-process
// restart (WithStayOnRestart). The caller keeps ownership of ev (Close does not close it).
func New(info ConnectionInfo, ev Evaluator, opts ...Option) (*Kernel, error) {
	if ev == nil {
		return nil, errors.New("kernel.New: nil Evaluator")
	}
	if err := info.validate(); err != nil {
		return nil, fmt.Errorf("kernel.New: %w", err)
	}
	k := &Kernel{info: info, ev: ev, session: uuid.NewString(), stopped: make(chan struct{}),
		inputReplies: make(chan *Message, 4)}
	k.opt = options{implVersion: "dev", log: os.Stderr}
	for _, o := range opts {
		o(&k.opt)
	}
	k.log = log.New(k.opt.log, "finlora kernel: ", log.LstdFlags)
	k.username = "kernel"
	if u, err := user.Current(); err == nil && u.Username != "" {
		k.username = u.Username
	}
	k.sig = newSigner([]byte(info.Key))
	if !k.sig.enabled() {
		k.log.Printf("warning: the connection key is empty; messages are neither signed nor checked")
	}
	var err error
	k.hist, err = openHistory(k.opt.historyPath)
	if err != nil {
		k.log.Printf("history: %v (history kept in memory only)", err)
		k.hist, _ = openHistory("-")
	}
	k.ctx, k.cancel = context.WithCancel(context.Background())
	k.socks, err = openSockets(k.ctx, &k.info)
	if err != nil {
		k.cancel()
		k.hist.close()
		return nil, fmt.Errorf("kernel.New: %w", err)
	}
	return k, nil
}

// Info returns the connection info with the ports actually bound.
func (k *Kernel) Info() ConnectionInfo { return k.info }

// Close cancels any running cell and closes the sockets and the history file.
func (k *Kernel) Close() error {
	k.cancel()
	k.socks.close()
	return k.hist.close()
}

// Serve reads the connection file, serves the kernel until a shutdown_request or until ctx is
// cancelled, and closes it. It returns nil after a shutdown_request.
func Serve(ctx context.Context, connFile string, ev Evaluator, opts ...Option) error {
	info, err := ReadConnectionFile(connFile)
	if err != nil {
		return err
	}
	k, err := New(info, ev, opts...)
	if err != nil {
		return err
	}
	defer k.Close()
	return k.Run(ctx)
}

// Run serves requests until a shutdown_request (it returns nil) or until ctx is cancelled (it
// returns ctx.Err()). It starts the heartbeat, control and stdin goroutines and runs shell
// requests one at a time in order; control requests are handled while a cell runs.
func (k *Kernel) Run(ctx context.Context) error {
	shellQ := make(chan *Message, 256)
	go k.heartbeat()
	go k.readLoop(k.socks.shell, func(m *Message) { shellQ <- m })
	go k.readLoop(k.socks.stdin, k.onStdin)
	go k.readLoop(k.socks.control, k.handleControl)
	k.publishStatus("starting", nil)

	done := make(chan struct{})
	go func() {
		defer close(done)
		k.shellLoop(shellQ)
	}()
	select {
	case <-ctx.Done():
		k.cancelCell()
		return ctx.Err()
	case <-k.stopped:
		// Give the PUB queue a moment to deliver the last status messages, then let the shell
		// goroutine finish its request (the cell was cancelled) for at most a few seconds.
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			k.log.Printf("shutdown: the running cell did not stop within 3s; exiting anyway")
		}
		time.Sleep(150 * time.Millisecond)
		return nil
	case <-k.ctx.Done():
		return errors.New("kernel closed")
	}
}

// stop marks the kernel as shut down: Run returns and the shell loop ends.
func (k *Kernel) stop() {
	k.stopOnce.Do(func() {
		close(k.stopped)
		k.cancelCell()
	})
}

// readLoop receives messages on s until the kernel is closed, decodes and verifies each, and
// passes the good ones to handle. Bad messages are dropped and logged.
func (k *Kernel) readLoop(s *socket, handle func(*Message)) {
	for {
		zm, err := s.zs.Recv()
		if err != nil {
			if k.ctx.Err() != nil {
				return
			}
			k.log.Printf("%s: receive: %v", s.name, err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		m, err := decodeMessage(zm.Frames, k.sig)
		if err != nil {
			k.log.Printf("%s: dropped message: %v", s.name, err)
			continue
		}
		handle(m)
	}
}

// heartbeat echoes every ping on the heartbeat socket.
func (k *Kernel) heartbeat() {
	for {
		zm, err := k.socks.hb.zs.Recv()
		if err != nil {
			if k.ctx.Err() != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if err := k.socks.hb.zs.Send(zm); err != nil && k.ctx.Err() == nil {
			k.log.Printf("hb: echo: %v", err)
		}
	}
}

// send signs and sends a message of msgType with content on s. parent is the request being
// answered (nil for none): its header becomes parent_header, and on a ROUTER socket its
// identities route the message back. On iopub the identity is the topic kernel.<session>.<type>.
func (k *Kernel) send(s *socket, msgType string, parent *Message, content any) {
	raw, err := json.Marshal(content)
	if err != nil {
		k.log.Printf("%s: cannot encode %s content: %v", s.name, msgType, err)
		raw, _ = json.Marshal(map[string]any{"status": "error", "ename": "EncodingError",
			"evalue": err.Error(), "traceback": []string{"EncodingError: " + err.Error()}})
	}
	m := &Message{Header: newHeader(msgType, k.session, k.username), Content: raw}
	if parent != nil {
		m.ParentHeader = parent.RawHeader
		if s != k.socks.iopub {
			m.Identities = parent.Identities
		}
	}
	if s == k.socks.iopub {
		m.Identities = [][]byte{[]byte("kernel." + k.session + "." + msgType)}
	}
	frames, err := m.encode(k.sig)
	if err != nil {
		k.log.Printf("%s: %v", s.name, err)
		return
	}
	if err := s.sendFrames(frames); err != nil && k.ctx.Err() == nil {
		k.log.Printf("%s %s: %v", s.name, msgType, err)
	}
}

// publish sends msgType with content on iopub, as a child of parent (nil for none).
func (k *Kernel) publish(msgType string, parent *Message, content any) {
	k.send(k.socks.iopub, msgType, parent, content)
}

// publishStatus publishes the kernel's execution_state ("busy", "idle", "starting").
func (k *Kernel) publishStatus(state string, parent *Message) {
	k.publish("status", parent, map[string]string{"execution_state": state})
}

// Interrupt cancels the running cell's context, as an interrupt_request does (for a SIGINT
// handler); it reports whether a cell was running.
func (k *Kernel) Interrupt() bool { return k.cancelCell() }

// setCell records the cancel function of the running cell (nil when it ends).
func (k *Kernel) setCell(cancel context.CancelFunc) {
	k.cellMu.Lock()
	k.cellCancel = cancel
	k.cellMu.Unlock()
}

// cancelCell cancels the running cell's context, if any; it reports whether one was running.
func (k *Kernel) cancelCell() bool {
	k.cellMu.Lock()
	defer k.cellMu.Unlock()
	if k.cellCancel != nil {
		k.cellCancel()
		return true
	}
	return false
}
