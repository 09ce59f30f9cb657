"""The training loss and the next-word metrics, all over real tokens only.

Every batch carries ``weights`` (1 for a real target, 0 for padding); the loss and
metrics divide by the sum of weights, so a padded batch scores exactly like the
same tokens unpadded. ``summarize`` is plain Python (the TF-free phone runtime uses it).
"""
import math


def softmax_cross_entropy(logits, targets):
    """Per row of 2-D float32 ``logits`` (rows, vocabulary) and int ``targets`` (rows,):
    ``(loss, probabilities, target_logits, at)``: -log softmax(logits)[target], the softmax, the
    target's logit, and the (row, target) index pairs.

    From the softmax rather than ``SparseSoftmaxCrossEntropyWithLogits``: with oneDNN (see
    ``keyboard_lm/__init__.py``) the softmax runs in a third of that op's time, which is an
    Eigen kernel the pip wheel builds without AVX2/FMA and also computes a gradient every
    forward pass throws away. Exact: logsumexp = max logit - log(max p), and max p >= 1/
    vocabulary never underflows, so a target far below the best word keeps its loss. No
    gradient of its own: the callers supply ``softmax - one-hot``.
    """
    import tensorflow as tf

    logits = tf.cast(logits, tf.float32)  # (a no-op on float32; numpy arrays are converted)
    targets = tf.cast(targets, tf.int32)
    probabilities = tf.nn.softmax(logits)
    at = tf.stack([tf.range(tf.shape(targets)[0]), targets], 1)
    target_logits = tf.gather_nd(logits, at)
    loss = tf.reduce_max(logits, 1) - tf.math.log(tf.reduce_max(probabilities, 1)) - target_logits
    return loss, probabilities, target_logits, at


def next_word_sums(targets, logits, weights, top_k=(1, 3)):
    """Sums over one batch: ``loss_sum`` (nats), ``tokens`` (real targets), ``top1``/``top3`` hits.

    Sums, not means, so batches and replicas add up exactly; ``summarize`` turns them
    into perplexity and accuracy. A target is in the top k when fewer than k words score
    strictly above it (``in_top_k``'s rule: ties at the boundary count as in), counted from
    its logit in one pass instead of one ``in_top_k`` pass per k. Differentiable in ``logits``
    (the train step's plain path): the gradient is ``weights * (softmax - one-hot)``.
    """
    import tensorflow as tf

    vocabulary = tf.shape(logits)[-1]
    flat_logits = tf.reshape(tf.cast(logits, tf.float32), [-1, vocabulary])
    flat_targets = tf.reshape(targets, [-1])
    flat_weights = tf.reshape(tf.cast(weights, tf.float32), [-1])

    kept = {}

    @tf.custom_gradient
    def loss_sum(flat_logits):
        loss, probabilities, kept["target_logits"], at = softmax_cross_entropy(flat_logits, flat_targets)

        def gradient(upstream):
            scale = upstream * flat_weights
            return tf.tensor_scatter_nd_sub(probabilities * scale[:, None], at, scale)

        return tf.reduce_sum(loss * flat_weights), gradient

    sums = {"loss_sum": loss_sum(flat_logits), "tokens": tf.reduce_sum(flat_weights)}
    if top_k:
        target_logits = kept["target_logits"]
        above = tf.reduce_sum(tf.cast(flat_logits > target_logits[:, None], tf.float32), 1)
        finite = tf.cast(tf.math.is_finite(target_logits), tf.float32)  # in_top_k: a NaN target is out
        for k in top_k:
            sums[f"top{k}"] = tf.reduce_sum(tf.cast(above < k, tf.float32) * finite * flat_weights)
    return sums


def summarize(sums, prefix=""):
    """Perplexity, mean loss and top-k accuracy from accumulated sums."""
    tokens = max(float(sums["tokens"]), 1e-9)
    mean_loss = float(sums["loss_sum"]) / tokens
    out = {f"{prefix}loss": mean_loss,
           f"{prefix}perplexity": math.exp(min(mean_loss, 700.0)),
           f"{prefix}tokens": int(float(sums["tokens"]))}
    for key in sums:
        if key.startswith("top"):
            out[f"{prefix}{key}"] = float(sums[key]) / tokens
    return out
