"""Corpora, the tokenization spec, the vocabulary and the tf.data pipeline.

Kept free of imports: the TF-free modules (tokenization, vocab, corpora, textio)
are used by the phone harness, which must never import TensorFlow.
"""
