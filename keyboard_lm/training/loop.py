"""One training loop for every strategy: default, MirroredStrategy, MultiWorkerMirroredStrategy.

Input: a built model, tf.data datasets of (inputs, targets, weights), a TrainConfig.
Output: trained weights, and Keras callbacks driven through ``keras.callbacks.CallbackList``
(checkpoints, backup/restore, early stopping, logs), exactly as ``fit`` would drive them.

Why a custom loop and not ``fit``: on TF 2.21, Keras 3 ``fit`` fails under
MultiWorkerMirroredStrategy, while a step under ``strategy.run`` works. One loop for
every strategy keeps a single copy of the training logic.

A step, on every replica::

    loss = sum(cross-entropy * weights) / (sum of weights over ALL replicas)
    grads = all_reduce(SUM, d loss / d params)        # the global mean gradient
    grads = clip_by_global_norm(grads, clip_norm)     # clipped globally, not per replica
    optimizer.apply(grads / n_replicas)               # Keras all-reduces (SUM) once more

Keras's own clipping would clip each replica's partial gradient; clipping after our
all-reduce makes n replicas step exactly like one device on the global batch.
"""
import itertools
import math
import time

import keras
import tensorflow as tf

from data_pipeline.errors import KblmError
from keyboard_lm.training.metrics import next_word_sums, summarize
from keyboard_lm.training.model import zero_states


def resolve_strategy(name):
    """auto: MirroredStrategy over every visible GPU, else the default (CPU) strategy."""
    if name == "multi_worker":
        import json
        import os

        if "TF_CONFIG" not in os.environ:
            raise KblmError("strategy multi_worker needs TF_CONFIG (cluster and task); see the README")
        try:
            cluster = json.loads(os.environ["TF_CONFIG"])
        except json.JSONDecodeError as e:
            raise KblmError(f"TF_CONFIG is not valid JSON ({e})") from None
        if not isinstance(cluster, dict) or "cluster" not in cluster or "task" not in cluster:
            raise KblmError("TF_CONFIG must hold 'cluster' and 'task'")
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto" and gpus or name == "mirrored" and gpus:
        return tf.distribute.MirroredStrategy()  # every visible GPU
    if name == "mirrored":  # no GPU: mirror over the logical CPU devices (how it is tested here)
        return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    return tf.distribute.get_strategy()


def make_optimizer(config, steps_per_epoch):
    """Adam / AdamW / SGD with the configured schedule; clipping happens in the step."""
    rate = config.learning_rate
    if config.schedule == "cosine":
        total = max(1, config.epochs * steps_per_epoch - config.warmup_steps)
        rate = keras.optimizers.schedules.CosineDecay(
            0.0 if config.warmup_steps else rate, total, warmup_target=rate if config.warmup_steps else None,
            warmup_steps=config.warmup_steps)
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(rate)
    elif config.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(rate, weight_decay=config.weight_decay)
    else:
        optimizer = keras.optimizers.Adam(rate)
    if config.precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def _merge_duplicates(gradient):
    """Sums the rows of a sparse gradient that share an index: without this, the global norm
    (and so the clipping) of an untied embedding's gradient undercounts repeated words."""
    if not isinstance(gradient, tf.IndexedSlices):
        return gradient
    unique, position = tf.unique(gradient.indices)
    values = tf.math.unsorted_segment_sum(gradient.values, position, tf.shape(unique)[0])
    return tf.IndexedSlices(values, unique, gradient.dense_shape)


def _divide(gradient, divisor):
    if isinstance(gradient, tf.IndexedSlices):  # an untied embedding's sparse gradient stays sparse
        return tf.IndexedSlices(gradient.values / divisor, gradient.indices, gradient.dense_shape)
    return gradient / divisor


