// Command vmbless is the VM test's stand-in for the agent's last step:
// run inside the booted guest after its health check passed, it calls
// sysroot.BlessBoot on the running system ("/") and prints what the boot
// entries look like afterwards.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/gostree/gostree/sysroot"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "vmbless:", err)
		os.Exit(1)
	}
}

func run() error {
	s, err := sysroot.Open("/", sysroot.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.BlessBoot(context.Background()); err != nil {
		return err
	}
	if err := s.Load(); err != nil {
		return err
	}
	b := s.Booted()
	if b == nil {
		return sysroot.ErrNotBooted
	}
	fmt.Printf("blessed %s: entry %s\n", b.Name(), b.Entry.FileName)
	return nil
}
