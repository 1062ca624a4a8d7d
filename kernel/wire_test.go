package kernel

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// signatureVectors mirrors testdata/signature_vectors.json (made by gen_signature_vectors.py with
// jupyter_client.session.Session).
type signatureVectors struct {
	Version string `json:"jupyter_client_version"`
	Vectors []struct {
		KeyB64      string   `json:"key_b64"`
		MsgType     string   `json:"msg_type"`
		MsgID       string   `json:"msg_id"`
		Signature   string   `json:"signature"`
		FramesB64   []string `json:"frames_b64"`
		NIdentities int      `json:"n_identities"`
		NBuffers    int      `json:"n_buffers"`
	} `json:"vectors"`
}

func loadVectors(t *testing.T) signatureVectors {
	t.Helper()
	b, err := os.ReadFile("testdata/signature_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v signatureVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	return v
}

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSignatureVectors checks signing and verification against messages that jupyter_client's
// Session serialized and signed.
func TestSignatureVectors(t *testing.T) {
	v := loadVectors(t)
	for _, vec := range v.Vectors {
		t.Run(vec.MsgType, func(t *testing.T) {
			key := b64(t, vec.KeyB64)
			s := newSigner(key)
			frames := make([][]byte, len(vec.FramesB64))
			for i, f := range vec.FramesB64 {
				frames[i] = b64(t, f)
			}
			m, err := decodeMessage(frames, s)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if m.Header.MsgType != vec.MsgType || m.Header.MsgID != vec.MsgID {
				t.Errorf("header %+v, want type %s id %s", m.Header, vec.MsgType, vec.MsgID)
			}
			if len(m.Identities) != vec.NIdentities || len(m.Buffers) != vec.NBuffers {
				t.Errorf("%d identities, %d buffers; want %d, %d", len(m.Identities), len(m.Buffers), vec.NIdentities, vec.NBuffers)
			}
			got := s.sign(m.RawHeader, m.ParentHeader, m.Metadata, m.Content)
			if got != vec.Signature {
				t.Errorf("signature %q, jupyter_client made %q", got, vec.Signature)
			}
			// Re-encoding the decoded message reproduces jupyter_client's frames exactly.
			re, err := m.encode(s)
			if err != nil {
				t.Fatal(err)
			}
			if len(re) != len(frames) {
				t.Fatalf("re-encoded %d frames, want %d", len(re), len(frames))
			}
			for i := range re {
				if !bytes.Equal(re[i], frames[i]) {
					t.Errorf("frame %d: %q, want %q", i, re[i], frames[i])
				}
			}
			if len(key) == 0 {
				return // nothing to tamper with: unsigned messages always pass
			}
			// Tampering with any signed part, or with the signature, is detected.
			d := vec.NIdentities
			for _, idx := range []int{d + 1, d + 2, d + 3, d + 4, d + 5} {
				bad := make([][]byte, len(frames))
				copy(bad, frames)
				f := append([]byte(nil), frames[idx]...)
				if idx == d+1 { // the signature: flip one hex digit
					if f[0] == '0' {
						f[0] = '1'
					} else {
						f[0] = '0'
					}
				} else {
					f = append(f[:len(f)-1], ' ', '}') // still valid JSON, different bytes
				}
				bad[idx] = f
				if _, err := decodeMessage(bad, s); !errors.Is(err, errBadSignature) {
					t.Errorf("tampered frame %d: err %v, want bad signature", idx, err)
				}
			}
			// The wrong key is detected too.
			if _, err := decodeMessage(frames, newSigner(append(key, 'x'))); !errors.Is(err, errBadSignature) {
				t.Errorf("wrong key: err %v, want bad signature", err)
			}
		})
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, key := range []string{"", "k", "a-much-longer-key-0123456789abcdef"} {
		s := newSigner([]byte(key))
		content, _ := json.Marshal(map[string]any{"code": "x := \"ü\"\n", "n": 3})
		m := &Message{
			Identities:   [][]byte{[]byte("id1"), {0, 1, 2}},
			Header:       newHeader("execute_request", "sess", "user"),
			ParentHeader: json.RawMessage(`{"msg_id":"p"}`),
			Metadata:     json.RawMessage(`{}`),
			Content:      content,
			Buffers:      [][]byte{[]byte("buf")},
		}
		frames, err := m.encode(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeMessage(frames, s)
		if err != nil {
			t.Fatalf("key %q: %v", key, err)
		}
		if got.Header != m.Header || string(got.Content) != string(content) || parentMsgID(got.ParentHeader) != "p" ||
			len(got.Identities) != 2 || len(got.Buffers) != 1 || string(got.Buffers[0]) != "buf" {
			t.Errorf("key %q: round trip changed the message: %+v", key, got)
		}
		if key != "" && len(frames[3]) != 64 {
			t.Errorf("signature %q is not 64 hex digits", frames[3])
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	s := newSigner([]byte("key"))
	good := func(header, parent, metadata, content string) [][]byte {
		return [][]byte{[]byte("id"), delimiter, []byte(s.sign([]byte(header), []byte(parent), []byte(metadata), []byte(content))),
			[]byte(header), []byte(parent), []byte(metadata), []byte(content)}
	}
	hdr := `{"msg_id":"1","msg_type":"kernel_info_request","session":"s","username":"u","date":"","version":"5.3"}`
	tests := []struct {
		name   string
		frames [][]byte
		want   string // substring of the error; "" for success
	}{
		{"ok", good(hdr, "{}", "{}", "{}"), ""},
		{"no delimiter", [][]byte{[]byte("a"), []byte("b")}, "delimiter"},
		{"empty", nil, "delimiter"},
		{"too few frames", [][]byte{delimiter, []byte("sig"), []byte(hdr)}, "frames after"},
		{"bad signature", append([][]byte{delimiter, []byte("00")}, good(hdr, "{}", "{}", "{}")[3:]...), "bad signature"},
		{"non-hex signature", append([][]byte{delimiter, []byte("zz")}, good(hdr, "{}", "{}", "{}")[3:]...), "bad signature"},
		{"header not JSON", good(`{"msg_id":`, "{}", "{}", "{}"), "header frame"},
		{"header without type", good(`{"msg_id":"1"}`, "{}", "{}", "{}"), "lacks msg_type"},
		{"content not JSON", good(hdr, "{}", "{}", `{"code": "x`), "content frame"},
		{"content an array", good(hdr, "{}", "{}", `[1,2]`), "content frame"},
		{"parent not JSON", good(hdr, "nope", "{}", "{}"), "parent_header frame"},
		{"metadata not JSON", good(hdr, "{}", "\xff\xfe", "{}"), "metadata frame"},
		{"invalid UTF-8 in content", good(hdr, "{}", "{}", "{\"code\": \"\xff\xfe\"}"), ""},
		{"empty parent", good(hdr, "", "{}", "{}"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeMessage(tc.frames, s)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func FuzzDecodeMessage(f *testing.F) {
	s := newSigner(nil)
	f.Add([]byte(`{"msg_id":"1","msg_type":"x"}`), []byte("{}"), []byte(`{"code":"1"}`))
	f.Fuzz(func(t *testing.T, header, parent, content []byte) {
		m, err := decodeMessage([][]byte{delimiter, nil, header, parent, []byte("{}"), content}, s)
		if err == nil {
			if _, err := m.encode(s); err != nil {
				t.Fatal(err)
			}
		}
	})
}
