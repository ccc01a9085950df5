package keraslike

import (
	"archive/zip"
	"encoding/binary"
	"encoding/json"
	"io"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/internal/testutil"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// externalModelsPy saves, with the real Keras, models the way people write
// them (built only from the classes keraslike implements, in the
// configurations other tests do not make), with Keras' own predictions;
// and models keraslike must refuse. One Python run writes every file.
const externalModelsPy = `
import os, json, logging, warnings
import numpy as np
import ml_dtypes
import keras
L = keras.layers
# Keras' notes on legacy .h5 files, retracing and input_shape, dozens of
# times over: silenced for this run only.
quiet = [logging.getLogger("absl"), logging.getLogger("tensorflow")]
levels, filters = [q.level for q in quiet], warnings.filters[:]
for q in quiet:
    q.setLevel(logging.ERROR)
warnings.simplefilter("ignore", UserWarning)
d = inputs["dir"].item().decode()
rng = np.random.default_rng(17)
manifest = {}

def randomize(m):
    # Seeded random weights: Keras' initial ones (zero biases, unit LayerNormalization
    # scales) would hide a weight loaded into the wrong place.
    m.set_weights([rng.normal(0, 0.3, w.shape).astype(w.dtype) for w in m.get_weights()])

def floats(*shape):
    return rng.normal(0, 1, shape).astype("float32")

def ids(*shape, vocab=20, dtype="int32"):
    return rng.integers(0, vocab, shape).astype(dtype)

def seq(*layers, shape=(4,), dtype=None, name=None, **kw):
    return keras.Sequential([keras.Input(shape, dtype=dtype, **kw), *layers], name=name)

def save(name, m, x, formats=("keras", "h5", "weights.h5", "dir"), compiled=None):
    # One case: the model's files and Keras' own predictions on x.
    entry = {"formats": [], "errors": {}}
    if compiled is not None:
        # The file then holds the optimizer's variables too: trained one
        # step ("fit"), or only built.
        m.compile(optimizer=keras.optimizers.Adam(1e-3) if compiled == "fit" else compiled, loss="mse")
        if compiled == "fit":
            m.fit(x, np.zeros_like(np.asarray(m(x[:1]), dtype="float32").repeat(len(x), 0)), epochs=1, verbose=0)
        else:
            m.optimizer.build(m.trainable_variables)
    y = m.predict(x, verbose=0)
    if isinstance(y, dict):  # a model's single output, in the structure it was given
        (y,) = y.values()
    elif isinstance(y, (list, tuple)):
        (y,) = y
    for f in formats:
        p = os.path.join(d, name + "." + f)
        try:
            if f == "weights.h5":
                m.save_weights(p)
            elif f == "dir":  # the .keras members as files
                m.save(os.path.join(d, name + "_dir"), zipped=False)
            else:
                m.save(p)
            entry["formats"].append(f)
        except Exception as e:  # reported to Go, which says which format Keras could not write
            entry["errors"][f] = "%s: %s" % (type(e).__name__, str(e)[:200])
    outputs["x_" + name] = x
    outputs["y_" + name] = np.asarray(y, dtype="float32")
    manifest[name] = entry

def refused(name, m):
    # A model keraslike must refuse: only its .keras and legacy .h5 files.
    entry = {"formats": [], "errors": {}}
    for f in ("keras", "h5"):
        try:
            m.save(os.path.join(d, name + "." + f))
            entry["formats"].append(f)
        except Exception as e:
            entry["errors"][f] = "%s: %s" % (type(e).__name__, str(e)[:200])
    manifest[name] = entry

def case(name, build, x, **kw):
    keras.backend.clear_session()
    keras.config.set_floatx(kw.pop("floatx", "float32"))
    keras.config.set_dtype_policy(kw.pop("global_policy", keras.config.floatx()))
    try:
        m = build()
        if not m.built:
            m.build((None,) + x.shape[1:])
        randomize(m)
        save(name, m, x, **kw)
    finally:
        keras.config.set_floatx("float32")
        keras.config.set_dtype_policy("float32")

# --- Sequential models: with and without an explicit Input.
case("seq_no_input", lambda: keras.Sequential([L.Dense(8, activation="relu", name="d1"), L.Dropout(0.3, name="drop"), L.Dense(3, activation="softmax", name="d2")], name="no_input"), floats(5, 4))
def seq_called():
    m = keras.Sequential([L.Dense(6, activation="tanh"), L.Dense(2)])
    m(floats(1, 4))  # built by a first call, as a script would do
    return m
case("seq_built_by_call", seq_called, floats(5, 4))
case("seq_input_shape_kwarg", lambda: keras.Sequential([L.Dense(5, input_shape=(4,), activation="sigmoid"), L.Dense(2)]), floats(5, 4))
case("seq_fixed_batch", lambda: seq(L.Dense(3, name="d"), batch_size=3), floats(3, 4))
case("seq_var_length", lambda: seq(L.Dense(6, activation="gelu"), L.LayerNormalization(), L.GlobalMaxPooling1D(keepdims=True), L.Flatten(), L.Dense(2), shape=(None, 4)), floats(4, 7, 4))
case("seq_default_names", lambda: keras.Sequential([keras.Input((4,)), L.Dense(4), L.Dense(4), L.Activation("relu"), L.Dense(4), L.Dropout(0.1), L.Dense(1)]), floats(5, 4))

# --- Dense: no bias, every supported activation string, initializers, ranks.
acts = ["linear", "relu", "tanh", "sigmoid", "softmax", "gelu", None, keras.activations.relu, keras.activations.gelu]
case("dense_activations", lambda: seq(*[L.Dense(5, activation=a, name="dense_%d" % i) for i, a in enumerate(acts)]), floats(6, 4))
# Every other activation keraslike implements, by name, in a Dense and in an
# Activation layer, on inputs wide enough to reach each one's pieces.
for a in ["elu", "selu", "swish", "silu", "leaky_relu", "relu6", "softplus", "softsign", "hard_sigmoid",
          "exponential", "mish", "log_softmax", "hard_silu", "hard_swish", "celu", "squareplus", "log_sigmoid",
          "tanh_shrink", "hard_tanh", "soft_shrink", "hard_shrink", "sparse_plus", "sparse_sigmoid"]:
    case("act_ok_" + a, lambda: seq(L.Dense(6, activation=a, name="d"), L.Activation(a, name="act"), L.Dense(2)), floats(8, 4) * 2)
case("activation_classes", lambda: seq(L.ReLU(name="relu"), L.Dense(6), L.ReLU(max_value=6.0, name="relu6"), L.Dense(6),
    L.ReLU(negative_slope=0.1, name="leaky"), L.LeakyReLU(name="lrelu"), L.LeakyReLU(negative_slope=0.05), L.ELU(name="elu_1"),
    L.ELU(alpha=0.5), L.Dense(5), L.Softmax(name="sm"), L.Dense(3)), floats(8, 4) * 3)
def merges():
    x = keras.Input((6,))
    a, b, c = L.Dense(6, name="a")(x), L.Dense(6, name="b")(x), L.Dense(6, name="c")(x)
    y = L.Concatenate(name="cat")([L.Subtract(name="sub")([a, b]), L.Multiply(name="mul")([a, b, c]),
        L.Average(name="avg")([a, b, c]), L.Maximum(name="max")([a, c]), L.Minimum(name="min")([b, c])])
    return keras.Model(x, L.Dense(2, name="out")(L.Concatenate(axis=1, name="cat1")([y, a])))
case("merge_layers", merges, floats(5, 6))
def reshapes():
    x = keras.Input((4, 6))
    h = L.Identity(name="id")(L.Reshape((-1,), name="r2")(L.Permute((2, 1), name="p")(L.Reshape((6, 4), name="r1")(x))))
    h = L.Concatenate(axis=1, name="cat")([L.Reshape((3, 8), name="r3")(h), L.Reshape((3, 8), name="r4")(L.Dense(24, name="d")(h))])
    return keras.Model(x, L.Dense(2, name="out")(L.Flatten()(L.Permute((2, 1))(h))))
case("reshape_permute", reshapes, floats(5, 4, 6))
case("softmax_axes", lambda: seq(L.Softmax(axis=1, name="sm1"), L.Softmax(axis=[2]), L.Flatten(), L.Dense(2), shape=(3, 4)), floats(5, 3, 4))
case("activation_layers", lambda: seq(*[L.Activation(a or "linear", name="act_%d" % i) for i, a in enumerate(acts)], L.Dense(3)), floats(6, 4))
case("dense_options", lambda: seq(
    L.Dense(6, use_bias=False, activation="relu"), L.Dense(3, use_bias=False),
    L.Dense(4, kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None, kernel_constraint=None),
    L.Dense(6, kernel_initializer="he_normal", bias_initializer="ones"),
    L.Dense(6, kernel_initializer=keras.initializers.GlorotNormal(seed=3), bias_initializer=keras.initializers.Constant(0.5)),
    L.Dense(3, kernel_initializer=keras.initializers.RandomUniform(-0.1, 0.1, seed=1), bias_initializer=keras.initializers.RandomNormal(stddev=0.2))), floats(5, 4))
case("dense_rank3_rank4", lambda: seq(L.Dense(5), L.LayerNormalization(), L.LayerNormalization(axis=2), L.Activation("softmax"),
    L.Dense(3, activation="softmax"), L.Dropout(0.2), L.Flatten(), L.Dense(2), shape=(2, 3, 4)), floats(5, 2, 3, 4))

# --- Embedding.
case("embedding_int32", lambda: seq(L.Embedding(20, 6, embeddings_initializer="uniform"), L.GlobalAveragePooling1D(), L.Dense(3), shape=(7,), dtype="int32"), ids(5, 7))
# No Input: Keras builds the model for float32 inputs and Embedding casts them.
case("seq_embedding_no_input", lambda: keras.Sequential([L.Embedding(20, 6), L.GlobalMaxPooling1D(), L.Dense(2)]), ids(5, 7, dtype="float32"))
def text_var_length():
    # Token ids of any length: attention, causal attention, pooling.
    x = keras.Input((None,), dtype="int32", name="tokens")
    h = L.Embedding(20, 8, name="emb")(x)
    h = L.Add()([h, L.MultiHeadAttention(2, 4, name="mha")(h, h)])
    h = L.Add()([h, L.MultiHeadAttention(2, 4, name="causal")(h, h, use_causal_mask=True)])
    return keras.Model(x, L.Dense(3, name="head")(L.GlobalAveragePooling1D()(L.LayerNormalization()(h))))
case("embedding_var_length", text_var_length, ids(4, 9))
case("embedding_int64", lambda: seq(L.Embedding(20, 6), L.Flatten(), L.Dense(3), shape=(7,), dtype="int64"), ids(5, 7, dtype="int64"))

# --- LayerNormalization: axes, epsilon, center, scale.
case("ln_variants", lambda: seq(
    L.LayerNormalization(axis=1, name="ln_axis1"), L.LayerNormalization(axis=-2, name="ln_axis_m2"),
    L.LayerNormalization(axis=[2], name="ln_axis_list"), L.LayerNormalization(epsilon=1e-5, center=False, name="ln_eps_nocenter"),
    L.LayerNormalization(scale=False, name="ln_noscale"), L.LayerNormalization(center=False, scale=False, epsilon=0.1, name="ln_bare"),
    L.LayerNormalization(beta_initializer="ones", gamma_initializer=keras.initializers.RandomNormal(seed=2), name="ln_init"),
    L.Dense(3), shape=(5, 4)), floats(3, 5, 4))

# --- MultiHeadAttention variants (self- and three-input attention).
def mha(**kw):
    def build():
        x = keras.Input((6, 8), name="tokens")
        y = L.MultiHeadAttention(name="mha", **kw)(x, x)
        return keras.Model(x, L.Dense(3, name="head")(L.Flatten()(y)), name="mha_model")
    return build
def mha_variants():
    # Each variant's output is the next one's query, key and value.
    h = x = keras.Input((6, 8), name="tokens")
    for kw in [dict(num_heads=2, key_dim=4, value_dim=3, name="value_dim"),
               dict(num_heads=2, key_dim=4, output_shape=5, name="output_shape_int"),
               dict(num_heads=2, key_dim=4, output_shape=(7,), name="output_shape_tuple"),
               dict(num_heads=3, key_dim=2, use_bias=False, name="no_bias"),
               dict(num_heads=2, key_dim=4, attention_axes=(1,), name="axes_tuple"),
               dict(num_heads=2, key_dim=4, attention_axes=1, name="axes_int"),
               dict(num_heads=2, key_dim=4, attention_axes=(-2,), name="axes_negative"),
               dict(num_heads=1, key_dim=8, dropout=0.2, seed=4, name="dropout"),
               dict(num_heads=2, key_dim=4, kernel_initializer="he_uniform", bias_initializer="ones", name="initializers")]:
        h = L.MultiHeadAttention(**kw)(h, h)
    return keras.Model(x, L.Dense(3, name="head")(L.Flatten()(h)), name="mha_model")
case("mha_variants", mha_variants, floats(3, 6, 8))
def mha_qkv():
    x = keras.Input((6, 8))
    q, v, k = L.Dense(8, name="q_in")(x), L.Dense(5, name="v_in")(x), L.Dense(7, name="k_in")(x)
    y = L.MultiHeadAttention(2, 4, value_dim=3, name="mha")(q, v, key=k)
    return keras.Model(x, y)
case("mha_query_value_key", mha_qkv, floats(3, 6, 8))
def mha_positional_key():
    x = keras.Input((6, 8))
    v = L.Dense(8, name="v_in")(x)
    y = L.MultiHeadAttention(2, 4, name="mha")(x, v, v, use_causal_mask=True)
    return keras.Model(x, y)
case("mha_positional_key_causal", mha_positional_key, floats(3, 6, 8))

# --- Functional graphs: named input, shared layers, merges.
def shared():
    x = keras.Input((4,), name="features")
    dense = L.Dense(4, activation="tanh", name="shared")
    a = dense(x)
    b = dense(a)  # the same weights used twice
    return keras.Model(x, L.Dense(2, name="out")(L.Add(name="sum")([a, b, x])), name="shared_model")
case("functional_shared_layer", shared, floats(5, 4))
def shared_mha():
    x = keras.Input((6, 8))
    att = L.MultiHeadAttention(2, 4, name="att")
    ln = L.LayerNormalization(name="ln")
    h = ln(L.Add()([x, att(x, x)]))
    h = ln(L.Add()([h, att(h, h)]))
    return keras.Model(x, h)
case("functional_shared_attention", shared_mha, floats(3, 6, 8))
def residual():
    x = keras.Input((5, 8), name="in")
    h = L.Dense(8, activation="relu", name="ff")(x)
    h = L.Dropout(0.5, name="drop")(h)
    h = L.Add(name="res")([x, h])
    h = L.LayerNormalization(epsilon=1e-6, name="ln")(h)
    return keras.Model(x, L.Dense(2, name="head")(L.GlobalAveragePooling1D(name="pool")(h)))
case("functional_residual", residual, floats(4, 5, 8))

def keyword_calls():
    # Layers called with keyword arguments only, and with explicit defaults.
    x = keras.Input((6, 8))
    h = L.Dense(8, name="d")(inputs=x)
    h = L.LayerNormalization(name="ln")(inputs=h)
    a = L.MultiHeadAttention(2, 4, name="mha")(query=h, value=h, key=h, attention_mask=None, training=False)
    h = L.Add(name="add")(inputs=[h, L.Dropout(0.5, name="drop")(a, training=False)])
    h = L.GlobalAveragePooling1D(name="pool")(inputs=h)
    return keras.Model(inputs=x, outputs=L.Activation("softmax", name="act")(inputs=L.Dense(3, name="head")(h)))
case("functional_keyword_calls", keyword_calls, floats(3, 6, 8))
def mha_cross_length():
    # Keys and values shorter than the queries (an operation node slices them).
    x = keras.Input((6, 8))
    v = x[:, :3]
    h = L.MultiHeadAttention(2, 4, name="cross")(x, v)
    h = L.MultiHeadAttention(2, 4, name="cross_causal")(h, v, use_causal_mask=True)
    return keras.Model(x, h)
case("mha_cross_length", mha_cross_length, floats(3, 6, 8))

def io_structures(kind):
    # A single input and output given as a list of one, or as a dict.
    def build():
        x = keras.Input((4,), name="features")
        y = L.Dense(2, name="out")(L.Dense(5, activation="relu", name="hidden")(x))
        if kind == "list":
            return keras.Model([x], [y])
        return keras.Model({"features": x}, {"out": y})
    return build
case("functional_list_io", io_structures("list"), floats(5, 4))
case("functional_dict_io", io_structures("dict"), floats(5, 4))
case("layer_names", lambda: seq(L.Activation("tanh", name="act>first"), L.Dense(5, name="dense.one"), L.LayerNormalization(name="Norm-LN.2"),
                                L.Dense(1, name="Dense-Out_1"), name="model.v2-final"), floats(5, 4))
case("embedding_float_input", lambda: seq(L.Embedding(20, 4, name="emb"), L.Flatten(), L.Dense(2), shape=(7,)), ids(5, 7, dtype="float32"))

def shared_keywords():
    # A shared layer called positionally, then by keyword; a merge of one tensor with itself.
    x = keras.Input((4,))
    d = L.Dense(4, activation="relu", name="shared")
    h = d(inputs=d(x))
    h = L.Add(name="double")([h, h])
    return keras.Model(x, L.Dense(2, name="out")(h))
case("functional_shared_keywords", shared_keywords, floats(5, 4))
def frozen_attention():
    x = keras.Input((6, 8))
    h = L.MultiHeadAttention(2, 4, trainable=False, name="mha")(x, x)
    return keras.Model(x, L.LayerNormalization(trainable=False, name="ln")(h))
case("frozen_attention", frozen_attention, floats(3, 6, 8))

def mha_masks():
    # Attention masks: a constant (a hand-made causal mask) and one computed from the input.
    x = keras.Input((6, 8))
    tril = np.tril(np.ones((6, 6), dtype=bool))
    h = L.MultiHeadAttention(2, 4, name="const_mask")(x, x, attention_mask=tril)
    keep = keras.ops.expand_dims(keras.ops.greater(x[:, :, 0], -0.5), 1)
    h = L.MultiHeadAttention(2, 4, name="input_mask")(h, h, attention_mask=keep)
    return keras.Model(x, h)
case("mha_attention_masks", mha_masks, floats(3, 6, 8))
def add_constant():
    # A NumPy array among a merge's inputs (written as "__numpy__").
    x = keras.Input((4,))
    h = L.Dense(4, name="d")(x)
    return keras.Model(x, L.Add(name="add")([x, h, np.arange(4, dtype="float32")]))
case("add_constant", add_constant, floats(5, 4))

# --- Frozen layers and models; compiled and not compiled.
case("frozen_layer", lambda: seq(L.Dense(5, trainable=False, name="frozen"), L.Dense(2, name="free")), floats(5, 4), compiled="fit")
def frozen_model():
    m = seq(L.Dense(5), L.LayerNormalization(), L.Dense(2))
    m.trainable = False
    return m
case("frozen_model", frozen_model, floats(5, 4))
case("compiled_adam", residual, floats(4, 5, 8), compiled=keras.optimizers.Adam(1e-3))
case("compiled_sgd_momentum", lambda: seq(L.Dense(6, activation="relu"), L.Dense(2)), floats(5, 4), compiled=keras.optimizers.SGD(0.01, momentum=0.9))
case("compiled_adamw_mha", mha(num_heads=2, key_dim=4), floats(3, 6, 8), compiled=keras.optimizers.AdamW(1e-3))

# --- dtype policies: global and per layer.
def policy_model(dtype=None):
    x = keras.Input((6, 8), dtype=dtype)
    h = L.Dense(8, activation="gelu", name="ff")(x)
    h = L.LayerNormalization(name="ln")(L.Add(name="res")([x, h]))
    h = L.MultiHeadAttention(2, 4, name="mha")(h, h)
    return keras.Model(x, L.Dense(3, name="head")(L.GlobalAveragePooling1D(name="pool")(h)))
def half_attention():
    # Attention with dropout (its softmax layer path) and a causal mask, LayerNormalization kept in float32.
    x = keras.Input((6, 8))
    h = L.MultiHeadAttention(2, 4, dropout=0.1, name="mha")(x, x, use_causal_mask=True)
    h = L.LayerNormalization(dtype="float32", name="ln32")(L.Add()([x, h]))
    return keras.Model(x, L.Dense(3, name="head")(h))
case("policy_mixed_float16_attention", half_attention, floats(3, 6, 8), global_policy="mixed_float16")
case("policy_mixed_bfloat16_attention", half_attention, floats(3, 6, 8), global_policy="mixed_bfloat16")
case("policy_mixed_float16", policy_model, floats(3, 6, 8), global_policy="mixed_float16")
case("policy_mixed_bfloat16", policy_model, floats(3, 6, 8), global_policy="mixed_bfloat16")
case("policy_mixed_float16_compiled", policy_model, floats(3, 6, 8), global_policy="mixed_float16", compiled=keras.optimizers.Adam(1e-3))
case("policy_float64", lambda: seq(L.Dense(6, activation="relu"), L.LayerNormalization(), L.Dense(2)), floats(5, 4), global_policy="float64")
case("policy_float32_output", lambda: seq(L.Dense(6, activation="relu"), L.Dense(2), L.Activation("linear", dtype="float32")), floats(5, 4), global_policy="mixed_float16")
case("policy_per_layer", lambda: seq(L.Dense(6, activation="relu", dtype="mixed_float16"), L.Dense(6, dtype="mixed_bfloat16"), L.Dense(2, dtype="float64")), floats(5, 4))
case("policy_float16", policy_model, floats(3, 6, 8), global_policy="float16")
def half_model():
    x = keras.Input((7,), dtype="int32")
    h = L.Embedding(20, 8, name="emb")(x)
    h = L.LayerNormalization(name="ln")(L.Add()([h, L.MultiHeadAttention(2, 4, name="mha")(h, h)]))
    return keras.Model(x, L.Dense(3, name="head")(L.GlobalAveragePooling1D()(h)))
case("policy_bfloat16", half_model, ids(4, 7), global_policy="bfloat16")
# Inputs of other float dtypes: floatx float64 (Input and layers), half inputs.
case("floatx_float64", lambda: seq(L.Dense(6, activation="relu"), L.LayerNormalization(), L.Dense(2)), floats(5, 4).astype("float64"), floatx="float64")
case("input_float16", lambda: seq(L.Dense(6, activation="relu"), L.Dense(2), dtype="float16"), floats(5, 4).astype("float16"))
case("input_bfloat16_mixed", lambda: seq(L.Dense(6, activation="relu"), L.Dense(2), dtype="bfloat16"), floats(5, 4).astype(ml_dtypes.bfloat16), global_policy="mixed_bfloat16")
case("input_float64_mha", lambda: policy_model(dtype="float64"), floats(3, 6, 8).astype("float64"))
case("embedding_mixed_bfloat16", lambda: seq(L.Embedding(20, 8), L.Dense(8), L.GlobalAveragePooling1D(), L.Dense(3), shape=(7,), dtype="int32"), ids(4, 7), global_policy="mixed_bfloat16")

# --- Models keraslike must refuse: classes it does not implement, options it does not.
keras.backend.clear_session()
refused("conv1d", seq(L.Conv1D(4, 3, name="conv"), L.Flatten(), L.Dense(2), shape=(8, 4)))
refused("lstm", seq(L.LSTM(4, name="lstm"), L.Dense(2), shape=(8, 4)))
x = keras.Input((4,))
refused("batchnorm_functional", keras.Model(x, L.Dense(2)(L.BatchNormalization(name="bn")(x))))
for a in ["glu", "sparsemax"]:
    try:
        m = seq(L.Dense(4, activation=a, name="d"))
    except Exception as e:  # an activation this Keras does not have
        manifest["act_" + a] = {"formats": [], "errors": {"build": str(e)[:200]}}
        continue
    refused("act_" + a, m)
    manifest["act_" + a]["activation"] = m.layers[0].get_config()["activation"]
x = keras.Input((4, 6))
refused("merge_ranks", keras.Model(x, L.Multiply(name="mul")([x, L.GlobalAveragePooling1D()(x)])))
refused("relu_threshold", seq(L.ReLU(threshold=0.5, name="r")))
refused("relu_max_value", seq(L.ReLU(max_value=3.0, name="r")))
refused("softmax_two_axes", seq(L.Softmax(axis=(1, 2), name="sm"), shape=(3, 4)))
refused("act_layer_sparsemax", seq(L.Activation("sparsemax", name="act")))
refused("embedding_mask_zero", seq(L.Embedding(20, 4, mask_zero=True, name="emb"), L.GlobalAveragePooling1D(), shape=(7,), dtype="int32"))
refused("ln_two_axes", seq(L.LayerNormalization(axis=[1, 2], name="ln"), shape=(5, 4)))
x = keras.Input((2, 6, 8))
refused("mha_axes_2", keras.Model(x, L.MultiHeadAttention(2, 4, attention_axes=(2,), name="mha")(x, x)))
refused("mha_axes_1_2", keras.Model(x, L.MultiHeadAttention(2, 4, attention_axes=(1, 2), name="mha")(x, x)))
x = keras.Input((6, 8))
refused("mha_output_shape_2d", keras.Model(x, L.MultiHeadAttention(2, 4, output_shape=(2, 4), name="mha")(x, x)))
refused("pool_channels_first", seq(L.GlobalAveragePooling1D(data_format="channels_first", name="pool"), shape=(5, 4)))
x = keras.Input((6, 8))
refused("mha_scores", keras.Model(x, L.MultiHeadAttention(2, 4, name="mha")(x, x, return_attention_scores=True)[1]))
refused("dense_lora_rank", seq(L.Dense(4, lora_rank=2, name="d")))
lora = seq(L.Dense(4, name="d"))
lora.layers[0].enable_lora(2)
refused("dense_enable_lora", lora)
a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
refused("two_inputs", keras.Model([a, b], L.Dense(2, name="d")(L.Add(name="add")([a, b]))))
x = keras.Input((4,))
refused("two_outputs", keras.Model(x, [L.Dense(2, name="o1")(x), L.Dense(3, name="o2")(x)]))
inner = keras.Sequential([keras.Input((4,)), L.Dense(3, name="inner_dense")], name="inner")
x = keras.Input((4,))
refused("nested_sequential", keras.Model(x, L.Dense(2, name="d")(inner(x))))
x2 = keras.Input((4,))
inner_f = keras.Model(x2, L.Dense(3, name="f_dense")(x2), name="inner_functional")
x = keras.Input((4,))
refused("nested_functional", keras.Model(x, L.Dense(2, name="d")(inner_f(x))))

outputs["manifest"] = json.dumps(manifest)
for q, lv in zip(quiet, levels):
    q.setLevel(lv)
warnings.filters[:] = filters
`

// externalLoads are the models of externalModelsPy that must load from each
// of their files and predict what Keras predicted, within tol.
var externalLoads = map[string]float64{
	"seq_no_input": 1e-5, "seq_built_by_call": 1e-5, "seq_input_shape_kwarg": 1e-5, "seq_fixed_batch": 1e-5,
	"seq_var_length": 1e-5, "seq_default_names": 1e-5,
	"dense_activations": 1e-5, "activation_layers": 1e-5, "dense_options": 1e-5, "dense_rank3_rank4": 1e-5,
	"embedding_int32": 1e-5, "seq_embedding_no_input": 1e-5, "embedding_var_length": 1e-5, "embedding_int64": 1e-5,
	"ln_variants":  1e-5,
	"mha_variants": 1e-5, "mha_query_value_key": 1e-5, "mha_positional_key_causal": 1e-5,
	"functional_shared_layer": 1e-5, "functional_shared_attention": 1e-5, "functional_residual": 1e-5,
	"frozen_layer": 1e-5, "frozen_model": 1e-5,
	"functional_keyword_calls": 1e-5, "mha_cross_length": 1e-5,
	"mha_attention_masks": 1e-5, "add_constant": 1e-5, "functional_shared_keywords": 1e-5, "frozen_attention": 1e-5,
	"functional_list_io": 1e-5, "functional_dict_io": 1e-5, "layer_names": 1e-5, "embedding_float_input": 1e-5,
	"activation_classes": 1e-5, "softmax_axes": 1e-5, "merge_layers": 1e-5, "reshape_permute": 1e-5,
	"compiled_adam": 1e-5, "compiled_sgd_momentum": 1e-5, "compiled_adamw_mha": 1e-5,
	// Half-precision computations: Keras and Go run the same kernels, but
	// grappler may fuse them differently, each fusion rounding once.
	"policy_mixed_float16": 5e-3, "policy_mixed_float16_compiled": 5e-3, "policy_float32_output": 5e-3,
	"policy_mixed_float16_attention": 5e-3, "policy_mixed_bfloat16_attention": 3e-2,
	"policy_mixed_bfloat16": 3e-2, "policy_per_layer": 3e-2, "embedding_mixed_bfloat16": 3e-2,
	"policy_float64": 1e-6, "policy_float16": 5e-3, "policy_bfloat16": 3e-2,
	"floatx_float64": 1e-6, "input_float64_mha": 1e-5, "input_float16": 1e-5, "input_bfloat16_mixed": 3e-2,
}

// externalRefusals are the models of externalModelsPy that must be refused
// from their .keras and legacy .h5 files, with errors holding these texts.
var externalRefusals = map[string][]string{
	"conv1d":               {`layer "conv" (class Conv1D`, "unknown class"},
	"lstm":                 {`layer "lstm" (class LSTM`, "unknown class"},
	"batchnorm_functional": {`layer "bn" (class BatchNormalization`, "unknown class"},
	"act_layer_sparsemax":  {`layer "act" (class Activation`, `"sparsemax"`},
	"relu_threshold":       {`layer "r" (class ReLU`, "threshold=0.5"},
	"merge_ranks":          {`layer "mul" (Multiply)`, "different ranks"},
	"relu_max_value":       {`layer "r" (class ReLU`, "max_value=3"},
	"softmax_two_axes":     {`layer "sm" (class Softmax`, "only one axis is supported"},
	"embedding_mask_zero":  {`layer "emb" (class Embedding`, "mask_zero"},
	"ln_two_axes":          {`layer "ln" (class LayerNormalization`, "axis"},
	"mha_axes_2":           {`layer "mha" (class MultiHeadAttention`, "attention_axes"},
	"mha_axes_1_2":         {`layer "mha" (class MultiHeadAttention`, "attention_axes"},
	"mha_output_shape_2d":  {`layer "mha" (class MultiHeadAttention`, "output_shape"},
	"pool_channels_first":  {`layer "pool" (class GlobalAveragePooling1D`, "data_format"},
	"mha_scores":           {`layer "mha" has a single output`, "return_attention_scores"},
	"dense_lora_rank":      {`layer "d" (class Dense`, "lora_rank"},
	"dense_enable_lora":    {`layer "d" (class Dense`, "lora_rank"},
	"two_inputs":           {"single-input"},
	"two_outputs":          {"single-output"},
	"nested_sequential":    {`layer "inner" (class Sequential`, "nested models"},
	"nested_functional":    {`layer "inner_functional" (class Functional`, "nested models"},
}

// Keras files written by Python as people write them: every model made of
// keraslike's classes loads from .keras, legacy .h5, .weights.h5 and
// legacy weights and predicts what Keras predicted; every model using a
// class or option keraslike does not implement is refused, naming it.
func TestExternalKerasModels(t *testing.T) {
	dir := t.TempDir()
	out := interop.Python(t, externalModelsPy, map[string]*tfgo.Tensor{"dir": strTensor(t, dir)})
	s, err := out["manifest"].Strings()
	require.NoError(t, err)
	var manifest map[string]struct {
		Formats    []string          `json:"formats"`
		Errors     map[string]string `json:"errors"`
		Activation string            `json:"activation"`
	}
	require.NoError(t, json.Unmarshal(s[0], &manifest))

	loads := maps.Clone(externalLoads)
	for name := range manifest {
		if strings.HasPrefix(name, "act_ok_") {
			loads[name] = 1e-5
		}
	}
	for name, tol := range loads {
		t.Run(name, func(t *testing.T) {
			e, ok := manifest[name]
			require.True(t, ok, "Python wrote no %s", name)
			require.Empty(t, e.Errors, "Keras could not save %s", name)
			x, want := out["x_"+name], out["y_"+name]
			require.NotNil(t, want)
			check := func(what string, m *Model) {
				t.Helper()
				got, err := m.Predict(x)
				require.NoError(t, err, what)
				testutil.AllCloseShapeTol(t, name+" "+what, want.Shape(), float32sOf(t, want), got.Shape(), float32sOf(t, got), testutil.Tol{Atol: tol, Rtol: tol, Scaled: tol})
			}
			for _, f := range []string{".keras", ".h5", "_dir"} {
				m, err := LoadKerasModel(filepath.Join(dir, name+f), LoadOptions{})
				require.NoError(t, err, "%s%s", name, f)
				check(f, m)
				m.Close()
			}
			// The weights alone, into the model the config makes (Go's
			// initial weights, which the file's must all replace).
			config := archiveMember(t, filepath.Join(dir, name+".keras"), "config.json")
			for _, w := range []struct {
				what string
				load func(m *Model) error
			}{
				{".weights.h5", func(m *Model) error { return m.LoadWeightsH5(filepath.Join(dir, name+".weights.h5")) }},
				{"legacy .h5 weights", func(m *Model) error { return m.LoadWeightsLegacyH5(filepath.Join(dir, name+".h5")) }},
			} {
				m, err := modelFromJSON(config, LoadOptions{}, false)
				require.NoError(t, err)
				require.NoError(t, w.load(m), w.what)
				check(w.what, m)
				m.Close()
			}
		})
	}

	for name, wants := range externalRefusals {
		t.Run(name, func(t *testing.T) {
			e, ok := manifest[name]
			require.True(t, ok, "Python wrote no %s", name)
			require.Empty(t, e.Errors, "Keras could not save %s", name)
			for _, f := range []string{".keras", ".h5"} {
				m, err := LoadKerasModel(filepath.Join(dir, name+f), LoadOptions{})
				if err == nil {
					m.Close()
				}
				require.Error(t, err, "%s%s loaded", name, f)
				t.Logf("%s: %v", f, err)
				for _, w := range wants {
					assert.Contains(t, err.Error(), w, f)
				}
			}
		})
	}

	// Every activation Keras has and keraslike does not: refused by name.
	n := 0
	for name, e := range manifest {
		a, ok := strings.CutPrefix(name, "act_")
		if !ok || name == "act_layer_sparsemax" || strings.HasPrefix(a, "ok_") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			if e.Errors["build"] != "" {
				t.Logf("this Keras has no activation %q: %s", a, e.Errors["build"])
				return
			}
			n++
			require.Empty(t, e.Errors, "Keras could not save %s", name)
			for _, f := range []string{".keras", ".h5"} {
				m, err := LoadKerasModel(filepath.Join(dir, name+f), LoadOptions{})
				if err == nil {
					m.Close()
				}
				require.Error(t, err, "%s%s loaded", name, f)
				assert.Contains(t, err.Error(), `layer "d" (class Dense`, f)
				assert.Contains(t, err.Error(), "activation", f)
				assert.Contains(t, err.Error(), `"`+e.Activation+`"`, f)
			}
		})
	}
	assert.Equal(t, 2, n, "activations Keras saved")

	// Keras reads back what Go writes of the activation, merge and reshape
	// models: the same classes, arguments and activation names.
	t.Run("written_by_go", func(t *testing.T) {
		in := map[string]*tfgo.Tensor{"dir": strTensor(t, dir)}
		var names []string
		for name := range loads {
			if !strings.HasPrefix(name, "act_ok_") && !slices.Contains([]string{"activation_classes", "softmax_axes", "merge_layers", "reshape_permute"}, name) {
				continue
			}
			m, err := LoadKerasModel(filepath.Join(dir, name+".keras"), LoadOptions{})
			require.NoError(t, err, name)
			require.NoError(t, m.SaveKeras(filepath.Join(dir, "go_"+name+".keras")), name)
			m.Close()
			names = append(names, name)
			in["x_"+name] = out["x_"+name]
		}
		require.Len(t, names, 27)
		back := interop.Python(t, `
import os, keras
for k, x in inputs.items():
    if k.startswith("x_"):
        m = keras.models.load_model(os.path.join(inputs["dir"].item().decode(), "go_" + k[2:] + ".keras"))
        outputs["y_" + k[2:]] = m.predict(x, verbose=0)
`, in)
		for _, name := range names {
			want, got := out["y_"+name], back["y_"+name]
			require.NotNil(t, got, name)
			testutil.AllCloseShapeTol(t, name+" from Go's .keras in Keras", want.Shape(), float32sOf(t, want), got.Shape(), float32sOf(t, got), testutil.Tol{Atol: 1e-5, Rtol: 1e-5, Scaled: 1e-5})
		}
	})

	// A directory that is not a model saved unzipped.
	_, err = LoadKerasModel(dir, LoadOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "without config.json")
}

