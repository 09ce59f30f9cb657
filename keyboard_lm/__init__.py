"""keyboard-lm: next-word suggestions for a phone keyboard.

Three floors, imports only ever going down (tests/test_layout.py checks it):
``keyboard_lm.phone`` (the TensorFlow-free engine, bundle loading, the LiteRT runner),
``keyboard_lm.training`` (the Keras model and its training), and on top the commands
(``keyboard_lm.cli``, ``keyboard_lm.personalize``, ``keyboard_lm.quiet``), which may use
everything, ``export`` included.

Kept free of imports so that importing a submodule never pulls in TensorFlow.
"""
