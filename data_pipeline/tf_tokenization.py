"""The tokenization spec in-graph, with tensorflow-text (used by the tf.data pipeline).

Same five steps as ``data_pipeline.tokenization`` (read its docstring); the twin
must produce identical tokens for any input, which tests/data_pipeline holds it to.
"""
import tensorflow as tf
import tensorflow_text as tf_text

from data_pipeline import tokenization
from data_pipeline.tokenization import TokenizerOptions


class TFTokenizer(tf.Module):
    """Maps a string tensor of any rank-1 shape to a RaggedTensor of tokens."""

    def __init__(self, options=TokenizerOptions()):
        super().__init__()
        self.options = options
        tables = tokenization.unicode_tables()
        escape = tokenization.re2_escape
        self._token_pattern = tokenization.token_pattern(escape)
        self._split_pattern = self._token_pattern + "| +"
        self._whitespace_pattern = tokenization.whitespace_class(escape)
        self._replacements = [(escape(cp), text) for cp, text in
                              sorted(tokenization.CHARACTER_REPLACEMENTS.items())]
        keys = tf.constant(sorted(tables["lowercase"]), tf.int32)
        values = tf.constant([tables["lowercase"][k] for k in sorted(tables["lowercase"])], tf.int32)
        self._lowercase = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(keys, values), default_value=-1)

    def _lower(self, text):
        code_points = tf.strings.unicode_decode(text, "UTF-8")  # (batch, (chars))
        mapped = tf.ragged.map_flat_values(self._lowercase.lookup, code_points)
        code_points = tf.ragged.map_flat_values(
            lambda m, c: tf.where(m < 0, c, m), mapped, code_points)
        return tf.strings.unicode_encode(code_points, "UTF-8")

    def normalize(self, text):
        """Steps 1-4 of the spec on a rank-1 string tensor."""
        text = tf_text.normalize_utf8(text, "NFKC")
        for pattern, replacement in self._replacements:
            text = tf.strings.regex_replace(text, pattern, replacement)
        if self.options.lowercase:
            text = self._lower(text)
        return tf.strings.regex_replace(text, self._whitespace_pattern, " ")

    def __call__(self, text):
        """(batch,) strings -> (batch, (tokens)) RaggedTensor of token strings."""
        text = tf.convert_to_tensor(text, tf.string)
        return tf_text.regex_split(self.normalize(text), self._split_pattern, self._token_pattern)
