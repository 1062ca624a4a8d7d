package tensor

// RopeCacher is the optional extension of a backend that applies rotary embeddings to one step's
// queries and keys and appends its keys and values to a KV cache in one op (one kernel launch on a
// GPU instead of four: at batch-1 decode every launch of a layer counts). Callers find it with a
// type assertion:
//
//	rc, ok := b.(tensor.RopeCacher)
//
// and fall back to the four Ops calls it stands for when ok is false.
type RopeCacher interface {
	// RopeQKCache has exactly the effect of
	//
	//	Rope(q, pos, cos, sin); Rope(k, pos, cos, sin)
	//	SetSlice(ck, k, 1, start); SetSlice(cv, v, 1, start)
	//
	// with the same values bit for bit: q F32 [B, T, Hq, D] and k F32 [B, T, Hkv, D] are rotated
	// in place (D even; Rope's rotate_half layout), the rotated k is written into the cache
	// ck F32 [B, C, Hkv, D] at slots start..start+T−1 and v F32 [B, T, Hkv, D] (read only) into
	// cv F32 [B, C, Hkv, D] at the same slots; other slots of ck and cv are untouched. pos is I32
	// [B, T]; cos and sin are F32 [P, D/2] (see Ops.Rope). 0 ≤ start and start+T ≤ C. ck and cv
	// must not overlap q, k, v, pos or each other. A position outside [0, P) is an error wrapping
	// ErrShape, as from Rope; after any error the contents of q, k, ck and cv are unspecified.
	// The op keeps no reference to its arguments.
	RopeQKCache(q, k, v, pos, cos, sin, ck, cv *Tensor, start int) error
}
