package cgo

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// oneTaskServerDef is a one-task cluster on a free 127.0.0.1 port.
func oneTaskServerDef(t *testing.T) (*cpb.ServerDef, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return &cpb.ServerDef{
		Cluster:  &cpb.ClusterDef{Job: []*cpb.JobDef{{Name: "worker", Tasks: map[int32]string{0: addr}}}},
		JobName:  "worker",
		Protocol: "grpc",
	}, addr
}

func TestServerNotStarted(t *testing.T) {
	def, addr := oneTaskServerDef(t)
	b, err := proto.Marshal(def)
	require.NoError(t, err)
	s, err := NewServer(b)
	require.NoError(t, err)
	assert.Equal(t, "grpc://"+addr, s.Target())
	// Never started: Close deletes it, and the port is free again.
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
	assert.Equal(t, "", s.Target())
	assert.ErrorContains(t, s.Start(), "server is closed")
	assert.ErrorContains(t, s.Stop(), "server is closed")

	var nilServer *Server
	assert.Error(t, nilServer.Start())
	assert.Error(t, nilServer.Stop())
	assert.NoError(t, nilServer.Close())
	assert.Equal(t, "", nilServer.Target())
}

func TestServerBadDef(t *testing.T) {
	_, err := NewServer([]byte("not a ServerDef"))
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, InvalidArgument, e.Code)

	def, _ := oneTaskServerDef(t)
	def.JobName = "ps"
	b, err := proto.Marshal(def)
	require.NoError(t, err)
	_, err = NewServer(b)
	assert.ErrorContains(t, err, `Job "ps" was not defined in cluster`)
}

// A started server cannot be shut down inside its process (see Server), so
// the test runs it in a child process: the test binary again, selected by
// serverChildEnv, which the parent waits for with a deadline.
const serverChildEnv = "GOTF_CGO_SERVER_CHILD"

func TestServerStartedInChild(t *testing.T) {
	if os.Getenv(serverChildEnv) != "" {
		t.Skip("the child runs TestServerChild only")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestServerChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), serverChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "child:\n%s", out)
	assert.Contains(t, string(out), "--- PASS: TestServerChild")
}

func TestServerChild(t *testing.T) {
	if os.Getenv(serverChildEnv) == "" {
		t.Skip("run by TestServerStartedInChild in a child process")
	}
	def, addr := oneTaskServerDef(t)
	b, err := proto.Marshal(def)
	require.NoError(t, err)
	s, err := NewServer(b)
	require.NoError(t, err)
	require.NoError(t, s.Start())

	g := NewGraph()
	c := constOp(t, g, "c", []int64{2}, 3, 4)
	sess, err := NewSession(g, &SessionOptions{Target: s.Target()})
	require.NoError(t, err)
	out, err := sess.Run(nil, []Output{{c, 0}}, nil)
	require.NoError(t, err)
	assert.Equal(t, []float32{3, 4}, bytesf32(out[0].Data()))
	out[0].Close()
	devs, err := sess.ListDevices()
	require.NoError(t, err)
	require.NotEmpty(t, devs)
	assert.True(t, strings.HasPrefix(devs[0].Name, "/job:worker/replica:0/task:0/"), devs[0].Name)
	require.NoError(t, sess.Close())

	err = s.Stop()
	var e *Error
	require.ErrorAs(t, err, &e, "TensorFlow %s", addr)
	assert.Equal(t, Unimplemented, e.Code)
	// Leaks instead of aborting the process.
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
}
