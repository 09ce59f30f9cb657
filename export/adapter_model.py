"""The step model with a personal adapter, and its ``train`` signature (docs/engine.md §18).

Input: a ``StepModel``'s weights and config, the adapter's rank and the training window.
Output: a ``tf.Module`` with two signatures for the TFLite converter, builtin ops only:

- ``step(token, *states, adapter_bias, adapter_down, adapter_up)``: the step model's
  outputs with the adapter's term added to the logits (zeros: the base model, bit for bit);
- ``train(tokens, targets, mask, reset, *states, adapter arrays, their Adam moments,
  step_count, learning_rate, l2)``: one Adam update of the adapter on one window of text
  (several sentences packed, ``reset`` 1 where each starts from zero states), with the
  masked loss before the update and the state after the window.

No variables: the caller keeps the adapter and its optimizer state, as the engine keeps the
recurrent state. The gradient is written out (the base is frozen, so only the output head
has one), not taken by autodiff: the phone's runtime has no gradient ops.
"""
import tensorflow as tf

from export.step_model import StepModel, extract_weights
from keyboard_lm.phone.bundle import ADAPTER_FORMAT, ADAPTER_PARAMETERS as PARAMETERS, DEFAULT_ADAPTER_RANK

ADAM = {"name": "adam", "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}
DEFAULT_WINDOW = 16  # packed windows (§18.3): 16 beat 32 on the on-device benchmark (top-3 share 81% vs 72%, one seed)


def parameter_shapes(feature_size, rank, vocabulary_size):
    return {"adapter_bias": [vocabulary_size], "adapter_down": [feature_size, rank],
            "adapter_up": [rank, vocabulary_size]}


def adapter_block(feature_size, rank, window, vocabulary_size):
    """The manifest's ``adapter`` block (§18)."""
    shapes = parameter_shapes(feature_size, rank, vocabulary_size)
    return {"format_version": ADAPTER_FORMAT, "rank": rank, "window": window, "feature_size": feature_size,
            "parameters": [{"name": name, "shape": shapes[name]} for name in PARAMETERS], "optimizer": dict(ADAM)}


def adapter_logits(features, bias, down, up):
    """The adapter's term, added to the base logits (§18)."""
    return tf.matmul(tf.matmul(features, down), up) + bias


def window_forward(model, tokens, mask, reset, states, window):
    """Runs ``step``'s math position by position: (features (T, F), states after the last real
    position). A position with reset 1 starts from zero states (a new sentence); a padded
    position (mask 0) keeps the state it was given."""
    features, states = [], list(states)
    names = [f"next_{name}" for name, _ in model.layout]
    for t in range(window):
        states = [(1.0 - reset[t]) * old for old in states]
        x, outputs = model.features(tokens[t:t + 1], states)
        keep = mask[t]
        states = [keep * outputs[name] + (1.0 - keep) * old for name, old in zip(names, states)]
        features.append(x)
    return tf.concat(features, axis=0), states


def masked_loss_and_gradients(logits, targets, mask, features, down, up):
    """The masked mean cross-entropy and its gradient for the three adapter arrays (§18.2)."""
    log_probs = tf.nn.log_softmax(logits, axis=-1)
    one_hot = tf.one_hot(targets, tf.shape(logits)[-1], dtype=tf.float32)
    count = tf.maximum(tf.reduce_sum(mask), 1.0)
    loss = -tf.reduce_sum(mask * tf.reduce_sum(one_hot * log_probs, axis=-1)) / count
    g = (tf.exp(log_probs) - one_hot) * (tf.expand_dims(mask, -1) / count)  # dloss/dlogits (T, V)
    low = tf.matmul(features, down)  # (T, r)
    return loss, {"adapter_bias": tf.reduce_sum(g, axis=0),
                  "adapter_up": tf.matmul(low, g, transpose_a=True),
                  "adapter_down": tf.matmul(features, tf.matmul(g, up, transpose_b=True), transpose_a=True)}


def adam(params, grads, m, v, step_count, learning_rate, l2):
    """One Adam update with an L2 pull toward zero (the base): new params, m, v."""
    b1, b2, eps = ADAM["beta1"], ADAM["beta2"], ADAM["epsilon"]
    t = step_count + 1.0
    correction1 = 1.0 - tf.pow(tf.constant(b1, tf.float32), t)
    correction2 = 1.0 - tf.pow(tf.constant(b2, tf.float32), t)
    new_p, new_m, new_v = {}, {}, {}
    for name in PARAMETERS:
        g = grads[name] + l2 * params[name]
        new_m[name] = b1 * m[name] + (1.0 - b1) * g
        new_v[name] = b2 * v[name] + (1.0 - b2) * tf.square(g)
        step = (new_m[name] / correction1) / (tf.sqrt(new_v[name] / correction2) + eps)
        new_p[name] = params[name] - learning_rate * step
    return new_p, new_m, new_v, t


class AdaptableModel(StepModel):
    """``step`` with the adapter's inputs, and ``train`` (§18)."""

    def __init__(self, weights, model_config, rank=DEFAULT_ADAPTER_RANK, window=DEFAULT_WINDOW):
        super().__init__(weights, model_config)
        self.rank, self.window = int(rank), int(window)
        vocabulary = weights["output/bias"].shape[0]
        self.shapes = parameter_shapes(self.feature_size, self.rank, vocabulary)
        states = [tf.TensorSpec([1, size], tf.float32, name=name) for name, size in self.layout]
        params = [tf.TensorSpec(self.shapes[name], tf.float32, name=name) for name in PARAMETERS]
        step_specs = [tf.TensorSpec([1], tf.int32, name="token"), *states, *params]
        self.step = tf.function(self._adapted_step, input_signature=step_specs, autograph=False)
        moments = [tf.TensorSpec(self.shapes[name], tf.float32, name=f"{kind}_{name}")
                   for kind in ("m", "v") for name in PARAMETERS]
        scalars = [tf.TensorSpec([], tf.float32, name=name) for name in ("step_count", "learning_rate", "l2")]
        train_specs = [tf.TensorSpec([self.window], tf.int32, name="tokens"),
                       tf.TensorSpec([self.window], tf.int32, name="targets"),
                       tf.TensorSpec([self.window], tf.float32, name="mask"),
                       tf.TensorSpec([self.window], tf.float32, name="reset"), *states, *params, *moments, *scalars]
        self.train = tf.function(self._train, input_signature=train_specs, autograph=False)

    def graph_allowance(self):
        """Bytes ``train`` may add to the file: its unrolled graph (about 4 KB per position and
        layer, measured; 16 KB allowed) and its own float32 copy of the output bias."""
        return 16_384 * self.window * len(self.config.rnn_units) + 4 * self.shapes["adapter_bias"][0]

    def block(self):
        return adapter_block(self.feature_size, self.rank, self.window, self.shapes["adapter_bias"][0])

    def signatures(self):
        return {"step": self.step.get_concrete_function(), "train": self.train.get_concrete_function()}

    def _adapted_step(self, token, *inputs):
        states, (bias, down, up) = inputs[:len(self.layout)], inputs[len(self.layout):]
        features, outputs = self.features(token, states)
        logits = self.logits(features) + adapter_logits(features, bias, down, up)
        outputs["log_probs"] = tf.nn.log_softmax(logits, axis=-1)
        return outputs

    def _train(self, tokens, targets, mask, reset, *inputs):
        n = len(self.layout)
        states = inputs[:n]
        params = dict(zip(PARAMETERS, inputs[n:n + 3]))
        m = dict(zip(PARAMETERS, inputs[n + 3:n + 6]))
        v = dict(zip(PARAMETERS, inputs[n + 6:n + 9]))
        step_count, learning_rate, l2 = inputs[n + 9:]
        features, end_states = window_forward(self, tokens, mask, reset, states, self.window)
        logits = self.logits(features) + adapter_logits(features, params["adapter_bias"], params["adapter_down"],
                                                        params["adapter_up"])
        loss, grads = masked_loss_and_gradients(logits, targets, mask, features, params["adapter_down"],
                                                params["adapter_up"])
        new_p, new_m, new_v, t = adam(params, grads, m, v, step_count, learning_rate, l2)
        outputs = {"loss": loss, "next_step_count": t}
        for name in PARAMETERS:
            outputs[f"next_{name}"] = new_p[name]
            outputs[f"next_m_{name}"] = new_m[name]
            outputs[f"next_v_{name}"] = new_v[name]
        outputs.update({f"next_{name}": state for (name, _), state in zip(self.layout, end_states)})
        return outputs


def build_adaptable_model(model, model_config, rank=DEFAULT_ADAPTER_RANK, window=DEFAULT_WINDOW):
    return AdaptableModel(extract_weights(model, model_config), model_config, rank, window)
