"""The phone's side, TensorFlow-free: the Python twin of android_demo/core.

Bundle loading and checking (bundle), the LiteRT step runner (runtime), the keyboard engine
(keyboard), the personal cache, the typing simulator, the golden traces, the terminal
keyboard, the Presage baseline and ``kblm inspect``. Imports only numpy, ai_edge_litert and
data_pipeline's TF-free modules (tokenization, vocab, corpora, textio, errors, progress);
never keyboard_lm.training, export or the commands (tests/test_layout.py).

Kept free of imports.
"""
