package cuda

// Rope validates its positions on the device (a position outside the cos/sin table is an error)
// and reading that verdict back waits for the stream: at batch-1 decode, 64 waits a token (q and k
// of every layer share one position tensor), each leaving the GPU idle while the host queues the
// next kernels. The device remembers the last position tensor found valid and skips the check
// while nothing may have written it since:
//
//   - a kernel launch drops it when any pointer argument points into the tensor's block (a kernel
//     may write what it is given; Rope itself re-arms it, since it only writes x);
//   - memset, host-to-device and device-to-device copies and Gemm outputs drop it when their
//     destination overlaps the block (Device.wrote).
//
// A freed block handed out again is written (by one of those) before it holds new positions, so a
// hit always finds the bytes that were checked.

// posValid is the block range [lo, hi) of the last position tensor found within [0, P).
type posValid struct {
	lo, hi uintptr
	p      int
}

// posDropArgs forgets the validated positions when a launch argument points into their block.
func (d *Device) posDropArgs(args []any) {
	if d.pos.hi == 0 {
		return
	}
	for _, a := range args {
		if v, ok := a.(uintptr); ok && v >= d.pos.lo && v < d.pos.hi {
			d.pos = posValid{}
			return
		}
	}
}

// posDropWrite forgets the validated positions when [p, p+n) overlaps their block.
func (d *Device) posDropWrite(p uintptr, n int64) {
	if d.pos.hi != 0 && p < d.pos.hi && p+uintptr(n) > d.pos.lo {
		d.pos = posValid{}
	}
}

// posChecked reports whether the positions in blk were found within [0, p') for some p' ≤ p and
// nothing may have written them since.
func (d *Device) posChecked(blk *Block, p int) bool {
	return d.pos.hi != 0 && d.pos.lo == blk.Ptr && d.pos.hi == blk.Ptr+uintptr(blk.Bytes) && d.pos.p <= p
}
