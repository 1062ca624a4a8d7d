package kernel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// ProtocolVersion is the Jupyter messaging protocol version the kernel speaks.
const ProtocolVersion = "5.3"

// delimiter separates the routing identities from the message proper.
var delimiter = []byte("<IDS|MSG>")

// Header is the header of a Jupyter message.
type Header struct {
	MsgID    string `json:"msg_id"`
	Session  string `json:"session"`
	Username string `json:"username"`
	Date     string `json:"date"` // ISO 8601 with time zone
	MsgType  string `json:"msg_type"`
	Version  string `json:"version"`
}

// Message is one Jupyter message. JSON parts are kept raw so that a reply can carry the request's
// header as its parent_header byte for byte. A Message owns its slices; decode copies nothing from
// the frames it was given beyond slicing them, so the frames must not be reused by the caller.
type Message struct {
	Identities   [][]byte        // routing ids before the delimiter (ROUTER) or the topic (PUB)
	Header       Header          // parsed header
	RawHeader    json.RawMessage // the header as received (decode) or as encoded (encode)
	ParentHeader json.RawMessage // "{}" when there is no parent
	Metadata     json.RawMessage // a JSON object, "{}" when empty
	Content      json.RawMessage // a JSON object
	Buffers      [][]byte        // extra binary frames
}

// errBadSignature marks a message whose HMAC did not verify.
var errBadSignature = errors.New("bad signature")

// decodeMessage parses the frames of one message received on a socket and verifies its signature.
// It returns errBadSignature (wrapped) when the HMAC does not match, and a descriptive error for
// a message that is not a Jupyter message (no delimiter, missing frames, JSON that is not an object).
func decodeMessage(frames [][]byte, s *signer) (*Message, error) {
	i := 0
	for i < len(frames) && !bytes.Equal(frames[i], delimiter) {
		i++
	}
	if i == len(frames) {
		return nil, fmt.Errorf("no %q delimiter in %d frames", delimiter, len(frames))
	}
	rest := frames[i+1:]
	if len(rest) < 5 {
		return nil, fmt.Errorf("%d frames after the delimiter, want at least 5 (hmac, header, parent_header, metadata, content)", len(rest))
	}
	sig, header, parent, metadata, content := rest[0], rest[1], rest[2], rest[3], rest[4]
	if !s.verify(sig, header, parent, metadata, content) {
		return nil, fmt.Errorf("%w (hmac %.16q…)", errBadSignature, sig)
	}
	m := &Message{
		Identities:   frames[:i],
		RawHeader:    json.RawMessage(header),
		ParentHeader: json.RawMessage(parent),
		Metadata:     json.RawMessage(metadata),
		Content:      json.RawMessage(content),
		Buffers:      rest[5:],
	}
	if err := json.Unmarshal(header, &m.Header); err != nil {
		return nil, fmt.Errorf("header frame: %w", err)
	}
	if m.Header.MsgType == "" || m.Header.MsgID == "" {
		return nil, fmt.Errorf("header frame lacks msg_type or msg_id: %.200s", header)
	}
	for _, part := range []struct {
		name string
		raw  *json.RawMessage
	}{{"parent_header", &m.ParentHeader}, {"metadata", &m.Metadata}, {"content", &m.Content}} {
		if len(bytes.TrimSpace(*part.raw)) == 0 {
			*part.raw = json.RawMessage("{}")
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(*part.raw, &obj); err != nil {
			return nil, fmt.Errorf("%s frame of %s: %w", part.name, m.Header.MsgType, err)
		}
	}
	return m, nil
}

// encode returns the wire frames of m, signed by s. It uses m.RawHeader when set, else it
// marshals m.Header (and stores the result in RawHeader).
func (m *Message) encode(s *signer) ([][]byte, error) {
	if len(m.RawHeader) == 0 {
		b, err := json.Marshal(m.Header)
		if err != nil {
			return nil, fmt.Errorf("encode header of %s: %w", m.Header.MsgType, err)
		}
		m.RawHeader = b
	}
	orEmpty := func(r json.RawMessage) []byte {
		if len(r) == 0 {
			return []byte("{}")
		}
		return r
	}
	header, parent, metadata, content := []byte(m.RawHeader), orEmpty(m.ParentHeader), orEmpty(m.Metadata), orEmpty(m.Content)
	frames := make([][]byte, 0, len(m.Identities)+6+len(m.Buffers))
	frames = append(frames, m.Identities...)
	frames = append(frames, delimiter, []byte(s.sign(header, parent, metadata, content)),
		header, parent, metadata, content)
	frames = append(frames, m.Buffers...)
	return frames, nil
}

// newHeader returns a fresh header of msgType for the kernel session.
func newHeader(msgType, session, username string) Header {
	return Header{
		MsgID:    uuid.NewString(),
		Session:  session,
		Username: username,
		Date:     time.Now().UTC().Format("2006-01-02T15:04:05.000000Z07:00"),
		MsgType:  msgType,
		Version:  ProtocolVersion,
	}
}

// parentMsgID returns the msg_id of a raw parent header, or "" when it has none.
func parentMsgID(parent json.RawMessage) string {
	var h struct {
		MsgID string `json:"msg_id"`
	}
	_ = json.Unmarshal(parent, &h)
	return h.MsgID
}