class Steps:
    """The compiled train and eval steps of one model under one strategy."""

    def __init__(self, model, model_config, strategy, clip_norm, jit_compile=False, penalty=None):
        self.model = model
        self.penalty = penalty  # optional: () -> scalar added to the loss (personalization)
        self.model_config = model_config
        self.strategy = strategy
        self.clip_norm = clip_norm
        # reduce_retracing: bucketed message batches come in several lengths; trace once
        # with a generic time dimension instead of once per bucket.
        self._gradients = tf.function(self._gradients_impl, jit_compile=jit_compile, reduce_retracing=True)
        self._forward = tf.function(self._forward_impl, jit_compile=jit_compile, reduce_retracing=True)
        self.train_step = tf.function(self._train_step, reduce_retracing=True)
        self.eval_step = tf.function(self._eval_step, reduce_retracing=True)

    def _states(self, inputs, states):
        if states is None:
            return zero_states(self.model_config, tf.shape(inputs)[0])
        return states

    def _gradients_impl(self, inputs, targets, weights, states, total_tokens):
        optimizer = self.model.optimizer
        with tf.GradientTape() as tape:
            logits, *next_states = self.model([inputs, *states], training=True)
            sums = next_word_sums(targets, logits, weights, top_k=())
            loss = sums["loss_sum"] / total_tokens
            if self.penalty is not None:  # each replica adds its share; the all-reduce sums them
                loss += self.penalty() / self.strategy.num_replicas_in_sync
            scaled = optimizer.scale_loss(loss)
        variables = self.model.trainable_variables
        grads = tape.gradient(scaled, variables)
        return sums, grads, [tf.stop_gradient(s) for s in next_states]

    def _replica_train(self, batch, states, stop):
        inputs, targets, weights = batch
        states = self._states(inputs, states)
        context = tf.distribute.get_replica_context()
        total_tokens = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(weights))
        sums, grads, next_states = self._gradients(inputs, targets, weights, states, total_tokens)
        grads = [_merge_duplicates(g) for g in context.all_reduce(tf.distribute.ReduceOp.SUM, grads)]
        optimizer = self.model.optimizer
        scale = tf.cast(getattr(optimizer, "dynamic_scale", 1.0), tf.float32)
        grads, _ = tf.clip_by_global_norm(grads, self.clip_norm * scale)
        replicas = tf.cast(self.strategy.num_replicas_in_sync, tf.float32)
        optimizer.apply([_divide(g, replicas) for g in grads], self.model.trainable_variables)
        # Every worker must take the same number of steps (each waits in the all-reduce), so a
        # stop request (time budget) is summed over all replicas below: any request stops all.
        sums["stop"] = tf.identity(stop)
        return sums, next_states

    def _train_step(self, batch, states=None, stop=False):
        stop = tf.constant(1.0 if stop else 0.0)
        sums, next_states = self.strategy.run(self._replica_train, args=(batch, states, stop))
        return self._reduce(sums), next_states

    def _forward_impl(self, inputs, targets, weights, states):
        logits, *next_states = self.model([inputs, *states], training=False)
        return next_word_sums(targets, logits, weights), next_states

    def _eval_step(self, batch, states=None):
        # Evaluation runs locally on every worker (same data, same weights, same result):
        # exact, and free of collectives a worker could wait on forever.
        inputs, targets, weights = batch
        return self._forward(inputs, targets, weights, self._states(inputs, states))

    def _reduce(self, sums):
        return {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                for k, v in sums.items()}

    def replica_zero_states(self, batch_size):
        """Per-replica zero states for stream mode (each replica holds its slice of rows)."""
        per_replica = batch_size // self.strategy.num_replicas_in_sync
        return self.strategy.run(lambda: zero_states(self.model_config, per_replica))


def _accumulate(total, sums):
    for key, value in sums.items():
        total[key] = total.get(key, 0.0) + float(value)
    return total


def evaluate(steps, dataset, stream_batch_size=None, max_steps=None, progress=None):
    """Sums over a dataset (states carried across batches in stream mode)."""
    total = {}
    states = zero_states(steps.model_config, stream_batch_size) if stream_batch_size else None
    for i, batch in enumerate(dataset):
        if max_steps is not None and i >= max_steps:
            break
        sums, next_states = steps.eval_step(batch, states)
        states = next_states if stream_batch_size else None
        _accumulate(total, sums)
        if progress is not None:
            progress.update(1)
    return total


class TrainingDiverged(KblmError):
    pass


