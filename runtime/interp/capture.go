//go:build unix

package interp

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// streamSink receives captured text; a kernel Output is one.
type streamSink interface {
	Stream(name, text string)
}

// stdio redirects the process's file descriptors 1 and 2 into pipes, so that everything written
// to standard output and error (by interpreted code, compiled Go code, C libraries, child
// processes) is read back by a pump goroutine and sent to the running cell's sink, or to the
// original descriptors when no cell runs. It is process-wide: evaluators share it by reference
// count, and the last Close restores the descriptors.
type stdio struct {
	mu    sync.Mutex
	refs  int
	sink  streamSink
	pumps []*pump
	// dups of the original descriptors 1 and 2, open for the life of the process.
	origOut, origErr *os.File
}

var capture = &stdio{}

// LogWriter returns the process's original standard error (the terminal or the log file the
// kernel was started with). Writes to os.Stderr go to the running cell while output is captured;
// the kernel's own logging must use LogWriter to stay out of cells. Never nil.
func LogWriter() *os.File {
	capture.mu.Lock()
	defer capture.mu.Unlock()
	if capture.origErr != nil {
		return capture.origErr
	}
	return os.Stderr
}

// OriginalStdout returns the process's original standard output (see LogWriter). Never nil.
func OriginalStdout() *os.File {
	capture.mu.Lock()
	defer capture.mu.Unlock()
	if capture.origOut != nil {
		return capture.origOut
	}
	return os.Stdout
}

type pump struct {
	name   string // "stdout" or "stderr"
	fd     int    // 1 or 2
	saved  int    // dup of the original fd, restored at release
	r      *os.File
	orig   *os.File
	mu     sync.Mutex
	cond   *sync.Cond
	acked  uint64 // highest flush marker read back
	seq    uint64 // highest flush marker written
	done   chan struct{}
	closed bool
}

const markerPrefix = "\x00\x1b[finlora-flush "

func (s *stdio) acquire() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refs > 0 {
		s.refs++
		return nil
	}
	if s.origOut == nil {
		o, err := unix.Dup(1)
		if err != nil {
			return fmt.Errorf("capture stdout: dup 1: %w", err)
		}
		e, err := unix.Dup(2)
		if err != nil {
			unix.Close(o)
			return fmt.Errorf("capture stderr: dup 2: %w", err)
		}
		unix.CloseOnExec(o)
		unix.CloseOnExec(e)
		s.origOut = os.NewFile(uintptr(o), "original-stdout")
		s.origErr = os.NewFile(uintptr(e), "original-stderr")
	}
	var pumps []*pump
	for _, c := range []struct {
		name string
		fd   int
		orig *os.File
	}{{"stdout", 1, s.origOut}, {"stderr", 2, s.origErr}} {
		p, err := startPump(c.name, c.fd, c.orig)
		if err != nil {
			for _, q := range pumps {
				q.stop()
			}
			return err
		}
		pumps = append(pumps, p)
	}
	s.pumps = pumps
	s.refs = 1
	return nil
}

func startPump(name string, fd int, orig *os.File) (*pump, error) {
	var fds [2]int
	// Blocking pipe ends: fd 1/2 must stay blocking for code that writes to them directly.
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("capture %s: pipe: %w", name, err)
	}
	saved, err := unix.Dup(fd)
	if err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, fmt.Errorf("capture %s: dup %d: %w", name, fd, err)
	}
	unix.CloseOnExec(saved)
	if err := unix.Dup2(fds[1], fd); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		unix.Close(saved)
		return nil, fmt.Errorf("capture %s: dup2 onto %d: %w", name, fd, err)
	}
	unix.Close(fds[1]) // fd now holds the only write end
	p := &pump{name: name, fd: fd, saved: saved, r: os.NewFile(uintptr(fds[0]), name+"-capture"), orig: orig, done: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	go p.loop()
	return p, nil
}

// stop restores the original descriptor; the pump drains the pipe and exits.
func (p *pump) stop() {
	unix.Dup2(p.saved, p.fd) // the pipe loses its last writer: the pump reads EOF
	unix.Close(p.saved)
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
	}
}