// archiveMember reads one member of a zip archive.
func archiveMember(t *testing.T, path, member string) []byte {
	t.Helper()
	z, err := zip.OpenReader(path)
	require.NoError(t, err)
	defer z.Close()
	f, err := z.Open(member)
	require.NoError(t, err)
	defer f.Close()
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	return b
}

// float32sOf reads a floating-point tensor of any width as float32s.
func float32sOf(t *testing.T, tn *tfgo.Tensor) []float32 {
	t.Helper()
	switch tn.DataType() {
	case tfgo.Float:
		return floats(t, tn)
	case tfgo.Double:
		v, err := tfgo.Float64s(tn)
		require.NoError(t, err)
		out := make([]float32, len(v))
		for i, x := range v {
			out[i] = float32(x)
		}
		return out
	case tfgo.Half, tfgo.BFloat16:
		b := tn.Data()
		out := make([]float32, len(b)/2)
		for i := range out {
			h := binary.LittleEndian.Uint16(b[2*i:])
			if tn.DataType() == tfgo.BFloat16 {
				out[i] = math.Float32frombits(uint32(h) << 16)
			} else {
				out[i] = halfToFloat32(h)
			}
		}
		return out
	}
	t.Fatalf("tensor is %s, not a floating-point type", tn.DataType())
	return nil
}

// halfToFloat32 widens an IEEE 754 binary16.
func halfToFloat32(h uint16) float32 {
	sign := float32(1)
	if h&0x8000 != 0 {
		sign = -1
	}
	exp, frac := int(h>>10)&0x1f, float64(h&0x3ff)
	switch exp {
	case 0:
		return sign * float32(math.Ldexp(frac, -24))
	case 0x1f:
		if frac != 0 {
			return float32(math.NaN())
		}
		return sign * float32(math.Inf(1))
	}
	return sign * float32(math.Ldexp(1024+frac, exp-25))
}
