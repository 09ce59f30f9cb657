"""The Elman cell kind: Keras's SimpleRNN layer and its step, h' = tanh(x W + h R + b)."""
import keras
import tensorflow as tf

from keyboard_lm.training.cells import keras_cell_weights

step_weights = keras_cell_weights  # kernel, recurrent kernel, bias


def build_layer(units, options, name, unroll=False):
    return keras.layers.SimpleRNN(units, return_sequences=True, return_state=True, name=name, unroll=unroll)


def step(x, states, w):
    (h,) = states
    h = tf.tanh(tf.matmul(x, w["kernel"]) + tf.matmul(h, w["recurrent"]) + w["bias"])
    return h, [h]
