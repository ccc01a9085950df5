package cgo

// #cgo LDFLAGS: -ldl
// #include <dlfcn.h>
// #include <fcntl.h>
// #include <stdlib.h>
// #include <string.h>
// #include <unistd.h>
//
// static int gotf_saved_stderr = -1;
//
// // Runs from the executable's .preinit_array, before the shared libraries'
// // initialisers: TensorFlow's static initialisers log (absl, before
// // InitializeLog) whatever TF_CPP_MIN_LOG_LEVEL says, so stderr goes to
// // /dev/null until this package's Go init restores it.
// static void gotf_quiet_begin(int argc, char** argv, char** envp) {
//   for (char** e = envp; *e != NULL; e++) {
//     // The user chose a level: show what it lets through.
//     if (strncmp(*e, "TF_CPP_MIN_LOG_LEVEL=", 21) == 0) return;
//   }
//   int null = open("/dev/null", O_WRONLY);
//   if (null < 0) return;
//   gotf_saved_stderr = dup(2);
//   dup2(null, 2);
//   close(null);
// }
// __attribute__((section(".preinit_array"), used))
// static void (*gotf_preinit)(int, char**, char**) = gotf_quiet_begin;
//
// static void gotf_quiet_end(int level) {
//   if (gotf_saved_stderr >= 0) {
//     // absl::SetMinLogLevel(level), in each copy of absl the libraries carry.
//     const char* libs[] = {"libtensorflow_framework.so.2", "libtensorflow_cc.so.2", "libtensorflow.so.2"};
//     for (int i = 0; i < 3; i++) {
//       void* h = dlopen(libs[i], RTLD_NOW | RTLD_NOLOAD);
//       if (h == NULL) continue;
//       void (*set)(int) = (void (*)(int))dlsym(h, "_ZN4absl12lts_2025081414SetMinLogLevelENS0_18LogSeverityAtLeastE");
//       if (set != NULL) set(level);
//       dlclose(h);
//     }
//     dup2(gotf_saved_stderr, 2);
//     close(gotf_saved_stderr);
//     gotf_saved_stderr = -1;
//   }
// }
import "C"

import "os"

// LogLevelEnv is TensorFlow's switch for its C++ log. Unless it is set when
// the program starts, the package hides TensorFlow's start-up noise (oneDNN
// notices, cpu_feature_guard, "could not find cuda drivers") and keeps only
// errors; on a machine without an NVIDIA driver it keeps only fatal messages,
// since every session would log that cuInit failed. TF_CPP_MIN_LOG_LEVEL=0
// shows everything again.
const LogLevelEnv = "TF_CPP_MIN_LOG_LEVEL"

func init() {
	level := 2 // ERROR
	if _, err := os.Stat("/dev/nvidiactl"); err != nil {
		level = 3 // FATAL
	}
	C.gotf_quiet_end(C.int(level))
}
