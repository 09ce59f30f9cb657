"""keyboard-lm: next-word suggestions for a phone keyboard (model, training, CLI).

Kept free of imports so that importing a submodule never pulls in TensorFlow.
"""
