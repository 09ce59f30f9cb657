"""The next-word network, built from a ModelConfig.

Input: token ids (batch, time) and the recurrent state of every layer. Output: logits
(batch, time, vocabulary) in float32 and the next state of every layer. The state is
explicit, so one network serves message mode (zero state), stream mode (the training
loop carries the state across batches) and the phone's one-step-per-word model.

    ids -> Embedding(mask_zero) -> Dropout -> [RNN -> Dropout] x N
        -> Dense(embedding_dim) -> logits = x @ embedding^T + bias   (tied)
        -> Dense(vocabulary)                                          (untied)

The recurrent layers come from the cell table (``keyboard_lm.training.cells``). Layer names
are the constants below: the export, personalization and tests find layers by them.
"""
import keras
from keras import ops

from keyboard_lm.training.cells import KINDS, cell_kind
from keyboard_lm.training.config import ModelConfig

EMBEDDING = "embedding"  # ReversibleEmbedding (its output bias is the tied output's)
PROJECTION = "projection"  # Dense(embedding_dim) before the tied output
OUTPUT = "output"  # Dense(vocabulary) when untied


def recurrent_name(config, index):
    """The name of recurrent layer ``index``: ``lstm_0``, ``gru_1``, ..."""
    return f"{config.cell}_{index}"


def recurrent_layers(model, config):
    return [model.get_layer(recurrent_name(config, i)) for i in range(len(config.rnn_units))]


@keras.saving.register_keras_serializable(package="keyboard_lm")
class ReversibleEmbedding(keras.layers.Embedding):
    """An Embedding that can also map vectors back to vocabulary logits (weight tying).

    ``layer(ids)`` embeds; ``layer(vectors, reverse=True)`` returns
    ``vectors @ embeddings^T + output_bias`` as float32 logits.
    """

    def __init__(self, input_dim, output_dim, output_bias=True, **kwargs):
        super().__init__(input_dim, output_dim, **kwargs)
        self.output_bias = output_bias

    def build(self, input_shape=None):
        super().build(input_shape)
        if self.output_bias:
            self.bias = self.add_weight(shape=(self.input_dim,), initializer="zeros", name="output_bias")

    def call(self, inputs, reverse=False):
        if not reverse:
            return super().call(inputs)
        kernel = ops.cast(ops.transpose(self.embeddings), self.compute_dtype)
        logits = ops.matmul(inputs, kernel)
        if self.output_bias:
            logits = logits + ops.cast(self.bias, self.compute_dtype)
        return ops.cast(logits, "float32")  # softmax and loss stay float32 in mixed precision

    def compute_mask(self, inputs, mask=None):
        if "float" in str(inputs.dtype):  # the reverse call: pass the sequence mask through
            return mask
        return super().compute_mask(inputs, mask)

    def compute_output_spec(self, inputs, reverse=False):
        if not reverse:
            return super().compute_output_spec(inputs)
        return keras.KerasTensor(tuple(inputs.shape[:-1]) + (self.input_dim,), dtype="float32")

    @property
    def variable_serialization_spec(self):
        # Embedding saves only its own variables by name; add the output bias.
        spec = dict(super().variable_serialization_spec)
        if self.output_bias:
            spec[None] = [*spec[None], "bias"]
        return spec

    def get_config(self):
        return {**super().get_config(), "output_bias": self.output_bias}


def load_cell_kind(config):
    """The cell kind's module (importing it registers any custom Keras class it defines, which
    loading a saved model needs)."""
    return cell_kind(config.cell).implementation()


def register_custom_layers():
    """Imports every cell kind's module, so Keras (safe_mode) knows their custom classes."""
    for kind in KINDS:
        kind.implementation()


def build_model(config: ModelConfig, sequence_length=None, batch_size=None, unroll=False):
    """The Keras model ``[ids, *states] -> [logits, *next_states]``.

    ``unroll`` (needs a fixed ``sequence_length``) replaces the RNN's loop by straight-line
    code: faster on a CPU, but it leaves the cuDNN path, so it is never used with a GPU.
    """
    ids = keras.Input((sequence_length,), batch_size=batch_size, dtype="int32", name="ids")
    states = [keras.Input((size,), batch_size=batch_size, name=name) for name, size in config.state_layout()]
    embedding = ReversibleEmbedding(config.vocabulary_size, config.embedding_dim, mask_zero=True,
                                    output_bias=config.tie_weights, name=EMBEDDING)
    kind = load_cell_kind(config)
    x = keras.layers.Dropout(config.dropout, name="embedding_dropout")(embedding(ids))
    # Passed explicitly: Keras 3 drops the propagated mask of an RNN called with initial_state.
    mask = ops.not_equal(ids, 0)
    next_states = []
    per_layer = len(states) // len(config.rnn_units)
    for i, units in enumerate(config.rnn_units):
        layer_state = states[i * per_layer:(i + 1) * per_layer]
        layer = kind.build_layer(units, config.cell_options, recurrent_name(config, i), unroll)
        x, *new_state = layer(x, initial_state=layer_state, mask=mask)
        x = keras.layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
        next_states.extend(new_state)
    if config.tie_weights:
        x = keras.layers.Dense(config.embedding_dim, name=PROJECTION)(x)
        logits = embedding(x, reverse=True)
    else:
        x = keras.layers.Dense(config.vocabulary_size, name=OUTPUT)(x)
        logits = keras.layers.Activation("linear", dtype="float32", name="logits")(x)
    return keras.Model([ids, *states], [logits, *next_states], name="next_word_model")


def zero_states(config, batch_size, dtype="float32"):
    """The initial (empty-context) state for a batch."""
    return [ops.zeros((batch_size, size), dtype) for size in config.state_sizes()]


def build_training_model(config, pipeline):
    """The model as trained. Stream-mode windows have a fixed length, so on a machine
    without GPUs the RNN is unrolled (measured about 7% faster per step on this 2-core
    CPU); with a GPU it stays cuDNN-eligible. Save ``portable_copy`` of it, not it."""
    import tensorflow as tf

    unroll = pipeline.mode == "stream" and not tf.config.list_logical_devices("GPU")
    return build_model(config, pipeline.sequence_length if unroll else None, unroll=unroll)


def portable_copy(model, config):
    """The same weights in a fresh shape-agnostic, cuDNN-eligible model built from ``config``
    at the model's precision: what runs save (no optimizer state: a third of the size)."""
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(model.dtype_policy)  # mixed precision or not, as trained
    try:
        copy = build_model(config)
    finally:
        keras.config.set_dtype_policy(policy)
    copy.set_weights(model.get_weights())
    return copy
