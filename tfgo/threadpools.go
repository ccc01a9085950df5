package tfgo

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"

	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
)

// The runtime's CPU thread pools belong to the process, not the session:
// the intra-op pool (the threads one kernel splits its work over) is made
// with the first CPU device, by the process's first session, and the
// inter-op pool (the threads the executor runs kernels on) by the first
// session that uses the global one. A later session's sizes are ignored
// (local_device.cc, direct_session.cc). Python refuses such a late change
// (tf.config.threading.set_intra_op_parallelism_threads after TensorFlow
// is initialized raises a RuntimeError); NewSession and LoadSavedModel
// refuse it too, naming the field, rather than run silently on the first
// session's pools.
var pools struct {
	sync.Mutex
	made         bool
	intra, inter int // their sizes
	// intraPerSession: TF_OVERRIDE_GLOBAL_THREADPOOL was true when the
	// first device was made, and every device makes its own intra-op pool.
	intraPerSession bool
	interMade       bool
}

// claimThreadPools records the pools the process's first in-process
// session makes, and refuses a later session's explicit size that differs
// from theirs.
func claimThreadPools(o SessionOptions, c *cpb.ConfigProto) error {
	if o.Target != "" {
		return nil // the pools are the server's
	}
	name := func(own int, field, proto string) string {
		if own > 0 {
			return "SessionOptions." + field
		}
		return "SessionOptions.Config." + proto
	}
	return claimPools(c, name(o.IntraOpThreads, "IntraOpThreads", "intra_op_parallelism_threads"),
		name(o.InterOpThreads, "InterOpThreads", "inter_op_parallelism_threads"))
}

// claimPools is claimThreadPools for config c, whose thread counts the
// errors call intraName and interName. A server makes its devices, and
// with the first of them the intra-op pool, from its
// default_session_config, but its workers run kernels on a pool of their
// own, not the sessions' inter-op pool: for a server interName is "".
func claimPools(c *cpb.ConfigProto, intraName, interName string) error {
	intra, inter := int(c.GetIntraOpParallelismThreads()), int(c.GetInterOpParallelismThreads())
	globalInter := interName != "" && len(c.GetSessionInterOpThreadPool()) == 0 && !c.GetUsePerSessionThreads() && inter >= 0
	pools.Lock()
	defer pools.Unlock()
	if !pools.made {
		pools.made = true
		pools.intra = poolSize(intra, "TF_NUM_INTRAOP_THREADS")
		pools.intraPerSession = envTrue("TF_OVERRIDE_GLOBAL_THREADPOOL")
	} else if intra > 0 && intra != pools.intra && !pools.intraPerSession {
		return fmt.Errorf("tfgo: %s %d: this process's intra-op thread pool has %d threads, made by its first session; "+
			"TensorFlow makes it once per process, as Python's tf.config.threading does: ask for the size in the first "+
			"session, or set TF_OVERRIDE_GLOBAL_THREADPOOL=1 before it for a pool per session", intraName, intra, pools.intra)
	}
	if !globalInter {
		return nil
	}
	if !pools.interMade {
		pools.interMade = true
		pools.inter = poolSize(inter, "TF_NUM_INTEROP_THREADS")
	} else if inter > 0 && inter != pools.inter {
		return fmt.Errorf("tfgo: %s %d: this process's inter-op thread pool has %d threads, made by its first session; "+
			"TensorFlow makes it once per process: ask for the size in the first session, or give this session a pool "+
			"of its own (Config.session_inter_op_thread_pool)", interName, inter, pools.inter)
	}
	return nil
}

// poolSize is the size TensorFlow gives a pool asked for with n threads:
// n, else the environment variable's, else one per schedulable CPU.
func poolSize(n int, env string) int {
	if n > 0 {
		return n
	}
	if v, err := strconv.Atoi(os.Getenv(env)); err == nil && v > 0 {
		return v
	}
	return runtime.NumCPU()
}

// envTrue reads a boolean environment variable as TensorFlow's
// ReadBoolFromEnvVar does: "1" or "true", case-insensitive.
func envTrue(name string) bool {
	v := strings.ToLower(os.Getenv(name))
	return v == "1" || v == "true"
}
