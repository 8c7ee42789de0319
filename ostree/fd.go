package ostree

import (
	"errors"
	"io"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fdFile is a plain file descriptor with io.Reader/io.Writer methods.
// Commit and checkout open tens of thousands of regular files; *os.File
// registers each with the runtime poller (fcntl and epoll_ctl calls that
// always fail for regular files), which this avoids.
type fdFile int

func openRead(p string) (fdFile, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	for errors.Is(err, unix.EINTR) {
		fd, err = unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	}
	return fdFile(fd), err
}

func createExcl(p string, mode uint32) (fdFile, error) {
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NOFOLLOW, mode)
	return fdFile(fd), err
}

func (f fdFile) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(int(f), p)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 && len(p) > 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

func (f fdFile) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.Write(int(f), p[done:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

func (f fdFile) Seek(off int64, whence int) (int64, error) { return unix.Seek(int(f), off, whence) }

func (f fdFile) Close() error { return unix.Close(int(f)) }

// futimensZero sets atime and mtime of an open file to the epoch, as
// ostree does for every object.
func futimensZero(fd int) error {
	ts := [2]unix.Timespec{}
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
