"""The CIFG cell kind: an LSTM with coupled input and forget gates and a projected output,
the cell of Gboard's next-word model (Hard et al. 2018, "Federated learning for mobile
keyboard prediction": 670 units projected to 96, a tied 96-wide embedding).

    [f | g | o] = x W + h R + b          (three gates: the input gate is 1 - f)
    c' = sigmoid(f) c + (1 - sigmoid(f)) tanh(g)
    h' = (sigmoid(o) tanh(c')) P         (P: units -> projection, no bias)

A quarter fewer gate weights than an LSTM, and the recurrent matrix and the next layer see
the projection's width, not the cell's: at one parameter budget the cell can be wider.
State parts: h (projection wide; the layer's output) and c (units wide).
"""
import keras
import tensorflow as tf
from keras import ops

from keyboard_lm.training.cells import keras_cell_weights


@keras.saving.register_keras_serializable(package="keyboard_lm")
class CIFGCell(keras.layers.Layer):
    """One step of the CIFG cell for ``keras.layers.RNN``; ``projection=None``: h is c-wide."""

    def __init__(self, units, projection=None, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.projection = int(projection) if projection else None
        self.output_width = self.projection or self.units
        self.state_size = [self.output_width, self.units]
        self.output_size = self.output_width

    def build(self, input_shape):
        gates = 3 * self.units
        self.kernel = self.add_weight(shape=(input_shape[-1], gates), initializer="glorot_uniform", name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.output_width, gates), initializer="orthogonal",
                                                name="recurrent_kernel")

        def forget_bias_one(shape, dtype=None):  # as Keras's LSTM (unit_forget_bias): remember at first
            return ops.concatenate([ops.ones((self.units,), dtype), ops.zeros((2 * self.units,), dtype)])

        self.bias = self.add_weight(shape=(gates,), initializer=forget_bias_one, name="bias")
        self.projection_kernel = None
        if self.projection:
            self.projection_kernel = self.add_weight(shape=(self.units, self.projection),
                                                     initializer="glorot_uniform", name="projection_kernel")

    def call(self, inputs, states, training=False):
        h, c = states[0], states[1]
        z = ops.matmul(inputs, self.kernel) + ops.matmul(h, self.recurrent_kernel) + self.bias
        f, g, o = ops.split(z, 3, axis=-1)
        f = ops.sigmoid(f)
        c = f * c + (1.0 - f) * ops.tanh(g)
        h = ops.sigmoid(o) * ops.tanh(c)
        if self.projection_kernel is not None:
            h = ops.matmul(h, self.projection_kernel)
        return h, [h, c]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "projection": self.projection}


def build_layer(units, options, name, unroll=False):
    return keras.layers.RNN(CIFGCell(units, options["projection"], name=f"{name}_cell"), return_sequences=True,
                            return_state=True, unroll=unroll, name=name)


def step_weights(layer):
    weights = keras_cell_weights(layer)  # the same three as Keras's cells, named alike
    if layer.cell.projection_kernel is not None:
        weights["projection"] = layer.cell.projection_kernel.numpy()
    return weights


def step(x, states, w):
    h, c = states
    f, g, o = tf.split(tf.matmul(x, w["kernel"]) + tf.matmul(h, w["recurrent"]) + w["bias"], 3, axis=-1)
    f = tf.sigmoid(f)
    c = f * c + (1.0 - f) * tf.tanh(g)
    h = tf.sigmoid(o) * tf.tanh(c)
    if "projection" in w:
        h = tf.matmul(h, w["projection"])
    return h, [h, c]
