"""The train step's fused output layer (``loop.fused_output_loss``) against the plain path: the
same loss, gradients and step on small models, tied and untied, both data modes; and the
command's loop reports a steady-state rate next to the epoch's."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from data_pipeline.dataset import PipelineConfig
from keyboard_lm.training.config import ModelConfig
from keyboard_lm.training.loop import Steps, fused_output_loss, output_head, steady_rate
from keyboard_lm.training.metrics import next_word_sums
from keyboard_lm.training.model import build_training_model, zero_states

VOCABULARY = 53


def batch(rows, length, padded=False, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, VOCABULARY, (rows, length + 1)).astype(np.int32)
    if padded:  # message mode: right padding of various lengths
        for r in range(rows):
            ids[r, rng.integers(2, length + 1):] = 0
    inputs, targets = ids[:, :-1], ids[:, 1:]
    return tf.constant(inputs), tf.constant(targets), tf.constant((targets != 0).astype(np.float32))


def loss_and_gradients(model, config, data, fused):
    inputs, targets, weights = data
    states = zero_states(config, inputs.shape[0])
    with tf.GradientTape() as tape:
        if fused:
            trunk, kernel, bias, transpose = output_head(model)
            h, *_ = trunk([inputs, *states], training=True)
            loss = fused_output_loss(h, kernel, bias, targets, weights, transpose, rows_per_chunk=7)
        else:
            logits, *_ = model([inputs, *states], training=True)
            loss = next_word_sums(targets, logits, weights, top_k=())["loss_sum"]
        loss = loss / tf.reduce_sum(weights)
    return loss, tape.gradient(loss, model.trainable_variables)


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("mode", ["stream", "message"])
def test_fused_output_layer_matches_the_plain_path(tied, mode):
    keras.utils.set_random_seed(0)
    config = ModelConfig(vocabulary_size=VOCABULARY, embedding_dim=12, rnn_units=(16, 16), dropout=0.0,
                         tie_weights=tied)
    model = build_training_model(config, PipelineConfig(mode=mode, batch_size=4, sequence_length=9))
    data = batch(4, 9, padded=mode == "message")  # 36 rows: blocks of 7, the last one shorter
    plain_loss, plain = loss_and_gradients(model, config, data, fused=False)
    fused_loss, fused = loss_and_gradients(model, config, data, fused=True)
    assert abs(float(plain_loss) - float(fused_loss)) < 1e-5
    for variable, a, b in zip(model.trainable_variables, plain, fused):
        a, b = (tf.convert_to_tensor(g) for g in (a, b))  # an untied embedding's gradient is sparse
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-5, err_msg=variable.path)


def test_a_fused_train_step_matches_the_plain_one():
    """Whole steps (clipping, SGD, stream state carried): the weights stay equal within rounding."""
    config = ModelConfig(vocabulary_size=VOCABULARY, embedding_dim=12, rnn_units=(16, 16), dropout=0.0,
                         tie_weights=False)
    pipeline = PipelineConfig(mode="stream", batch_size=4, sequence_length=9)
    runs = []
    for fused in (False, True):
        keras.utils.set_random_seed(0)
        model = build_training_model(config, pipeline)
        model.compile(optimizer=keras.optimizers.SGD(1.0))
        model.optimizer.build(model.trainable_variables)
        steps = Steps(model, config, tf.distribute.get_strategy(), 0.25, fused=fused)
        assert (steps.head is not None) == fused
        states, losses = steps.replica_zero_states(4), []
        for seed in range(3):
            sums, states = steps.train_step(batch(4, 9, seed=seed), states)
            losses.append(float(sums["loss_sum"]))
        runs.append((losses, [v.numpy() for v in model.trainable_variables]))
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-5)
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_allclose(b, a, atol=1e-5)


def test_mixed_precision_keeps_the_plain_path():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        config = ModelConfig(vocabulary_size=VOCABULARY, embedding_dim=8, rnn_units=(8,), tie_weights=False)
        model = build_training_model(config, PipelineConfig())
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert output_head(model) is None


def test_the_loop_reports_the_rate_after_its_first_steps():
    """train_epoch marks where its steady part starts; steady_rate counts from there only."""
    import time

    from keyboard_lm.training.loop import STEADY_AFTER, train_epoch

    config = ModelConfig(vocabulary_size=VOCABULARY, embedding_dim=8, rnn_units=(8,), dropout=0.0)
    model = build_training_model(config, PipelineConfig(mode="message"))
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.optimizer.build(model.trainable_variables)
    steps = Steps(model, config, tf.distribute.get_strategy(), 1.0)
    batches = [batch(2, 6, padded=True, seed=seed) for seed in range(STEADY_AFTER + 3)]
    clock = {}
    total, _ = train_epoch(steps, batches, clock=clock)
    ended = time.monotonic()
    started, tokens_before = clock["steady_start"]
    assert tokens_before == sum(float(b[2].numpy().sum()) for b in batches[:STEADY_AFTER])
    later = total["tokens"] - tokens_before
    assert later == sum(float(b[2].numpy().sum()) for b in batches[STEADY_AFTER:]) > 0
    assert steady_rate(clock, ended, total["tokens"], -1.0) == later / (ended - started)
    short = {}
    train_epoch(steps, batches[:STEADY_AFTER - 1], clock=short)
    assert steady_rate(short, ended, 100.0, -1.0) == -1.0  # too short for a steady part


def test_the_fused_loss_is_exact_where_the_target_probability_underflows():
    """The loss comes from the softmax (max logit - log max p - target logit), never from
    log p(target): a target 300 nats below the best word keeps its loss, no inf, no clamp."""
    h = tf.constant([[[1.0, 0.0], [0.0, 1.0]]])  # 2 rows, dim 2
    kernel = tf.constant([[300.0, 0.0, -2.0], [0.0, 5.0, 0.0]])  # (dim, vocabulary 3)
    bias = tf.zeros([3])
    targets = tf.constant([[1, 2]])  # row 0: logits (300, 0, -2), target 1 is 300 below the best
    weights = tf.ones([1, 2])
    with tf.GradientTape() as tape:
        tape.watch([h, kernel])
        loss = fused_output_loss(h, kernel, bias, targets, weights)
    dh, dkernel = tape.gradient(loss, [h, kernel])
    with tf.GradientTape() as tape:
        tape.watch([h, kernel])
        logits = tf.reshape(tf.matmul(tf.reshape(h, [-1, 2]), kernel), [1, 2, 3])
        plain = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits))
    plain_dh, plain_dkernel = tape.gradient(plain, [h, kernel])
    assert np.isfinite(float(loss)) and float(loss) > 300
    np.testing.assert_allclose(float(loss), float(plain), rtol=1e-6)
    np.testing.assert_allclose(dh.numpy(), plain_dh.numpy(), atol=1e-5)
    np.testing.assert_allclose(dkernel.numpy(), plain_dkernel.numpy(), atol=1e-5)


@pytest.mark.parametrize("setting", [None, "0"])
def test_importing_the_package_asks_tensorflow_for_onednn_kernels(setting):
    """On x86-64, ``import keyboard_lm`` before TensorFlow turns oneDNN on (TensorFlow leaves it
    off on CPUs without AVX512-VNNI/BF16/AMX); a user's own TF_ENABLE_ONEDNN_OPTS wins."""
    import os
    import platform
    import subprocess
    import sys

    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("oneDNN is asked for on x86-64 only")
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    code = ("import keyboard_lm, tensorflow\n"
            "from tensorflow.python.util import _pywrap_util_port as port\n"
            "print(port.IsMklEnabled())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == ("True" if setting is None else "False")


def test_next_word_sums_match_tensorflows_loss_top_k_and_gradient():
    """The metrics from the softmax (one pass for every k) against TensorFlow's own ops: the
    cross-entropy, ``in_top_k`` with ties at the boundary, and the gradient of the loss."""
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(3, 5, 11)).astype(np.float32)
    logits[0, 0, :4] = 2.5  # a four-way tie at the top: target 1 is in the top 1 by in_top_k's rule
    logits[0, 1, :] = 0.0  # every word tied
    logits[1, 2, 7] = np.nan  # a NaN target logit is never a hit
    targets = rng.integers(0, 11, (3, 5)).astype(np.int32)
    targets[0, 0], targets[0, 1], targets[1, 2] = 1, 4, 7
    weights = (rng.random((3, 5)) > 0.2).astype(np.float32)
    logits_t = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(logits_t)
        sums = next_word_sums(targets, logits_t, weights)
    gradient = tape.gradient(sums["loss_sum"], logits_t).numpy()
    clean = tf.constant(np.nan_to_num(logits))
    with tf.GradientTape() as tape:
        tape.watch(clean)
        reference = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(targets, clean) * weights)
    reference_gradient = tape.gradient(reference, clean).numpy()
    finite = ~np.isnan(logits).any(-1)
    assert np.isnan(float(sums["loss_sum"]))  # the NaN row's loss is NaN, as TensorFlow's would be
    per_row = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, clean).numpy()
    kept = next_word_sums(targets[finite][None], logits[finite][None], weights[finite][None])
    np.testing.assert_allclose(float(kept["loss_sum"]), (per_row * weights)[finite].sum(), rtol=1e-5)
    np.testing.assert_allclose(gradient[finite], reference_gradient[finite], atol=1e-6)
    for k in (1, 3):
        hits = tf.math.in_top_k(targets.reshape(-1), logits.reshape(-1, 11), k).numpy().reshape(3, 5)
        assert float(sums[f"top{k}"]) == float((hits * weights).sum())
    assert hits[0, 0] and hits[0, 1]  # the ties really sit at the boundary
    assert float(sums["tokens"]) == weights.sum()
