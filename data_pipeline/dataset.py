"""tf.data pipelines: messages -> ids -> padded, masked batches of (inputs, targets, weights).

Input: a list of messages (str) and a Vocabulary. Output: a tf.data.Dataset whose
elements are ``(inputs, targets, weights)``, int32 ids and float32 weights of shape
(batch, time), ready for ``keras.Model.fit`` (weights = sample weights).

Two layouts:

message mode (padded, masked; shuffled, optionally bucketed by length)::

    message "see you soon"   ->  <bos> see you soon <eos>        (ids 2 71 33 912 3)
    (a message of several sentences is first cut into sentences, as the keyboard does)
    windows of sequence_length + 1 tokens, overlapping by one, so every token but
    <bos> is a target exactly once; then padded with 0 at the right:

        window     2  71  33 912   3   0   0      (sequence_length + 1 = 7)
        inputs     2  71  33 912   3   0          window[:-1]
        targets   71  33 912   3   0   0          window[1:]
        weights    1   1   1   1   0   0          targets != <pad>

stream mode (truncated BPTT; a stateful model carries its state across batches)::

    the whole split as one stream of sentences  <bos> w w w <eos> <bos> w w <eos> ...  (N ids)
    cut into batch_size rows, each a contiguous stretch of N // batch_size ids:

        row 0   t0      t1      ...  t(S-1)
        row 1   tS      tS+1    ...  t(2S-1)
        ...
    batch k = columns [k*bptt, (k+1)*bptt) as inputs, shifted by one as targets;
    row r of batch k+1 continues row r of batch k. Batches come in order, never shuffled.
"""
import numpy as np
import tensorflow as tf

from data_pipeline.errors import KblmError
from data_pipeline.pipeline_config import MODES, PipelineConfig  # noqa: F401  (re-exported)
from data_pipeline.tf_tokenization import TFTokenizer
from data_pipeline.tokenization import split_sentences
from data_pipeline.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID

ENCODE_BATCH = 512  # messages tokenized per graph call


def lookup_table(vocab):
    """A string -> id hash table; unknown tokens map to <unk>."""
    keys = tf.constant(vocab.tokens)
    ids = tf.range(len(vocab.tokens), dtype=tf.int32)
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, ids), UNK_ID)


class Encoder(tf.Module):
    """(batch,) message strings -> (batch, (ids)) with <bos> ... <eos>, in-graph."""

    def __init__(self, vocab):
        super().__init__()
        self.tokenizer = TFTokenizer(vocab.tokenizer_options)
        self.table = lookup_table(vocab)

    def __call__(self, messages):
        tokens = self.tokenizer(messages)
        ids = tf.ragged.map_flat_values(self.table.lookup, tokens)
        rows = tf.shape(ids.row_lengths())[0]
        bos = tf.fill([rows, 1], BOS_ID)
        eos = tf.fill([rows, 1], EOS_ID)
        return tf.concat([bos, ids, eos], axis=1)


def windows(ids, sequence_length):
    """(batch, (n)) ids -> (windows, (<= sequence_length + 1)), overlapping by one id.

    Messages without tokens (n == 2, just <bos> <eos>) give no window.
    """
    lengths = ids.row_lengths()
    starts = tf.ragged.range(tf.zeros_like(lengths),
                             tf.where(lengths > 2, lengths - 1, 0), sequence_length)
    absolute = starts + tf.expand_dims(ids.row_starts(), 1)
    limits = tf.minimum(absolute + sequence_length + 1, tf.expand_dims(ids.row_limits(), 1))
    index = tf.ragged.range(absolute.flat_values, limits.flat_values)
    return tf.gather(ids.flat_values, index)


def _dense_windows(ids, sequence_length):
    # tf.data cannot unbatch ragged rows into plain tensors: carry (padded, length).
    w = windows(ids, sequence_length)
    return w.to_tensor(PAD_ID, shape=[None, sequence_length + 1]), w.row_lengths()


def shift_by_one(window):
    """(batch, T + 1) right-padded ids -> inputs, targets, weights, each (batch, T)."""
    inputs = window[:, :-1]
    targets = window[:, 1:]
    weights = tf.cast(tf.not_equal(targets, PAD_ID), tf.float32)
    return inputs, targets, weights


