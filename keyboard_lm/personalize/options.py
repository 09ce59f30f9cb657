"""What ``kblm personalize`` is asked (PersonalizeOptions) and what it asks of the user's text.

Input: the options, the user's messages and the base vocabulary. Output: the options
checked (a KblmError names the bad one), the user's word counts, the split into the text
fine-tuned on and the held-out slice, and the warnings the report carries. Plain Python.
"""
import dataclasses

from data_pipeline import tokenization
from data_pipeline.errors import KblmError
from data_pipeline.vocab import UNK_ID

MIN_WORDS = 300  # below this a fine-tune mostly memorises; the message says so
MIN_KNOWN = 0.10  # share of the user's words the base vocabulary must know
WARN_UNKNOWN = 0.20  # at this share of <unk> words, the report warns (its figures count <unk> hits)
FREEZE = ("none", "embedding", "all-but-last")


@dataclasses.dataclass(frozen=True)
class PersonalizeOptions:
    epochs: int = 20  # the ceiling: early stopping on the held-out slice decides
    learning_rate: float = 3e-4
    batch_size: int = 16
    patience: int = 2  # epochs without held-out improvement before stopping
    anchor: float = 1e-3  # L2 pull toward the base weights (0: off)
    freeze: str = "none"  # none | embedding (and the tied output) | all-but-last (RNN layer)
    dropout: float | None = None  # dropout while fine-tuning (None: the base's)
    final_pass: bool = True  # after early stopping, one more epoch over all the user's text
    holdout: float = 0.1  # share of the user's messages held out for early stopping
    max_minutes: float | None = None
    general_limit: int = 2000  # general-text messages for the forgetting check
    # the forgetting guard: the largest relative rise of the general loss a shipped model may
    # have (0.02 = 2%; None: off). Over it, the run backs off (personalize/guard.py)
    max_forgetting: float | None = 0.02
    ksr_limit: int = 200  # user messages replayed through the harness (0: skip)
    quantize: str | None = "dynamic_int8"  # the bundle to export (None: no export)
    # exported instead when ``quantize`` loses more top-3 than the export's tolerance (None: fail)
    quantize_fallback: str | None = "float16"
    threads: int | None = None  # TensorFlow threads (None: all cores)
    seed: int = 1234
    paragraphs: bool = False  # the user's text: one message per blank-line-separated paragraph
    replace_bad_bytes: bool = False  # the user's text: invalid UTF-8 bytes become U+FFFD

    def __post_init__(self):
        if self.freeze not in FREEZE:
            raise KblmError(f"freeze must be one of {list(FREEZE)}; got {self.freeze!r}")
        if not 0 < self.holdout < 0.5:
            raise KblmError(f"holdout must be in (0, 0.5); got {self.holdout}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise KblmError(f"dropout must be in [0, 1); got {self.dropout}")
        if self.max_forgetting is not None and not 0 <= self.max_forgetting < 10:
            raise KblmError(f"max_forgetting must be a share in [0, 10) (0.02 = 2%); got {self.max_forgetting}")
        if self.epochs < 1 or self.learning_rate <= 0 or self.anchor < 0:
            raise KblmError("epochs and learning_rate must be positive and anchor >= 0; got "
                            f"{self.epochs}, {self.learning_rate}, {self.anchor}")


def count_words(messages, vocab):
    """(words, words the vocabulary knows) over the messages, by the vocabulary's tokenizer."""
    words = known = 0
    for message in messages:
        for token in tokenization.tokenize(message, vocab.tokenizer_options):
            if tokenization.is_word(token):
                words += 1
                known += vocab.id(token) != UNK_ID
    return words, known


def split_user_text(messages, holdout):
    """(train, held out): the last ``holdout`` share of messages (at least one) is held out."""
    held = max(1, round(len(messages) * holdout))
    return messages[:-held], messages[-held:]


def check_user_text(source, messages, vocab):
    words, known = count_words(messages, vocab)
    if words < MIN_WORDS:
        raise KblmError(f"{source}: {words} words of user text; personalization needs at least "
                        f"{MIN_WORDS} (the base run is untouched)")
    if known < MIN_KNOWN * words:
        raise KblmError(f"{source}: only {known} of {words} words are in the base vocabulary "
                        f"({known / words:.0%}); personalization needs at least {MIN_KNOWN:.0%}")
    return words, known


def unknown_words_warnings(source, words, known):
    """A warning when many of the user's words are <unk> to the base: the figures count a
    predicted <unk> as a correct prediction, so they flatter the model (another language?)."""
    unknown = (words - known) / words if words else 0.0
    if unknown < WARN_UNKNOWN:
        return []
    return [f"{source}: {unknown:.0%} of the user's words are not in the base vocabulary and become <unk>; "
            "perplexity and top-3 count a predicted <unk> as correct, so the user figures overstate the "
            "gain (see top-3 over known words); a base trained on this text's language would serve better"]
