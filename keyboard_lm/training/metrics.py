"""The training loss and the next-word metrics, all over real tokens only.

Every batch carries ``weights`` (1 for a real target, 0 for padding); the loss and
metrics divide by the sum of weights, so a padded batch scores exactly like the
same tokens unpadded. ``summarize`` is plain Python (the TF-free phone runtime uses it).
"""
import math


def next_word_sums(targets, logits, weights, top_k=(1, 3)):
    """Sums over one batch: ``loss_sum`` (nats), ``tokens`` (real targets), ``top1``/``top3`` hits.

    Sums, not means, so batches and replicas add up exactly; ``summarize`` turns them
    into perplexity and accuracy.
    """
    from keras import ops

    weights = ops.cast(weights, "float32")
    cross_entropy = ops.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    sums = {"loss_sum": ops.sum(cross_entropy * weights), "tokens": ops.sum(weights)}
    flat_targets = ops.reshape(targets, (-1,))
    flat_logits = ops.reshape(logits, (-1, ops.shape(logits)[-1]))
    flat_weights = ops.reshape(weights, (-1,))
    for k in top_k:
        hits = ops.cast(ops.in_top_k(flat_targets, flat_logits, k), "float32")
        sums[f"top{k}"] = ops.sum(hits * flat_weights)
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
