// Package nginx starts a real nginx on 127.0.0.1 for tests: a child
// process with its own prefix, configuration, pid and logs in a temporary
// directory, serving one directory read-only over HTTP and, optionally,
// HTTPS (HTTP/2) with a certificate from a test CA made on the fly. It is
// stopped when the test ends. Tests skip when nginx is not installed,
// except under CI=true where they fail.
package nginx

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Options configures Start.
type Options struct {
	// TLS adds an HTTPS (HTTP/2) server on a second port.
	TLS bool
	// ClientCert makes the HTTPS server require a client certificate
	// signed by the test CA (see Server.ClientCert/ClientKey).
	ClientCert bool
	// Workers is the number of worker processes (default 1).
	Workers int
	// AccessLog keeps an access log (Server.Requests reads it).
	AccessLog bool
}

// Server is a running nginx.
type Server struct {
	// URL is http://127.0.0.1:PORT/ serving the root directory.
	URL string
	// TLSURL is https://127.0.0.1:PORT/ (when Options.TLS).
	TLSURL string
	// TLSPort is the port of the HTTPS server.
	TLSPort int
	// CACert is the PEM file of the CA that signed the server (and client)
	// certificates; the server certificate is valid for 127.0.0.1,
	// localhost and repo.invalid.
	CACert string
	// ClientCert and ClientKey are a client certificate and key signed by
	// the CA.
	ClientCert, ClientKey string
	// Root is the directory served.
	Root string

	prefix string
	cmd    *exec.Cmd
}

// Require returns the path of nginx, skipping the test when it is absent
// (failing under CI=true).
func Require(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("nginx is not installed; run scripts/deps.sh")
	}
	t.Skip("nginx is not installed; run scripts/deps.sh")
	return ""
}

// Start serves root with nginx until the test ends.
func Start(t testing.TB, root string, o Options) *Server {
	t.Helper()
	bin := Require(t)
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for try := 0; try < 3; try++ {
		s, err := start(t, bin, abs, o)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("starting nginx: %v", lastErr)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func start(t testing.TB, bin, root string, o Options) (*Server, error) {
	prefix, err := os.MkdirTemp("", "gostree-nginx-")
	if err != nil {
		return nil, err
	}
	// nginx workers run as another user when started by root unless told
	// otherwise; the served directory may be private to root.
	os.Chmod(prefix, 0o755)
	s := &Server{Root: root, prefix: prefix}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s.URL = fmt.Sprintf("http://127.0.0.1:%d/", port)
	workers := o.Workers
	if workers <= 0 {
		workers = 1
	}
	var conf bytes.Buffer
	if os.Geteuid() == 0 {
		conf.WriteString("user root root;\n")
	}
	access := "off"
	if o.AccessLog {
		access = filepath.Join(prefix, "access.log") + " reqs"
	}
	fmt.Fprintf(&conf, `worker_processes %d;
daemon off;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 1024; }
http {
  client_body_temp_path %[2]s/client_body;
  proxy_temp_path %[2]s/proxy;
  fastcgi_temp_path %[2]s/fastcgi;
  uwsgi_temp_path %[2]s/uwsgi;
  scgi_temp_path %[2]s/scgi;
  log_format reqs '$request_method $uri $status $http_range';
  access_log %[3]s;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  keepalive_timeout 65;
  server_tokens off;
  server {
    listen 127.0.0.1:%[4]d;
    root %[5]s;
    location / { limit_except GET HEAD { deny all; } }
  }
`, workers, prefix, access, port, root)
	if o.TLS {
		if err := s.makeCerts(); err != nil {
			return nil, err
		}
		if s.TLSPort, err = freePort(); err != nil {
			return nil, err
		}
		s.TLSURL = fmt.Sprintf("https://127.0.0.1:%d/", s.TLSPort)
		verify := ""
		if o.ClientCert {
			verify = fmt.Sprintf("ssl_client_certificate %s;\n    ssl_verify_client on;", s.CACert)
		}
		fmt.Fprintf(&conf, `  server {
    listen 127.0.0.1:%d ssl http2;
    ssl_certificate %s/server.pem;
    ssl_certificate_key %s/server.key;
    %s
    root %s;
    location / { limit_except GET HEAD { deny all; } }
  }
`, s.TLSPort, prefix, prefix, verify, root)
	}
	conf.WriteString("}\n")
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-p", prefix, "-c", confPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		os.RemoveAll(prefix)
		return nil, err
	}
	s.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			os.RemoveAll(prefix)
			return nil, fmt.Errorf("nginx exited (%v): %s%s", err, stderr.String(), log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
			os.RemoveAll(prefix)
			return nil, fmt.Errorf("nginx did not start listening within 10 s: %s", stderr.String())
		}
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		os.RemoveAll(prefix)
	})
	return s, nil
}

// Requests returns the access log lines so far ("GET /path STATUS RANGE"),
// when Options.AccessLog was set. nginx writes the log line after the
// response, so read it once the client is done.
func (s *Server) Requests(t testing.TB) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(s.prefix, "access.log"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, strings.TrimSpace(sc.Text()))
	}
	return out
}

// ErrorLog returns nginx's error log.
func (s *Server) ErrorLog() string {
	b, _ := os.ReadFile(filepath.Join(s.prefix, "error.log"))
	return string(b)
}

// makeCerts writes a CA, a server certificate and a client certificate.
func (s *Server) makeCerts() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gostree test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	s.CACert = filepath.Join(s.prefix, "ca.pem")
	if err := writePEM(s.CACert, "CERTIFICATE", caDER); err != nil {
		return err
	}
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage, server bool) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		if server {
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
			tmpl.DNSNames = []string{"localhost", "repo.invalid"}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		kb, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return err
		}
		if err := writePEM(filepath.Join(s.prefix, name+".pem"), "CERTIFICATE", der); err != nil {
			return err
		}
		return writePEM(filepath.Join(s.prefix, name+".key"), "EC PRIVATE KEY", kb)
	}
	if err := leaf(2, "server", x509.ExtKeyUsageServerAuth, true); err != nil {
		return err
	}
	if err := leaf(3, "client", x509.ExtKeyUsageClientAuth, false); err != nil {
		return err
	}
	s.ClientCert = filepath.Join(s.prefix, "client.pem")
	s.ClientKey = filepath.Join(s.prefix, "client.key")
	return nil
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644)
}