def train_epoch(steps, batches, num_steps=None, states=None, deadline=None, callbacks=None, diverged=None):
    """One epoch of training steps: every batch of ``batches`` (an iterable of global batches),
    at most ``num_steps`` of them. The loop both ``fit`` (each epoch of ``kblm train`` and of a
    fine-tune) and personalization's final pass run.

    ``states``: the first batch's recurrent states (stream mode: each step's next states feed
    the next step); None: every batch starts from zero states (message mode). ``deadline``: a
    ``time.monotonic()`` value; the step that finds it passed is taken (every worker of a
    multi-worker run takes it: the stop request is summed over replicas), then the epoch ends.
    ``callbacks``: a CallbackList told of each batch, with running metrics. ``diverged(loss,
    step)``: the message of the TrainingDiverged raised on a non-finite loss (before any callback
    sees that state). Returns (the epoch's summed metrics, True if it stopped for the deadline).
    """
    carry = states is not None
    total, out_of_time = {}, False
    for step, batch in enumerate(batches if num_steps is None else itertools.islice(batches, num_steps)):
        if callbacks is not None:
            callbacks.on_train_batch_begin(step)
        over_budget = deadline is not None and time.monotonic() > deadline
        sums, next_states = steps.train_step(batch, states, over_budget)
        states = next_states if carry else None
        out_of_time = float(sums.pop("stop")) > 0
        _accumulate(total, sums)
        if not math.isfinite(total["loss_sum"]):
            raise TrainingDiverged(diverged(total["loss_sum"], step) if diverged is not None else
                                   f"training diverged: the loss became {total['loss_sum']} at step {step + 1}")
        if callbacks is not None:
            callbacks.on_train_batch_end(step, summarize(total))
        if out_of_time:
            break
    return total, out_of_time


def fit(steps, train_dataset, valid_dataset, config, callbacks, steps_per_epoch):
    """Trains for ``config.epochs`` of ``steps_per_epoch`` global batches (``train_epoch``),
    validating after each.

    Drives ``callbacks`` (a CallbackList) like ``Model.fit``: train begin/end, epoch
    begin/end with train and ``val_`` metrics, batch begin/end with running metrics.
    The training data repeats, so every worker of a multi-worker run takes exactly
    ``steps_per_epoch`` steps (a worker whose shard runs short would otherwise leave the
    others waiting in an all-reduce). Raises TrainingDiverged on a non-finite loss,
    before any callback saves that state.
    """
    model, strategy = steps.model, steps.strategy
    stream = config.pipeline.mode == "stream"
    batch_size = config.pipeline.batch_size
    batches = iter(strategy.experimental_distribute_dataset(train_dataset.repeat()))
    started = time.monotonic()
    deadline = None if config.max_minutes is None else started + 60 * config.max_minutes
    logs = {}
    callbacks.on_train_begin()
    for epoch in range(getattr(model, "_initial_epoch", None) or 0, config.epochs):
        callbacks.on_epoch_begin(epoch)
        epoch_started = time.monotonic()

        def diverged(loss, step):
            return (f"training diverged: the loss became {loss} at epoch {epoch + 1}, step {step + 1}; the "
                    "last good model and backup are kept; lower the learning rate or the clip norm")

        states = steps.replica_zero_states(batch_size) if stream else None  # reset each epoch
        total, out_of_time = train_epoch(steps, batches, steps_per_epoch, states, deadline, callbacks, diverged)
        seconds = time.monotonic() - epoch_started
        valid = evaluate(steps, valid_dataset, batch_size if stream else None, config.validation_steps)
        logs = {**summarize(total), **summarize(valid, "val_"),
                "tokens_per_second": total.get("tokens", 0.0) / max(seconds, 1e-9),
                "learning_rate": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
                "epoch_seconds": seconds}
        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training or out_of_time:
            break
    callbacks.on_train_end(logs)
    return logs


def count_batches(dataset, cap=None):
    """Global batches in one pass (at most ``cap``); a full pass also fills the cache."""
    count = 0
    for _ in dataset:
        count += 1
        if cap is not None and count >= cap:
            break
    return max(1, count)
