"""The GRU cell kind: Keras's GRU layer (reset_after, cuDNN-eligible arguments) and its step.

Keras's kernel layout is [z | r | h], with separate input and recurrent biases (reset_after):
    h' = z h + (1 - z) tanh(x W_h + b_h + r (h R_h + b'_h)).
"""
import keras
import tensorflow as tf

from keyboard_lm.training.cells import keras_cell_weights

step_weights = keras_cell_weights  # kernel, recurrent kernel, bias


def build_layer(units, options, name, unroll=False):
    return keras.layers.GRU(units, return_sequences=True, return_state=True, name=name, unroll=unroll,
                            activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                            recurrent_dropout=0.0, reset_after=True)


def step(x, states, w):
    (h,) = states
    x_z, x_r, x_h = tf.split(tf.matmul(x, w["kernel"]) + w["bias"][0], 3, axis=-1)
    h_z, h_r, h_h = tf.split(tf.matmul(h, w["recurrent"]) + w["bias"][1], 3, axis=-1)
    z = tf.sigmoid(x_z + h_z)
    r = tf.sigmoid(x_r + h_r)
    h = z * h + (1.0 - z) * tf.tanh(x_h + r * h_h)
    return h, [h]
