// Package pyref lets Go tests compute reference values with Python
// TensorFlow in the same test run.
//
// A [Worker] is a long-lived Python process (the interpreter of the
// project's .venv, see [Start]) that executes snippets of Python code on
// request. Python with TensorFlow takes seconds to start, so a test binary
// should start one worker and reuse it for all its tests: [Shared] does
// that, and TestMain closes it when the tests are done:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		if err := pyref.CloseShared(); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			if code == 0 {
//				code = 1
//			}
//		}
//		os.Exit(code)
//	}
//
//	func TestSoftmax(t *testing.T) {
//		w, err := pyref.Shared()
//		if err != nil {
//			t.Fatal(err)
//		}
//		out, err := w.Run(`outputs["y"] = tf.nn.softmax(inputs["x"])`,
//			map[string]*pyref.Array{"x": pyref.Float32s([]int64{3}, []float32{1, 2, 3})})
//		if err != nil {
//			t.Fatal(err)
//		}
//		want, err := out["y"].Float32s()
//		...
//	}
//
// The code given to [Worker.Run] is executed in a fresh namespace holding
// np (numpy), tf (tensorflow), inputs (a dict from name to numpy array; a
// string array is a numpy object array of bytes) and outputs (an empty
// dict). The code stores its results in outputs, or binds outputs to a
// dict of its own (outputs = dict(inputs)); any value np.asarray accepts
// will do, including tf.Tensor and Python scalars, bytes and str (str is
// encoded as UTF-8). A numpy array of fixed-width bytes (dtype "S") has
// already lost its elements' trailing NUL bytes; use dtype=object to keep
// them. Whatever the code prints goes to standard error, not to the
// protocol stream.
package pyref
