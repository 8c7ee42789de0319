package ostree

import (
	"bufio"
	"io"
)

func bufferedReader(r io.Reader) io.Reader { return bufio.NewReaderSize(r, 64<<10) }
