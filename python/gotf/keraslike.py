"""Keras 3 classes of gotf's keraslike layers that Keras does not have.

Importing this module registers TransformerBlock and PositionalEmbedding with
Keras, so keras.models.load_model opens the .keras and .h5 files Go writes
without custom_objects:

    import keras
    import gotf.keraslike

    model = keras.models.load_model("model.keras")

Each class is the twin of the Go layer of the same name in
github.com/gotf/gotf/keraslike (transformer_block.go, positional_embedding.go):
the same constructor arguments and get_config keys (the keys Go writes in
config.json), the same sublayers under the same attribute names (which are the
paths of the weights in a .weights.h5 file), the same weight order, and the
same computation, so that Go and Keras predict the same numbers from one file.
Go's tests run their Keras references with these classes.
"""

import keras

__all__ = ["PositionalEmbedding", "TransformerBlock"]

# Keras finds a custom class by the registered_name a file gives it. These
# classes save as "gotf>TransformerBlock" and "gotf>PositionalEmbedding"; Go
# has written the bare class names, which are also registered (below).
_PACKAGE = "gotf"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PositionalEmbedding(keras.layers.Layer):
    """Adds learned position embeddings to a sequence: x + embeddings[:T].

    For inputs of shape [..., T, output_dim] with T <= sequence_length, the
    weight "embeddings" [sequence_length, output_dim] is sliced to the first T
    rows and added, broadcast over the leading dimensions. The slicing is
    keras_hub.layers.PositionEmbedding's (start_index 0), which returns the
    embeddings for the caller to add; this layer adds them, as the
    TokenAndPositionEmbedding of the Keras examples does.
    """

    def __init__(self, sequence_length, output_dim, **kwargs):
        super().__init__(**kwargs)
        if sequence_length <= 0 or output_dim <= 0:
            raise ValueError(
                "PositionalEmbedding: sequence_length and output_dim must be "
                f"positive, got {sequence_length} and {output_dim}")
        self.sequence_length = int(sequence_length)
        self.output_dim = int(output_dim)

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.sequence_length, self.output_dim),
            initializer="glorot_uniform", trainable=True)

    def call(self, inputs):
        length = keras.ops.shape(inputs)[-2]
        positions = keras.ops.slice(self.embeddings, (0, 0), (length, self.output_dim))
        return inputs + keras.ops.cast(positions, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length,
                "output_dim": self.output_dim}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TransformerBlock(keras.layers.Layer):
    """A transformer layer made of Keras layers, with d = d_model.

    Post-LN (the default):

        x = layer_normalization(x + dropout(multi_head_attention(x, x)))
        x = layer_normalization_1(x + dropout_1(dense_1(dense(x))))

    Pre-LN (pre_ln=True, GPT-2's), whose output is not normalized:

        h = layer_normalization(x);   x = x + dropout(multi_head_attention(h, h))
        h = layer_normalization_1(x); x = x + dropout_1(dense_1(dense(h)))

    dense has ff_dim units and the activation, dense_1 has d_model. The
    attention has num_heads heads of key_dim (default d_model // num_heads), is
    causal unless causal=False, and takes an optional attention_mask. With a
    seed, the attention's dropout is seeded with it and the two output
    dropouts with seed + 1 and seed + 2, as in Go.
    """

    def __init__(self, d_model, num_heads, ff_dim, key_dim=None, dropout=0.0,
                 epsilon=1e-6, pre_ln=False, activation="gelu", causal=True,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        key_dim = key_dim or (d_model // num_heads if num_heads > 0 else 0)
        if min(d_model, num_heads, ff_dim, key_dim) <= 0:
            raise ValueError(
                "TransformerBlock: d_model, num_heads, ff_dim and key_dim must "
                f"be positive, got {d_model}, {num_heads}, {ff_dim} and {key_dim}")
        self.d_model, self.num_heads, self.ff_dim = int(d_model), int(num_heads), int(ff_dim)
        self.key_dim, self.rate, self.epsilon = int(key_dim), float(dropout), float(epsilon)
        self.pre_ln, self.activation, self.causal = bool(pre_ln), activation, bool(causal)
        self.seed = seed
        seeds = (None, None, None) if seed is None else (seed, seed + 1, seed + 2)
        # The attribute names are the weights' paths, and the assignment order
        # is their order: both are what Go reads and writes.
        policy = self.dtype_policy
        self.multi_head_attention = keras.layers.MultiHeadAttention(
            self.num_heads, self.key_dim, dropout=self.rate, seed=seeds[0],
            name="multi_head_attention", dtype=policy)
        self.layer_normalization = keras.layers.LayerNormalization(
            epsilon=self.epsilon, name="layer_normalization", dtype=policy)
        self.layer_normalization_1 = keras.layers.LayerNormalization(
            epsilon=self.epsilon, name="layer_normalization_1", dtype=policy)
        self.dense = keras.layers.Dense(
            self.ff_dim, activation=activation, name="dense", dtype=policy)
        self.dense_1 = keras.layers.Dense(self.d_model, name="dense_1", dtype=policy)
        self.dropout = keras.layers.Dropout(self.rate, seed=seeds[1], name="dropout", dtype=policy)
        self.dropout_1 = keras.layers.Dropout(self.rate, seed=seeds[2], name="dropout_1", dtype=policy)

    def build(self, input_shape):
        # Built here rather than on the first call so that a file Keras saved,
        # whose build_config is loaded before any call, has its variables.
        input_shape = tuple(input_shape)
        self.multi_head_attention.build(input_shape, input_shape)
        self.layer_normalization.build(input_shape)
        self.layer_normalization_1.build(input_shape)
        self.dense.build(input_shape)
        self.dense_1.build(input_shape[:-1] + (self.ff_dim,))

    def call(self, inputs, attention_mask=None, training=None):
        def attend(h):
            a = self.multi_head_attention(h, h, attention_mask=attention_mask,
                                          use_causal_mask=self.causal, training=training)
            return self.dropout(a, training=training)

        def feed_forward(h):
            return self.dropout_1(self.dense_1(self.dense(h)), training=training)

        x = inputs
        if self.pre_ln:
            x = x + attend(self.layer_normalization(x))
            return x + feed_forward(self.layer_normalization_1(x))
        x = self.layer_normalization(x + attend(x))
        return self.layer_normalization_1(x + feed_forward(x))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "d_model": self.d_model, "num_heads": self.num_heads,
                "ff_dim": self.ff_dim, "key_dim": self.key_dim, "dropout": self.rate,
                "epsilon": self.epsilon, "pre_ln": self.pre_ln,
                "activation": self.activation, "causal": self.causal, "seed": self.seed}


# Go's files name these classes by their bare names (registered_name
# "TransformerBlock"), which Keras looks up as such. Keras consults this
# registry before a load_model call's custom_objects, so a class of one's own
# of the same name is passed with keras.saving.custom_object_scope or
# registered after this import; one registered before it is kept.
for _cls in (PositionalEmbedding, TransformerBlock):
    keras.saving.get_custom_objects().setdefault(_cls.__name__, _cls)
del _cls
