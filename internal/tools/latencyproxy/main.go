// Command latencyproxy is a TCP proxy for benchmarks that adds a fixed
// one-way delay in each direction, standing in for netem (which this
// kernel lacks): `latencyproxy -listen 127.0.0.1:0 -to 127.0.0.1:8080
// -delay 25ms` gives 50 ms of round-trip time. Bandwidth is not limited
// and the order of bytes is kept. It prints the address it listens on,
// and only ever connects to the -to address.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	to := flag.String("to", "", "address to forward to (host:port)")
	delay := flag.Duration("delay", 25*time.Millisecond, "one-way delay added in each direction")
	flag.Parse()
	if *to == "" {
		fmt.Fprintln(os.Stderr, "latencyproxy: -to is required")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ln.Addr().String())
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go serve(c, *to, *delay)
	}
}

func serve(c net.Conn, to string, delay time.Duration) {
	u, err := net.Dial("tcp", to)
	if err != nil {
		log.Printf("dial %s: %v", to, err)
		c.Close()
		return
	}
	done := make(chan struct{}, 2)
	go pump(u, c, delay, done)
	go pump(c, u, delay, done)
	<-done
	<-done
	c.Close()
	u.Close()
}

type chunk struct {
	data []byte
	due  time.Time
}

// pump copies src to dst, delivering each chunk delay after it was read.
func pump(dst, src net.Conn, delay time.Duration, done chan<- struct{}) {
	q := make(chan chunk, 4096)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 64<<10)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{buf[:n], time.Now().Add(delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for ch := range q {
		time.Sleep(time.Until(ch.due))
		if _, err := dst.Write(ch.data); err != nil {
			break
		}
	}
	for range q { // drain so the reader can finish
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	io.Copy(io.Discard, src)
	done <- struct{}{}
}
