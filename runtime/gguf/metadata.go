package gguf

import "fmt"

// Metadata holds a file's key/value pairs in file order. Its accessors return an error naming the
// key when it is missing or of the wrong type. It is immutable after parsing and safe for
// concurrent use; slices it returns are shared and must not be modified.
type Metadata struct {
	keys []string
	kv   map[string]Value
}

// Keys returns the keys in file order (a new slice).
func (m *Metadata) Keys() []string { return append([]string(nil), m.keys...) }

// Get returns the value of key.
func (m *Metadata) Get(key string) (Value, bool) {
	v, ok := m.kv[key]
	return v, ok
}

// Has reports whether key is present.
func (m *Metadata) Has(key string) bool { _, ok := m.kv[key]; return ok }

func (m *Metadata) get(key string) (Value, error) {
	v, ok := m.kv[key]
	if !ok {
		return Value{}, fmt.Errorf("gguf metadata: no key %q", key)
	}
	return v, nil
}

func typeErr(key string, v Value, want string) error {
	return fmt.Errorf("gguf metadata: key %q is %s, not %s", key, v.Type, want)
}

// String returns the string value of key.
func (m *Metadata) String(key string) (string, error) {
	v, err := m.get(key)
	if err != nil {
		return "", err
	}
	s, ok := v.Data.(string)
	if !ok {
		return "", typeErr(key, v, "a string")
	}
	return s, nil
}

// Uint returns the value of key as uint64; any integer type holding a non-negative value converts.
func (m *Metadata) Uint(key string) (uint64, error) {
	v, err := m.get(key)
	if err != nil {
		return 0, err
	}
	u, ok := v.Uint()
	if !ok {
		return 0, typeErr(key, v, "a non-negative integer")
	}
	return u, nil
}

// Int returns the value of key as int64; any integer type that fits converts.
func (m *Metadata) Int(key string) (int64, error) {
	v, err := m.get(key)
	if err != nil {
		return 0, err
	}
	i, ok := v.Int()
	if !ok {
		return 0, typeErr(key, v, "an integer")
	}
	return i, nil
}

// Float returns the value of key as float64; float and integer types convert.
func (m *Metadata) Float(key string) (float64, error) {
	v, err := m.get(key)
	if err != nil {
		return 0, err
	}
	f, ok := v.Float()
	if !ok {
		return 0, typeErr(key, v, "a number")
	}
	return f, nil
}

// Bool returns the bool value of key.
func (m *Metadata) Bool(key string) (bool, error) {
	v, err := m.get(key)
	if err != nil {
		return false, err
	}
	b, ok := v.Data.(bool)
	if !ok {
		return false, typeErr(key, v, "a bool")
	}
	return b, nil
}

// Array returns the array value of key.
func (m *Metadata) Array(key string) (Array, error) {
	v, err := m.get(key)
	if err != nil {
		return Array{}, err
	}
	a, ok := v.Data.(Array)
	if !ok {
		return Array{}, typeErr(key, v, "an array")
	}
	return a, nil
}

// Strings returns the string array of key (shared; do not modify).
func (m *Metadata) Strings(key string) ([]string, error) {
	a, err := m.Array(key)
	if err != nil {
		return nil, err
	}
	s, ok := a.Data.([]string)
	if !ok {
		return nil, fmt.Errorf("gguf metadata: key %q is an array of %s, not of strings", key, a.Elem)
	}
	return s, nil
}

// Float32s returns the float32 array of key (shared; do not modify).
func (m *Metadata) Float32s(key string) ([]float32, error) {
	a, err := m.Array(key)
	if err != nil {
		return nil, err
	}
	s, ok := a.Data.([]float32)
	if !ok {
		return nil, fmt.Errorf("gguf metadata: key %q is an array of %s, not of float32", key, a.Elem)
	}
	return s, nil
}

// Ints returns an integer array of key converted to []int64 (a new slice); any integer element
// type converts (uint64 values above MaxInt64 are an error).
func (m *Metadata) Ints(key string) ([]int64, error) {
	a, err := m.Array(key)
	if err != nil {
		return nil, err
	}
	n := a.Len()
	out := make([]int64, n)
	conv := func(i int, v any) bool {
		x, ok := Value{Data: v}.Int()
		out[i] = x
		return ok
	}
	ok := true
	switch s := a.Data.(type) {
	case []uint8:
		for i, v := range s {
			ok = ok && conv(i, v)
		}
	case []int8:
		for i, v := range s {
			ok = ok && conv(i, v)
		}
	case []uint16:
		for i, v := range s {
			ok = ok && conv(i, v)
		}
	case []int16:
		for i, v := range s {
			ok = ok && conv(i, v)
		}
	case []uint32:
		for i, v := range s {
			ok = ok && conv(i, v)
		}
	case []int32:
		for i, v := range s {
			out[i] = int64(v)
		}
	case []uint64:
		for i, v := range s {
			ok = ok && conv(i, v)
		}
	case []int64:
		copy(out, s)
	default:
		return nil, fmt.Errorf("gguf metadata: key %q is an array of %s, not of integers", key, a.Elem)
	}
	if !ok {
		return nil, fmt.Errorf("gguf metadata: key %q holds an integer beyond int64", key)
	}
	return out, nil
}

// Arch returns general.architecture ("llama", "gemma3", ...).
func (m *Metadata) Arch() (string, error) { return m.String("general.architecture") }

// ArchUint returns the integer "<arch>.<suffix>" (e.g. ArchUint("block_count") is
// gemma3.block_count for a Gemma 3 file).
func (m *Metadata) ArchUint(suffix string) (uint64, error) {
	a, err := m.Arch()
	if err != nil {
		return 0, err
	}
	return m.Uint(a + "." + suffix)
}

// ArchFloat returns the number "<arch>.<suffix>".
func (m *Metadata) ArchFloat(suffix string) (float64, error) {
	a, err := m.Arch()
	if err != nil {
		return 0, err
	}
	return m.Float(a + "." + suffix)
}
