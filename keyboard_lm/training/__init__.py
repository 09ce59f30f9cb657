"""The Keras model and its training: config, model, metrics, the loop, callbacks, train,
evaluate, run directories and plots. Imports data_pipeline and keyboard_lm.phone only, never
export or the commands (tests/test_layout.py).

Kept free of imports so that importing a submodule (config) never pulls in TensorFlow.
"""
