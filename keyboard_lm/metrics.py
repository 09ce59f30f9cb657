"""The training loss and the next-word metrics, all over real tokens only.

Every batch carries ``weights`` (1 for a real target, 0 for padding); the loss and
metrics divide by the sum of weights, so a padded batch scores exactly like the
same tokens unpadded.
"""
import keras


def next_word_loss():
    """Masked sparse categorical cross-entropy from logits: mean over real tokens.

    Keras's default reduction divides by every position, padding included; this one
    divides by the sum of sample weights.
    """
    return keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction="mean_with_sample_weight", name="next_word_loss")
