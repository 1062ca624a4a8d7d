package kernel

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"
)

// signer computes and checks the HMAC-SHA256 signature of a message: the hex digest of
// header, parent_header, metadata and content (the raw frames, in that order) under the
// connection key. An empty key disables signing: signatures are empty and every message passes.
// A signer is safe for concurrent use.
type signer struct {
	key  []byte
	pool sync.Pool // of hash.Hash
}

func newSigner(key []byte) *signer {
	s := &signer{key: append([]byte(nil), key...)}
	s.pool.New = func() any { return hmac.New(sha256.New, s.key) }
	return s
}

// enabled reports whether messages are signed.
func (s *signer) enabled() bool { return len(s.key) > 0 }

// mac returns the raw HMAC of parts; nil when signing is disabled.
func (s *signer) mac(parts ...[]byte) []byte {
	if !s.enabled() {
		return nil
	}
	h := s.pool.Get().(hash.Hash)
	defer s.pool.Put(h)
	h.Reset()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// sign returns the lowercase hex signature of parts, or "" when signing is disabled.
func (s *signer) sign(parts ...[]byte) string {
	return hex.EncodeToString(s.mac(parts...))
}

// verify reports whether sig (hex, as sent on the wire) is the signature of parts. It compares
// in constant time with hmac.Equal. With signing disabled every signature is accepted.
func (s *signer) verify(sig []byte, parts ...[]byte) bool {
	if !s.enabled() {
		return true
	}
	got := make([]byte, hex.DecodedLen(len(sig)))
	n, err := hex.Decode(got, sig)
	if err != nil {
		return false
	}
	return hmac.Equal(got[:n], s.mac(parts...))
}
