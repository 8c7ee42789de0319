package ostree

import "golang.org/x/sys/unix"

// offHeapMin is the size from which allocWindow maps memory outside the
// Go heap.
const offHeapMin = 1 << 20

// allocWindow returns n zero bytes and the function that frees them. From
// offHeapMin on they are an anonymous private mapping, outside the Go
// heap: the garbage collector neither scans them nor counts them in its
// heap goal (a 32 MiB buffer in the heap lets the heap grow by as much
// again before a collection), their pages take memory only once touched,
// and free gives them back to the kernel at once. The caller must not use
// the slice after calling free.
func allocWindow(n int) ([]byte, func(), error) {
	if n < offHeapMin {
		return make([]byte, n), func() {}, nil
	}
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, nil, err
	}
	return b, func() { unix.Munmap(b) }, nil
}
