package kernel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"
)

// Stream coalescing: text a cell prints is buffered and published as one stream message when
// the buffer reaches streamChunk bytes, when streamDelay has passed since the first unsent byte,
// or when something else (a display, the result, the reply) must come after it.
const (
	streamChunk = 64 << 10
	streamDelay = 50 * time.Millisecond
)

// cellOutput is the Output of one execute_request. Everything it publishes has the request as
// parent, including what goroutines started by the cell write after the cell returned.
// It is safe for concurrent use.
type cellOutput struct {
	k          *Kernel
	parent     *Message
	ctx        context.Context // the cell's context (Input gives up when it is cancelled)
	silent     bool            // publish nothing (execute_request silent=true)
	allowStdin bool

	mu    sync.Mutex
	name  string // stream of the buffered text
	buf   []byte
	timer *time.Timer
}

func newCellOutput(k *Kernel, parent *Message, ctx context.Context, silent, allowStdin bool) *cellOutput {
	return &cellOutput{k: k, parent: parent, ctx: ctx, silent: silent, allowStdin: allowStdin}
}

// Stream implements Output.
func (o *cellOutput) Stream(name, text string) {
	if o.silent || text == "" {
		return
	}
	if name != "stderr" {
		name = "stdout"
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if name != o.name && len(o.buf) > 0 {
		o.flushLocked()
	}
	o.name = name
	o.buf = append(o.buf, text...)
	for len(o.buf) >= streamChunk {
		n := streamChunk
		// Cut at a rune boundary (at most 3 bytes back) so that no message splits a character.
		for i := 0; i < utf8.UTFMax && n > 0 && n < len(o.buf) && !utf8.RuneStart(o.buf[n]); i++ {
			n--
		}
		o.publishStream(o.buf[:n])
		o.buf = append(o.buf[:0], o.buf[n:]...)
	}
	if len(o.buf) > 0 && o.timer == nil {
		o.timer = time.AfterFunc(streamDelay, o.flush)
	}
}

// flush publishes the buffered stream text now.
func (o *cellOutput) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.flushLocked()
}

func (o *cellOutput) flushLocked() {
	if o.timer != nil {
		o.timer.Stop()
		o.timer = nil
	}
	if len(o.buf) == 0 {
		return
	}
	o.publishStream(o.buf)
	o.buf = o.buf[:0]
	if cap(o.buf) > 4*streamChunk {
		o.buf = nil
	}
}

// publishStream sends one stream message; invalid UTF-8 becomes U+FFFD.
func (o *cellOutput) publishStream(b []byte) {
	o.k.publish("stream", o.parent, map[string]string{"name": o.name, "text": string(b)})
}

// Display implements Output.
func (o *cellOutput) Display(data, metadata map[string]any, displayID string, update bool) {
	if o.silent {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.flushLocked()
	if metadata == nil {
		metadata = map[string]any{}
	}
	content := map[string]any{"data": o.k.mimeBundle(data), "metadata": metadata}
	msgType := "display_data"
	if update {
		msgType = "update_display_data"
	}
	if update || displayID != "" {
		content["transient"] = map[string]any{"display_id": displayID}
	}
	o.k.publish(msgType, o.parent, content)
}

// ClearOutput implements Output.
func (o *cellOutput) ClearOutput(wait bool) {
	if o.silent {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.flushLocked()
	o.k.publish("clear_output", o.parent, map[string]any{"wait": wait})
}

// Input implements Output: it sends input_request on stdin and waits for the reply.
func (o *cellOutput) Input(prompt string, password bool) (string, error) {
	if !o.allowStdin {
		return "", errors.New("input: this front end does not accept input (allow_stdin is false)")
	}
	o.flush()
	return o.k.requestInput(o.ctx, o.parent, prompt, password)
}

// mimeBundle returns data if it encodes as JSON, else a text/plain bundle describing it (a
// value such as NaN or a channel in a bundle must not lose the whole message).
func (k *Kernel) mimeBundle(data map[string]any) map[string]any {
	if data == nil {
		return map[string]any{"text/plain": ""}
	}
	if _, err := json.Marshal(data); err != nil {
		k.log.Printf("output: MIME bundle cannot be encoded as JSON: %v", err)
		return map[string]any{"text/plain": fmt.Sprintf("%v\n(unencodable MIME bundle: %v)", data, err)}
	}
	return data
}

// discardOutput is the Output of user_expressions: everything is dropped, input refused.
type discardOutput struct{}

func (discardOutput) Stream(string, string)                                {}
func (discardOutput) Display(map[string]any, map[string]any, string, bool) {}
func (discardOutput) ClearOutput(bool)                                     {}
func (discardOutput) Input(string, bool) (string, error) {
	return "", errors.New("input: not available in user_expressions")
}
