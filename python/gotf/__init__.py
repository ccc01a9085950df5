"""Python companions of gotf, the Go bindings of TensorFlow.

gotf.keraslike holds the Keras classes of Go's layers that Keras does not have.
"""
