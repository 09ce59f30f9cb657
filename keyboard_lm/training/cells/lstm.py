"""The LSTM cell kind: Keras's LSTM layer (cuDNN-eligible arguments) and its step.

Keras's kernel layout is [i | f | c | o]:  c' = f c + i tanh(g),  h' = o tanh(c').
"""
import keras
import tensorflow as tf

from keyboard_lm.training.cells import keras_cell_weights

step_weights = keras_cell_weights  # kernel, recurrent kernel, bias


def build_layer(units, options, name, unroll=False):
    return keras.layers.LSTM(units, return_sequences=True, return_state=True, name=name, unroll=unroll,
                             activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                             recurrent_dropout=0.0)


def step(x, states, w):
    h, c = states
    z = tf.matmul(x, w["kernel"]) + tf.matmul(h, w["recurrent"]) + w["bias"]
    i, f, g, o = tf.split(z, 4, axis=-1)
    c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
    h = tf.sigmoid(o) * tf.tanh(c)
    return h, [h, c]
