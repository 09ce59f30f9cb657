"""The Elman cell kind: Keras's SimpleRNN layer and its step, h' = tanh(x W + h R + b)."""
import keras
import numpy as np
import tensorflow as tf


def build_layer(units, options, name, unroll=False):
    return keras.layers.SimpleRNN(units, return_sequences=True, return_state=True, name=name, unroll=unroll)


def step_weights(layer):
    cell = layer.cell
    return {"kernel": np.asarray(cell.kernel.numpy(), np.float32),
            "recurrent": np.asarray(cell.recurrent_kernel.numpy(), np.float32),
            "bias": np.asarray(cell.bias.numpy(), np.float32)}


def step(x, states, w):
    (h,) = states
    h = tf.tanh(tf.matmul(x, w["kernel"]) + tf.matmul(h, w["recurrent"]) + w["bias"])
    return h, [h]