def encode_messages(messages, vocab):
    """Messages -> list of np.int32 arrays, each <bos> ids <eos> (tf-text tokenizer)."""
    encoder = Encoder(vocab)
    encode = tf.function(encoder, input_signature=[tf.TensorSpec([None], tf.string)])
    out = []
    for start in range(0, len(messages), ENCODE_BATCH):
        ids = encode(tf.constant(messages[start:start + ENCODE_BATCH]))
        out.extend(np.asarray(row, np.int32) for row in ids.numpy())
    return out


def sentences_of(messages):
    """Messages cut into sentences (``split_sentences``): the unit of <bos> ... <eos>."""
    return [sentence for message in messages for sentence in split_sentences(message)]


def message_dataset(messages, vocab, config=PipelineConfig(), training=True):
    """Padded, masked (inputs, targets, weights) batches of sentences; shuffled when ``training``."""
    messages = sentences_of(messages)
    if not messages:
        raise KblmError("message dataset: no messages")
    encoder = Encoder(vocab)
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(messages, tf.string)).batch(ENCODE_BATCH)
    ds = ds.map(lambda m: _dense_windows(encoder(m), config.sequence_length),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.unbatch().map(lambda window, length: window[:length])
    if config.cache:  # epochs after the first skip tokenization
        ds = ds.cache()
    if training:
        ds = ds.shuffle(config.shuffle_buffer, seed=config.seed, reshuffle_each_iteration=True)
    if config.bucket_by_length:
        boundaries = config.bucket_boundaries()
        ds = ds.bucket_by_sequence_length(
            lambda w: tf.shape(w)[0], bucket_boundaries=boundaries,
            bucket_batch_sizes=[config.batch_size] * (len(boundaries) + 1),
            pad_to_bucket_boundary=True, padding_values=PAD_ID)
    else:
        ds = ds.padded_batch(config.batch_size, padded_shapes=[config.sequence_length + 1],
                             padding_values=PAD_ID)
    ds = ds.map(shift_by_one, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def stream_ids(messages, vocab):
    """The split as one id stream: <bos> ids <eos> <bos> ids <eos> ..."""
    encoded = [row for row in encode_messages(sentences_of(messages), vocab) if len(row) > 2]
    return np.concatenate(encoded) if encoded else np.zeros([0], np.int32)


def stream_dataset(messages, vocab, config=PipelineConfig(mode="stream")):
    """In-order (inputs, targets, weights) windows of batch_size parallel streams."""
    stream = stream_ids(messages, vocab)
    rows = config.batch_size
    per_row = len(stream) // rows
    n_windows = (per_row - 1) // config.sequence_length
    if n_windows < 1:
        raise KblmError(f"stream dataset: {len(stream)} ids are fewer than one batch of "
                        f"{rows} rows x {config.sequence_length + 1} ids")
    grid = tf.constant(stream[:rows * per_row].reshape(rows, per_row))
    bptt = config.sequence_length

    def window(k):
        start = k * bptt
        inputs = grid[:, start:start + bptt]
        targets = grid[:, start + 1:start + bptt + 1]
        return inputs, targets, tf.ones_like(targets, tf.float32)

    ds = tf.data.Dataset.range(n_windows).map(window, num_parallel_calls=tf.data.AUTOTUNE,
                                              deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def padding_ratio(dataset, max_batches=None):
    """Fraction of target positions that are padding, over (up to) ``max_batches`` batches."""
    real = total = 0
    for i, (_, targets, weights) in enumerate(dataset):
        if max_batches is not None and i >= max_batches:
            break
        real += float(tf.reduce_sum(weights))
        total += int(tf.size(targets))
    return 1.0 - real / total if total else 0.0


def make_dataset(messages, vocab, config, training):
    """The dataset of ``config.mode``: message batches (shuffled if training) or the stream."""
    if config.mode == "stream":
        return stream_dataset(messages, vocab, config)
    return message_dataset(messages, vocab, config, training)
