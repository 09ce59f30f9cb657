"""The phone's model: one recurrent step per word, with the state explicit in and out.

Input: a trained Keras model (``keyboard_lm.training.model``) and its ModelConfig. Output: a
``tf.Module`` whose ``step`` function maps (token id, state of every layer) to
(log-probabilities over the vocabulary, next state), ready for the TFLite converter.

The step is written as plain tensor math on constants taken from the model's weights:
no variables (so the .tflite cannot carry VAR_HANDLE ops), no RNN loop (so no WHILE op;
fully-connected ops that quantize well), and no cuDNN op even for a model trained on a GPU.
Gate layouts follow Keras: LSTM kernels are [i | f | c | o], GRU (reset_after) [z | r | h].

    token -> embedding row -> [cell step] x N -> projection -> x @ embedding^T + bias
          -> log_softmax                                        (tied; untied: dense output)
"""
import numpy as np
import tensorflow as tf

STATE_KINDS = {"lstm": ("h", "c"), "gru": ("h",), "simple_rnn": ("h",)}


def state_names(model_config):
    """Input names of the state tensors, layer by layer: h0, c0, h1, c1, ..."""
    kinds = STATE_KINDS[model_config.cell]
    return [f"{kind}{i}" for i in range(len(model_config.rnn_units)) for kind in kinds]


def extract_weights(model, model_config):
    """The model's weights as float32 numpy arrays, by role."""
    weights = {"embedding": model.get_layer("embedding").embeddings.numpy()}
    for i in range(len(model_config.rnn_units)):
        cell = model.get_layer(f"{model_config.cell}_{i}").cell
        weights[f"kernel{i}"] = cell.kernel.numpy()
        weights[f"recurrent{i}"] = cell.recurrent_kernel.numpy()
        weights[f"bias{i}"] = cell.bias.numpy()
    if model_config.tie_weights:
        projection = model.get_layer("projection")
        weights["projection_kernel"] = projection.kernel.numpy()
        weights["projection_bias"] = projection.bias.numpy()
        weights["output_bias"] = model.get_layer("embedding").bias.numpy()
    else:
        output = model.get_layer("output")
        weights["output_kernel"] = output.kernel.numpy()
        weights["output_bias"] = output.bias.numpy()
    return {k: np.asarray(v, np.float32) for k, v in weights.items()}


def lstm_step(x, h, c, kernel, recurrent, bias):
    z = tf.matmul(x, kernel) + tf.matmul(h, recurrent) + bias
    i, f, g, o = tf.split(z, 4, axis=-1)
    c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
    return tf.sigmoid(o) * tf.tanh(c), c


def gru_step(x, h, kernel, recurrent, bias):
    x_part = tf.matmul(x, kernel) + bias[0]
    h_part = tf.matmul(h, recurrent) + bias[1]
    x_z, x_r, x_h = tf.split(x_part, 3, axis=-1)
    h_z, h_r, h_h = tf.split(h_part, 3, axis=-1)
    z = tf.sigmoid(x_z + h_z)
    r = tf.sigmoid(x_r + h_r)
    candidate = tf.tanh(x_h + r * h_h)
    return z * h + (1.0 - z) * candidate


def simple_rnn_step(x, h, kernel, recurrent, bias):
    return tf.tanh(tf.matmul(x, kernel) + tf.matmul(h, recurrent) + bias)


class StepModel(tf.Module):
    """``step(token, *states) -> {"log_probs", "next_h0", "next_c0", ...}`` on constants."""

    def __init__(self, weights, model_config):
        super().__init__(name="keyboard_lm_step")
        self.config = model_config
        self.names = state_names(model_config)
        self._w = {k: tf.constant(v, name=k) for k, v in weights.items()}
        specs = [tf.TensorSpec([1], tf.int32, name="token")]
        sizes = [units for units in model_config.rnn_units for _ in STATE_KINDS[model_config.cell]]
        specs += [tf.TensorSpec([1, size], tf.float32, name=name) for name, size in zip(self.names, sizes)]
        self.step = tf.function(self._step, input_signature=specs, autograph=False)

    def _step(self, token, *states):
        w = self._w
        x = tf.gather(w["embedding"], token)  # (1, embedding_dim)
        per_layer = len(STATE_KINDS[self.config.cell])
        outputs = {}
        for i in range(len(self.config.rnn_units)):
            layer_states = states[i * per_layer:(i + 1) * per_layer]
            args = (w[f"kernel{i}"], w[f"recurrent{i}"], w[f"bias{i}"])
            if self.config.cell == "lstm":
                x, c = lstm_step(x, *layer_states, *args)
                new_states = (x, c)
            elif self.config.cell == "gru":
                x = gru_step(x, *layer_states, *args)
                new_states = (x,)
            else:
                x = simple_rnn_step(x, *layer_states, *args)
                new_states = (x,)
            for name, value in zip(self.names[i * per_layer:(i + 1) * per_layer], new_states):
                outputs[f"next_{name}"] = value
        if self.config.tie_weights:
            x = tf.matmul(x, w["projection_kernel"]) + w["projection_bias"]
            logits = tf.matmul(x, w["embedding"], transpose_b=True) + w["output_bias"]
        else:
            logits = tf.matmul(x, w["output_kernel"]) + w["output_bias"]
        outputs["log_probs"] = tf.nn.log_softmax(logits, axis=-1)  # (1, vocabulary)
        return outputs


def build_step_model(model, model_config):
    return StepModel(extract_weights(model, model_config), model_config)