func (s *stdio) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refs == 0 {
		return
	}
	s.refs--
	if s.refs > 0 {
		return
	}
	for _, p := range s.pumps {
		p.stop()
	}
	s.pumps = nil
}

// setSink routes captured text to sink (nil: the original descriptors) and returns the previous one.
func (s *stdio) setSink(sink streamSink) streamSink {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.sink
	s.sink = sink
	return prev
}

// flush waits until everything written to fd 1 and 2 before the call has been delivered.
func (s *stdio) flush() {
	s.mu.Lock()
	pumps := s.pumps
	s.mu.Unlock()
	for _, p := range pumps {
		p.flush()
	}
}

func (p *pump) flush() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.seq++
	seq := p.seq
	p.mu.Unlock()
	marker := markerPrefix + strconv.FormatUint(seq, 10) + "]\x00"
	if _, err := unix.Write(p.fd, []byte(marker)); err != nil {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	timer := time.AfterFunc(5*time.Second, func() { p.mu.Lock(); p.cond.Broadcast(); p.mu.Unlock() })
	defer timer.Stop()
	p.mu.Lock()
	for p.acked < seq && !p.closed && time.Now().Before(deadline) {
		p.cond.Wait()
	}
	p.mu.Unlock()
}

func (p *pump) loop() {
	defer close(p.done)
	buf := make([]byte, 64<<10)
	var pending []byte
	for {
		n, err := p.r.Read(buf)
		if n > 0 {
			pending = p.process(append(pending, buf[:n]...))
		}
		if err != nil {
			p.emit(pending)
			p.r.Close()
			p.mu.Lock()
			p.closed = true
			p.cond.Broadcast()
			p.mu.Unlock()
			return
		}
	}
}

// process delivers the complete text of pending, acknowledges flush markers, and returns what
// must wait for more bytes (a possible marker start, an incomplete UTF-8 sequence).
func (p *pump) process(pending []byte) []byte {
	for {
		i := bytes.Index(pending, []byte(markerPrefix))
		if i < 0 {
			break
		}
		end := bytes.IndexByte(pending[i+len(markerPrefix):], 0)
		if end < 0 {
			p.emit(pending[:i])
			return append([]byte(nil), pending[i:]...)
		}
		p.emit(pending[:i])
		num := pending[i+len(markerPrefix) : i+len(markerPrefix)+end]
		seq, _ := strconv.ParseUint(string(bytes.TrimSuffix(num, []byte("]"))), 10, 64)
		pending = pending[i+len(markerPrefix)+end+1:]
		p.mu.Lock()
		if seq > p.acked {
			p.acked = seq
		}
		p.cond.Broadcast()
		p.mu.Unlock()
	}
	// Hold back a suffix that may start a marker, and an incomplete UTF-8 sequence.
	keep := 0
	for k := min(len(markerPrefix)-1, len(pending)); k > 0; k-- {
		if bytes.HasPrefix([]byte(markerPrefix), pending[len(pending)-k:]) {
			keep = k
			break
		}
	}
	if keep == 0 {
		keep = incompleteUTF8(pending)
	}
	p.emit(pending[:len(pending)-keep])
	return append([]byte(nil), pending[len(pending)-keep:]...)
}

// incompleteUTF8 returns the length of a truncated multi-byte sequence at the end of b (0..3).
func incompleteUTF8(b []byte) int {
	for k := 1; k <= 3 && k <= len(b); k++ {
		c := b[len(b)-k]
		if c < 0x80 {
			return 0
		}
		if utf8.RuneStart(c) {
			if utf8.FullRune(b[len(b)-k:]) {
				return 0
			}
			return k
		}
	}
	return 0
}

func (p *pump) emit(b []byte) {
	if len(b) == 0 {
		return
	}
	capture.mu.Lock()
	sink := capture.sink
	capture.mu.Unlock()
	if sink != nil {
		sink.Stream(p.name, string(b))
		return
	}
	p.orig.Write(b)
}
