package main

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gotf/gotf/internal/testutil"
	"github.com/gotf/gotf/serve/tfserving"
	"github.com/stretchr/testify/require"
	tpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	tspb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	typb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestServesGRPC starts gotf-serve with --port on loopback and REST off,
// and calls its gRPC API: health, GetModelStatus until the model is available, and
// Predict, whose answer equals what the exporting Go session computed;
// SIGTERM then stops it cleanly.
func TestServesGRPC(t *testing.T) {
	dir := t.TempDir()
	x := [][]float32{{1, 2, 3}, {-0.5, 0.25, 4}}
	want := exportAffine(t, filepath.Join(dir, "m"), 7, 4, x)
	addr := testutil.FreeAddrs(t, 1)[0]
	// gRPC only, as tensorflow_model_server serves by default.
	c := start(t, "--grpc_host=127.0.0.1", "--port="+addr[strings.LastIndex(addr, ":")+1:], "--rest_api_port=0",
		"--model_name=m", "--model_base_path="+filepath.Join(dir, "m"))

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	models := tfserving.NewModelServiceClient(conn)
	for {
		st, err := models.GetModelStatus(ctx, &tfserving.GetModelStatusRequest{ModelSpec: &tfserving.ModelSpec{Name: "m"}})
		if err == nil && len(st.ModelVersionStatus) == 1 && st.ModelVersionStatus[0].State == tfserving.ModelVersionStatus_AVAILABLE {
			require.Equal(t, int64(7), st.ModelVersionStatus[0].Version)
			break
		}
		select {
		case <-c.exited:
			t.Fatalf("gotf-serve exited: %v", c.err)
		case <-ctx.Done():
			t.Fatalf("model not available: %v %v", st, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, h.Status)

	in := &tpb.TensorProto{Dtype: typb.DataType_DT_FLOAT, TensorShape: &tspb.TensorShapeProto{Dim: []*tspb.TensorShapeProto_Dim{{Size: 2}, {Size: 3}}}}
	for _, row := range x {
		in.FloatVal = append(in.FloatVal, row...)
	}
	resp, err := tfserving.NewPredictionServiceClient(conn).Predict(ctx, &tfserving.PredictRequest{
		ModelSpec: &tfserving.ModelSpec{Name: "m"}, Inputs: map[string]*tpb.TensorProto{"x": in},
	})
	require.NoError(t, err)
	require.Equal(t, int64(7), resp.GetModelSpec().GetVersion().GetValue())
	testutil.AllClose(t, "gRPC predict", want, resp.Outputs["y"].GetFloatVal(), 1e-6, 1e-6)

	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-c.exited:
		require.NoError(t, c.err, "exit status after SIGTERM")
	case <-time.After(60 * time.Second):
		t.Fatal("gotf-serve did not stop within 60 s of SIGTERM")
	}
}
