package kernel

import (
	"context"
	"encoding/json"
	"fmt"
)

// onStdin receives messages from the stdin socket: input_reply messages are passed to the cell
// waiting in requestInput; anything else is logged and dropped.
func (k *Kernel) onStdin(m *Message) {
	if m.Header.MsgType != "input_reply" {
		k.log.Printf("stdin: unexpected %s ignored", m.Header.MsgType)
		return
	}
	select {
	case k.inputReplies <- m:
	default:
		k.log.Printf("stdin: input_reply with nobody waiting dropped")
	}
}

// requestInput sends input_request on the stdin socket, routed to the front end that sent
// parent (the execute_request), and waits for its input_reply or for ctx to end.
func (k *Kernel) requestInput(ctx context.Context, parent *Message, prompt string, password bool) (string, error) {
	k.inputMu.Lock()
	defer k.inputMu.Unlock()
	// Drop replies to earlier requests that arrived after their cell gave up.
	for len(k.inputReplies) > 0 {
		<-k.inputReplies
	}
	m := &Message{Header: newHeader("input_request", k.session, k.username), ParentHeader: parent.RawHeader,
		Identities: parent.Identities}
	m.Content, _ = json.Marshal(map[string]any{"prompt": prompt, "password": password})
	frames, err := m.encode(k.sig)
	if err != nil {
		return "", fmt.Errorf("input: %w", err)
	}
	if err := k.socks.stdin.sendFrames(frames); err != nil {
		return "", fmt.Errorf("input: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("input: %w", ctx.Err())
		case r := <-k.inputReplies:
			if id := parentMsgID(r.ParentHeader); id != "" && id != m.Header.MsgID {
				k.log.Printf("stdin: input_reply to another request (%s) dropped", id)
				continue
			}
			var c struct {
				Value string `json:"value"`
			}
			if err := json.Unmarshal(r.Content, &c); err != nil {
				return "", fmt.Errorf("input: bad input_reply: %w", err)
			}
			return c.Value, nil
		}
	}
}
