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
from keyboard_lm.training.metrics import next_word_sums, softmax_cross_entropy, summarize
from keyboard_lm.training.model import zero_states

FUSED_ROWS = 350  # rows of logits per block of fused_output_loss: 2 blocks of a 20x35 batch measured
# fastest with oneDNN (1 block: its 50 MB of logits leave the cache; 4: more dW partial sums to add)


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


def fused_output_loss(h, kernel, bias, targets, weights, transpose_kernel=False, rows_per_chunk=None):
    """``sum(weights * cross_entropy(h @ kernel + bias, targets))`` over (batch, time), with its
    gradient (to ``h``, ``kernel``, ``bias``) computed in the same pass, a block of rows at a time.

    The plain path materialises the (rows, vocabulary) logits, then the softmax gradient, then
    reads both again for the bias gradient and the two gradient matmuls: at 700 rows x 17,844
    words that is ~50 MB per pass. Here each block's logits, its softmax and softmax gradient
    and that block's share of ``dh``, ``dW`` and ``db`` are computed while the block is still
    in the (last-level) cache, and nothing of
    vocabulary width outlives the block. Same math, summed in another order (float rounding).
    Hand-written: TensorFlow has no fused output-layer-plus-cross-entropy op. Training only
    (float32; the logits are never returned). ``transpose_kernel``: ``kernel`` is (vocabulary,
    dim), a tied embedding matrix.
    """
    rows_per_chunk = rows_per_chunk or FUSED_ROWS
    dim = tf.shape(h)[-1]
    flat_h = tf.reshape(h, [-1, dim])
    flat_targets = tf.reshape(targets, [-1])
    flat_weights = tf.reshape(tf.cast(weights, tf.float32), [-1])
    rows = flat_h.shape[0]
    chunks = max(1, -(-rows // rows_per_chunk)) if rows is not None else 4  # a static block count
    total_rows = tf.shape(flat_h)[0]
    size = total_rows // chunks
    sizes = tf.concat([tf.fill([chunks - 1], size), [total_rows - size * (chunks - 1)]], 0)

    @tf.custom_gradient
    def loss_sum(flat_h, kernel, bias):
        losses, dh, dkernel, dbias = [], [], None, None
        for h_c, t_c, w_c in zip(tf.split(flat_h, sizes, num=chunks), tf.split(flat_targets, sizes, num=chunks),
                                 tf.split(flat_weights, sizes, num=chunks)):
            logits = tf.nn.bias_add(tf.matmul(h_c, kernel, transpose_b=transpose_kernel), bias)
            loss, probabilities, _, at = softmax_cross_entropy(logits, t_c)  # see its notes
            losses.append(tf.reduce_sum(loss * w_c))
            dlogits = tf.tensor_scatter_nd_sub(probabilities, at, tf.ones_like(w_c))  # softmax - one-hot
            # The weights scale the (rows, dim) factors, not the (rows, vocabulary) dlogits: one
            # pass over the block fewer. The bias gradient is dlogits^T w (a matrix-vector product).
            dh.append(tf.matmul(dlogits, kernel, transpose_b=not transpose_kernel) * w_c[:, None])
            weighted_h = h_c * w_c[:, None]
            part = (tf.matmul(dlogits, weighted_h, transpose_a=True) if transpose_kernel
                    else tf.matmul(weighted_h, dlogits, transpose_a=True))
            dkernel = part if dkernel is None else dkernel + part
            part = tf.linalg.matvec(dlogits, w_c, transpose_a=True)
            dbias = part if dbias is None else dbias + part
        dh = tf.concat(dh, 0)

        def gradient(upstream):
            return dh * upstream, dkernel * upstream, dbias * upstream

        return tf.add_n(losses), gradient

    return loss_sum(flat_h, tf.convert_to_tensor(kernel), tf.convert_to_tensor(bias))


def output_head(model):
    """(trunk, kernel, bias, transpose_kernel) of a float32 model for ``fused_output_loss``:
    ``trunk`` is ``model`` up to the output layer's input (same layers, same weights, returns
    ``[h, *next_states]``); None if the model's last layer is not one of the two known heads."""
    from keyboard_lm.training.model import EMBEDDING, OUTPUT, PROJECTION

    if model.dtype_policy.compute_dtype != "float32":
        return None  # mixed precision: the plain path casts the logits; keep its rounding
    def producer(tensor):
        history = getattr(tensor, "_keras_history", None)
        return history.operation if history is not None else None

    last = producer(model.outputs[0])  # build_model's heads, and nothing after them
    if getattr(last, "name", None) == "logits" and isinstance(last, keras.layers.Activation) \
            and producer(last.input) is not None and producer(last.input).name == OUTPUT:
        layer = producer(last.input)
        if layer.bias is None or layer.activation not in (None, keras.activations.linear):
            return None
        h, kernel, bias, transpose = layer.input, layer.kernel, layer.bias, False
    elif getattr(last, "name", None) == EMBEDDING and getattr(last, "output_bias", False) \
            and PROJECTION in {layer.name for layer in model.layers}:
        projection = model.get_layer(PROJECTION).output
        if producer(projection) is None:
            return None
        h, kernel, bias, transpose = projection, last.embeddings, last.bias, True
    else:
        return None
    trunk = keras.Model(model.inputs, [h, *model.outputs[1:]], name="next_word_trunk")
    return trunk, kernel, bias, transpose


def _divide(gradient, divisor):
    if isinstance(gradient, tf.IndexedSlices):  # an untied embedding's sparse gradient stays sparse
        return tf.IndexedSlices(gradient.values / divisor, gradient.indices, gradient.dense_shape)
    return gradient / divisor


class Steps:
    """The compiled train and eval steps of one model under one strategy."""

    def __init__(self, model, model_config, strategy, clip_norm, jit_compile=False, penalty=None, fused=True):
        self.model = model
        # The train step's output layer and loss: fused (see fused_output_loss) when the model
        # has a known head; the eval step and the saved model always use the plain layers.
        self.head = output_head(model) if fused else None
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
            if self.head is not None:
                trunk, kernel, bias, transpose = self.head
                h, *next_states = trunk([inputs, *states], training=True)
                sums = {"loss_sum": fused_output_loss(h, kernel, bias, targets, weights, transpose),
                        "tokens": tf.reduce_sum(tf.cast(weights, tf.float32))}
            else:
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
        if self.strategy.num_replicas_in_sync > 1:  # / 1 would be one more pass over every gradient
            grads = [_divide(g, replicas) for g in grads]
        optimizer.apply(grads, self.model.trainable_variables)
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


STEADY_AFTER = 10  # steps: the first ones trace the step (seconds) and warm oneDNN's kernel caches


def train_epoch(steps, batches, num_steps=None, states=None, deadline=None, callbacks=None, diverged=None,
                clock=None):
    """One epoch of training steps: every batch of ``batches`` (an iterable of global batches),
    at most ``num_steps`` of them. The loop both ``fit`` (each epoch of ``kblm train`` and of a
    fine-tune) and personalization's final pass run.

    ``states``: the first batch's recurrent states (stream mode: each step's next states feed
    the next step); None: every batch starts from zero states (message mode). ``deadline``: a
    ``time.monotonic()`` value; the step that finds it passed is taken (every worker of a
    multi-worker run takes it: the stop request is summed over replicas), then the epoch ends.
    ``callbacks``: a CallbackList told of each batch, with running metrics. ``diverged(loss,
    step)``: the message of the TrainingDiverged raised on a non-finite loss (before any callback
    sees that state). ``clock``: a dict that receives ``steady_start``, (time.monotonic(), tokens
    so far) once STEADY_AFTER steps are done, so a caller can tell the steady-state rate from the
    epoch's (which includes tracing the step; see ``steady_rate``). Returns (the epoch's summed
    metrics, True if it stopped for the deadline).
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
        if clock is not None and step + 1 == STEADY_AFTER:
            clock["steady_start"] = (time.monotonic(), total["tokens"])
        if out_of_time:
            break
    return total, out_of_time


def steady_rate(clock, ended, tokens, fallback):
    """Tokens/s from ``clock``'s steady start (see ``train_epoch``) to ``ended`` (time.monotonic()
    when the epoch's loop returned, having trained ``tokens``); ``fallback`` if the epoch was too
    short to have a steady part."""
    if "steady_start" not in clock or ended <= clock["steady_start"][0]:
        return fallback
    started, tokens_before = clock["steady_start"]
    return (tokens - tokens_before) / (ended - started)


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
        clock = {}
        total, out_of_time = train_epoch(steps, batches, steps_per_epoch, states, deadline, callbacks, diverged,
                                         clock)
        ended = time.monotonic()
        seconds = ended - epoch_started
        valid = evaluate(steps, valid_dataset, batch_size if stream else None, config.validation_steps)
        rate = total.get("tokens", 0.0) / max(seconds, 1e-9)
        logs = {**summarize(total), **summarize(valid, "val_"),
                "tokens_per_second": rate,  # the whole epoch's loop, first steps (tracing) included
                "steady_tokens_per_second": steady_rate(clock, ended, total.get("tokens", 0.0), rate),
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
