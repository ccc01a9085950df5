package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gotf/gotf/internal/procstat"
	"github.com/gotf/gotf/serve"
)

// childEnv, when set, makes this binary the server: serve.Main on its
// arguments (as gotf-serve), and its own VmRSS on GET /rss at the address
// childEnv holds, read through procstat inside the process measured.
const childEnv = "GOTF_BENCHSERVE_SERVER"

func serveAsChild() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /rss", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, procstat.Status("VmRSS")[0])
	})
	go http.ListenAndServe(os.Getenv(childEnv), mux)
	if err := serve.Main(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchserve's server:", err)
		os.Exit(1)
	}
}

// server is the server process under test.
type server struct {
	cmd                   *exec.Cmd
	restURL, grpcAddr     string
	rssURL                string
	exited                chan struct{} // closed when the process has exited; then err is its Wait's
	err                   error
	stopped               bool
	client                *http.Client
	modelName, modelsPath string
}

// startServer starts the server on loopback ports for the model versions
// under base and waits until the highest is available.
func startServer(base string, threads int) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addrs, err := freeAddrs(3)
	if err != nil {
		return nil, err
	}
	port := func(a string) string { return a[strings.LastIndex(a, ":")+1:] }
	s := &server{restURL: "http://" + addrs[0], grpcAddr: addrs[1], rssURL: "http://" + addrs[2] + "/rss",
		exited: make(chan struct{}), modelName: "gpt", client: &http.Client{Timeout: 30 * time.Second}}
	s.modelsPath = "/v1/models/" + s.modelName
	s.cmd = exec.Command(self, "--rest_api_host=127.0.0.1", "--rest_api_port="+port(addrs[0]),
		"--grpc_host=127.0.0.1", "--port="+port(addrs[1]), "--model_name="+s.modelName, "--model_base_path="+base,
		"--tensorflow_intra_op_parallelism="+strconv.Itoa(threads))
	s.cmd.Env = append(os.Environ(), childEnv+"="+addrs[2], "TF_CPP_MIN_LOG_LEVEL=2")
	s.cmd.Stdout, s.cmd.Stderr = os.Stderr, os.Stderr
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.err = s.cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if code, body, _ := s.get(s.restURL + s.modelsPath); code == http.StatusOK && strings.Contains(body, "AVAILABLE") {
			return s, nil
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("the server exited before serving the model: %v", s.err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, errors.New("the server did not serve the model within 3 minutes")
		}
	}
}

// stop ends the server with SIGTERM (SIGKILL after 60 s); it returns the
// server's exit error the first time, nil after.
func (s *server) stop() error {
	if s.stopped {
		return nil
	}
	s.stopped = true
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return s.err
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		return errors.New("the server did not stop within 60 s of SIGTERM; killed")
	}
}

// rss is the server's VmRSS in bytes.
func (s *server) rss() (int64, error) {
	code, body, err := s.get(s.rssURL)
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %d %s", s.rssURL, code, body)
	}
	return strconv.ParseInt(body, 10, 64)
}

func (s *server) get(url string) (int, string, error) {
	resp, err := s.client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// freeAddrs is n loopback addresses free a moment ago: ports the kernel
// picked, all held until each has been picked so that they differ.
func freeAddrs(n int) ([]string, error) {
	var addrs []string
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	log.Printf("server ports: REST %s, gRPC %s, RSS %s", addrs[0], addrs[1], addrs[2])
	return addrs, nil
}
