"""The phone's model: one recurrent step per word, with the state explicit in and out.

Input: a trained Keras model (``keyboard_lm.training.model``) and its ModelConfig. Output: a
``tf.Module`` whose ``step`` function maps (token id, state of every layer) to
(log-probabilities over the vocabulary, next state), ready for the TFLite converter.

The step is written as plain tensor math on constants taken from the model's weights:
no variables (so the .tflite cannot carry VAR_HANDLE ops), no RNN loop (so no WHILE op;
fully-connected ops that quantize well), and no cuDNN op even for a model trained on a GPU.
Each recurrent layer's weights and step math come from its cell kind's module (the cell
table, ``keyboard_lm.training.cells``); the state layout from ``ModelConfig.state_layout``.

    token -> embedding row -> [cell step] x N -> projection -> x @ embedding^T + bias
          -> log_softmax                                        (tied; untied: dense output)
"""
import numpy as np
import tensorflow as tf

from keyboard_lm.training.model import EMBEDDING, OUTPUT, PROJECTION, load_cell_kind, recurrent_layers


def extract_weights(model, model_config):
    """The weights the step needs as float32 numpy arrays: ``{"embedding": ..., "projection/kernel":
    ..., "rnn0/kernel": ...}`` (a layer's roles are its cell kind's ``step_weights``)."""
    kind = load_cell_kind(model_config)
    embedding = model.get_layer(EMBEDDING)
    weights = {"embedding": embedding.embeddings.numpy()}
    for i, layer in enumerate(recurrent_layers(model, model_config)):
        weights.update({f"rnn{i}/{role}": value for role, value in kind.step_weights(layer).items()})
    if model_config.tie_weights:
        projection = model.get_layer(PROJECTION)
        weights["projection/kernel"] = projection.kernel.numpy()
        weights["projection/bias"] = projection.bias.numpy()
        weights["output/bias"] = embedding.bias.numpy()
    else:
        output = model.get_layer(OUTPUT)
        weights["output/kernel"] = output.kernel.numpy()
        weights["output/bias"] = output.bias.numpy()
    return {k: np.asarray(v, np.float32) for k, v in weights.items()}


class StepModel(tf.Module):
    """``step(token, *states) -> {"log_probs", "next_h0", "next_c0", ...}`` on constants."""

    def __init__(self, weights, model_config):
        super().__init__(name="keyboard_lm_step")
        self.config = model_config
        self.kind = load_cell_kind(model_config)
        self.layout = model_config.state_layout()
        self.arrays = weights  # numpy, by role (for size and cost figures)
        self._w = {k: tf.constant(v, name=k.replace("/", "_")) for k, v in weights.items()}
        specs = [tf.TensorSpec([1], tf.int32, name="token")]
        specs += [tf.TensorSpec([1, size], tf.float32, name=name) for name, size in self.layout]
        self.step = tf.function(self._step, input_signature=specs, autograph=False)

    def _step(self, token, *states):
        features, outputs = self.features(token, states)
        outputs["log_probs"] = tf.nn.log_softmax(self.logits(features), axis=-1)  # (1, vocabulary)
        return outputs

    def features(self, token, states):
        """(what the output layer reads (1, F), {"next_<state>": ...}) for one token."""
        w = self._w
        x = tf.gather(w["embedding"], token)  # (1, embedding_dim)
        per_layer = len(states) // len(self.config.rnn_units)
        outputs = {}
        for i in range(len(self.config.rnn_units)):
            names = [name for name, _ in self.layout[i * per_layer:(i + 1) * per_layer]]
            prefix = f"rnn{i}/"
            layer_weights = {k[len(prefix):]: v for k, v in w.items() if k.startswith(prefix)}
            x, new_states = self.kind.step(x, list(states[i * per_layer:(i + 1) * per_layer]), layer_weights)
            outputs.update({f"next_{name}": value for name, value in zip(names, new_states)})
        if self.config.tie_weights:
            x = tf.matmul(x, w["projection/kernel"]) + w["projection/bias"]
        return x, outputs

    def logits(self, features):
        """The output layer: (rows, F) -> (rows, vocabulary)."""
        w = self._w
        if self.config.tie_weights:
            return tf.matmul(features, w["embedding"], transpose_b=True) + w["output/bias"]
        return tf.matmul(features, w["output/kernel"]) + w["output/bias"]

    @property
    def feature_size(self):
        w = self.arrays
        return w["projection/kernel"].shape[1] if self.config.tie_weights else w["output/kernel"].shape[0]

    def signatures(self):
        """{signature name: concrete function} to convert."""
        return {"step": self.step.get_concrete_function()}


def build_step_model(model, model_config):
    return StepModel(extract_weights(model, model_config), model_config)


def macs_per_step(model_config, weights):
    """Multiply-accumulates of one step: every matrix the step multiplies by (the embedding
    lookup is a gather; tied, the embedding is multiplied by once more, for the logits)."""
    total = sum(v.size for k, v in weights.items() if v.ndim == 2 and k != "embedding" and "/bias" not in k)
    return total + (weights["embedding"].size if model_config.tie_weights else 0)
