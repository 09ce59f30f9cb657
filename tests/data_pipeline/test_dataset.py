"""tf.data pipelines: shift-by-one, windows, bucketing, stream layout, the masking contract."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from data_pipeline.dataset import (PipelineConfig, encode_messages, message_dataset,
                                   padding_ratio, shift_by_one, stream_dataset, stream_ids)
from data_pipeline.errors import KblmError
from data_pipeline.vocab import BOS_ID, EOS_ID, PAD_ID

SMALL = PipelineConfig(batch_size=4, sequence_length=5, shuffle_buffer=100)


def batches(ds):
    return [tuple(t.numpy() for t in b) for b in ds]


def targets_by_message(messages, vocab, config):
    """Every (input history -> target) pair, read back from the batches."""
    pairs = []
    for inputs, targets, weights in batches(message_dataset(messages, vocab, config, training=False)):
        assert np.array_equal(weights, (targets != PAD_ID).astype(np.float32))
        assert np.array_equal(inputs[:, 1:][weights[:, :-1] > 0], targets[:, :-1][weights[:, :-1] > 0])
        pairs.extend(targets[weights > 0].tolist())
    return pairs


@pytest.mark.parametrize("bucket", [True, False])
def test_every_token_is_a_target_exactly_once(toy_vocab, bucket):
    from tests.conftest import TOY_MESSAGES

    config = dataclasses.replace(SMALL, bucket_by_length=bucket)
    encoded = encode_messages(TOY_MESSAGES, toy_vocab)
    expected = sorted(i for row in encoded for i in row[1:].tolist())
    assert sorted(targets_by_message(TOY_MESSAGES, toy_vocab, config)) == expected


def test_long_messages_are_cut_into_overlapping_windows(toy_vocab):
    message = " ".join(["see you soon"] * 4)  # 12 tokens -> 14 ids with <bos>/<eos>
    config = dataclasses.replace(SMALL, bucket_by_length=False)
    (inputs, targets, weights), = batches(message_dataset([message], toy_vocab, config, training=False))
    assert inputs.shape == (3, 5)
    ids = encode_messages([message], toy_vocab)[0]
    assert ids[0] == BOS_ID and ids[-1] == EOS_ID
    assert np.array_equal(inputs[0], ids[0:5]) and np.array_equal(inputs[1], ids[5:10])
    assert targets[2][weights[2] > 0].tolist() == ids[11:].tolist()


def test_messages_without_tokens_give_no_window(toy_vocab):
    ds = message_dataset(["", "\x00", "see"], toy_vocab, SMALL, training=False)
    (inputs, targets, weights), = batches(ds)
    assert targets[weights > 0].tolist() == [toy_vocab.id("see"), EOS_ID]
    assert inputs[0, :2].tolist() == [BOS_ID, toy_vocab.id("see")]


def test_bucketing_cuts_padding(brown_vocab, brown):
    valid = brown.splits["valid"][:3000]
    config = PipelineConfig(batch_size=32)
    bucketed = padding_ratio(message_dataset(valid, brown_vocab, config))
    padded = padding_ratio(message_dataset(valid, brown_vocab,
                                           dataclasses.replace(config, bucket_by_length=False)))
    assert bucketed < padded / 2


def test_training_order_is_seeded(toy_vocab):
    from tests.conftest import TOY_MESSAGES

    first = batches(message_dataset(TOY_MESSAGES * 5, toy_vocab, SMALL))
    second = batches(message_dataset(TOY_MESSAGES * 5, toy_vocab, SMALL))
    other = batches(message_dataset(TOY_MESSAGES * 5, toy_vocab, dataclasses.replace(SMALL, seed=7)))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, second))
    assert not all(a[0].shape == b[0].shape and np.array_equal(a[0], b[0]) for a, b in zip(first, other))


def test_stream_layout_carries_rows_across_batches(toy_vocab):
    from tests.conftest import TOY_MESSAGES

    messages = TOY_MESSAGES * 10
    config = PipelineConfig(mode="stream", batch_size=3, sequence_length=4)
    stream = stream_ids(messages, toy_vocab)
    per_row = len(stream) // 3
    rows = stream[:3 * per_row].reshape(3, per_row)
    got = batches(stream_dataset(messages, toy_vocab, config))
    assert len(got) == (per_row - 1) // 4
    for k, (inputs, targets, weights) in enumerate(got):
        assert np.array_equal(inputs, rows[:, 4 * k:4 * k + 4])
        assert np.array_equal(targets, rows[:, 4 * k + 1:4 * k + 5])
        assert weights.min() == 1.0
    for (_, previous, _), (current, _, _) in zip(got, got[1:]):
        assert np.array_equal(previous[:, -1], current[:, 0])  # row r continues row r


def test_stream_too_small_for_one_batch(toy_vocab):
    with pytest.raises(KblmError, match="fewer than one batch"):
        stream_dataset(["see you"], toy_vocab, PipelineConfig(mode="stream", batch_size=8))


def test_ten_megabyte_message(toy_vocab):
    message = "see you soon " * 800_000  # ~10 MB, 2.4M tokens
    config = PipelineConfig(batch_size=1024, sequence_length=64, bucket_by_length=False)
    total = sum(float(w.numpy().sum()) for _, _, w in message_dataset([message], toy_vocab, config))
    assert total == 2_400_001  # every token and the final <eos>


def test_distributed_dataset(toy_vocab):
    from tests.conftest import TOY_MESSAGES

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    ds = strategy.experimental_distribute_dataset(
        message_dataset(TOY_MESSAGES, toy_vocab, dataclasses.replace(SMALL, bucket_by_length=False)))
    inputs, targets, weights = next(iter(ds))
    assert strategy.experimental_local_results(inputs)[0].shape[1] == 5


# --- the masking contract ------------------------------------------------------------------

def test_padding_leaves_the_lstm_state_unmodified():
    tf.keras.utils.set_random_seed(0)
    import keras

    tokens = keras.Input((None,), dtype="int32")
    embedded = keras.layers.Embedding(20, 8, mask_zero=True)(tokens)
    _, h, c = keras.layers.LSTM(6, return_state=True)(embedded)
    model = keras.Model(tokens, [h, c])
    unpadded = np.array([[5, 7, 3, 9]])
    padded = np.array([[5, 7, 3, 9, 0, 0, 0]])
    for a, b in zip(model(unpadded), model(padded)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    other = np.array([[5, 7, 3, 9, 4, 0, 0]])  # a real token does change it
    assert not np.allclose(model(unpadded)[0], model(other)[0])


def test_masked_loss_is_the_mean_over_real_tokens():
    from keyboard_lm.training.metrics import next_word_sums

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 10)).astype(np.float32)
    window = np.array([[2, 5, 6, 7, 3], [2, 8, 3, 0, 0]])
    _, targets, weights = (t.numpy() for t in shift_by_one(tf.constant(window)))
    sums = next_word_sums(targets, logits, weights)
    masked = float(sums["loss_sum"] / sums["tokens"])  # what training minimises
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    per_token = -np.take_along_axis(log_probs, targets[..., None], -1)[..., 0]
    assert masked == pytest.approx(per_token[weights > 0].mean(), rel=1e-5)
    assert weights.sum() == 6
