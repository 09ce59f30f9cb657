"""The keyboard engine: the phone's loop, keystroke by keystroke. numpy + ai_edge_litert only.

Input: a verified bundle (``export.bundle.load_bundle``) and the text before the cursor,
changed one keystroke at a time. Output: the 3-slot suggestion strip. The Android app's
``core/`` ports this class line for line; golden traces hold the two to the same strips.

How the text maps to model steps (one invariant, kept after every change):

    fed ids == <bos> + ids of every finished token of the text, with <eos> <bos> after each
               sentence end (. ! ?), exactly as training framed sentences (a model trained
               on single sentences starts each <bos> from an empty state)

A token is finished once whitespace follows it; a trailing word is the *prefix* being typed
(the strip completes it); trailing punctuation counts as finished at once. After a change
the engine keeps the longest common prefix of what it had fed, rewinds the rest from a
bounded stack of states (backspace costs no re-run), and steps only the new ids.

The strip never re-offers a word the user passed over: words shown while the current word
was typed forward (and not tapped) stay out of the strip until that word is finished or
the user backspaces or jumps. With a personal cache (``personal_cache.py``), the strip
ranks words by the mixture of the model and the cache; the cache learns every committed
vocabulary word and forgets it again if the user backspaces into it.
"""
import bisect
import sys

import numpy as np

from data_pipeline import tokenization
from data_pipeline.vocab import BOS_ID, EOS_ID, SPECIAL_TOKENS

STRIP_SIZE = 3
STACK_LIMIT = 256  # states kept for rewinding; deeper rewinds re-prime from the start


class KeyboardEngine:
    """Holds the model state for one text field and answers the suggestion strip."""

    def __init__(self, bundle, strip_size=STRIP_SIZE, num_threads=1, cache=None, no_repeat=True):
        self.vocab = bundle.vocab
        self.cache, self.no_repeat = cache, no_repeat
        self.manifest = bundle.manifest
        self.options = self.vocab.tokenizer_options
        self.runner = bundle.runner(num_threads)
        self.strip_size = strip_size
        # A model trained on single sentences (message mode) starts each from an empty state.
        self.reset_at_sentence_start = bundle.manifest.get("sentence_context", "reset") == "reset"
        tokens = self.vocab.tokens
        self.suggestible = np.array([i >= len(SPECIAL_TOKENS) and tokenization.is_word(t)
                                     for i, t in enumerate(tokens)])
        keyed = sorted((tokenization.lowercase(t), i) for i, t in enumerate(tokens) if self.suggestible[i])
        self._keys = [k for k, _ in keyed]
        self._key_ids = np.array([i for _, i in keyed], np.int64)
        self.reset()

    # -- text changes -------------------------------------------------------------------

    def reset(self, text="", learn=False):
        """A new text field or a cursor jump: empty state, then primed on ``text``.

        The cache (if any) does not learn the text a field opens with (it learned it when
        it was typed), unless ``learn``: teaching a cache the user's earlier text."""
        self.runner.reset()
        self._primed = 0 if learn else sys.maxsize
        self._fed, self._stack, self._learned = [], [], []
        self.text, self.prefix = "", ""
        self.log_probs = self._scores = None
        self._passed, self._shown, self._word_start = set(), [], 0
        self.set_text(text)
        self._primed = min(self._primed, len(self._fed))  # ids at these positions are never learned

    def set_text(self, text):
        """The text before the cursor changed (typing, backspace, paste): resync the model."""
        if text == self.text and self._fed:
            return
        typed_on = text.startswith(self.text) and len(text) > len(self.text)
        wanted, self.prefix = self._wanted_ids(text)
        self.text = text
        word_start = self._prefix_start()
        if typed_on and word_start == self._word_start:
            self._passed.update(word.lower() for word in self._shown)  # shown, not tapped
        else:
            self._passed = set()
        self._word_start, self._shown = word_start, []  # where the word being typed starts
        common = 0
        for have, want in zip(self._fed, wanted):
            if have != want:
                break
            common += 1
        if common < len(self._fed):
            self._rewind(common, wanted)
        for token_id in wanted[len(self._fed):]:
            self._feed(token_id)

    def type(self, characters):
        self.set_text(self.text + characters)

    def backspace(self):
        self.set_text(self.text[:-1])

    def tap(self, index):
        """Accepts suggestion ``index``: the word replaces the prefix, plus a space."""
        word = self.strip()[index]
        before = self.text[:self._word_start]
        if before and not self.prefix and not tokenization.ends_with_space(before):
            before += " "  # after "Hi." the word needs its own space
        self.set_text(before + word + " ")
        return word

    # -- model steps ----------------------------------------------------------------------

    def _wanted_ids(self, text):
        tokens = tokenization.tokenize(text, self.options)
        prefix = ""
        if tokens and not tokenization.ends_with_space(text) and tokenization.is_word(tokens[-1]):
            prefix = tokens.pop()
        ids = [BOS_ID]
        for token in tokens:
            ids.append(self.vocab.id(token))
            if token in tokenization.SENTENCE_ENDS:
                ids += [EOS_ID, BOS_ID]
        return ids, prefix

    def _feed(self, token_id):
        self._stack.append(self.runner.state_inputs())  # the state before this id
        if len(self._stack) > STACK_LIMIT:
            self._stack[len(self._stack) - STACK_LIMIT - 1] = None  # forget the oldest
        if token_id == BOS_ID and self.reset_at_sentence_start:
            self.runner.reset()
        learn = self.cache is not None and bool(self.suggestible[token_id]) and len(self._fed) >= self._primed
        if learn:
            self.cache.add(self._fed[-1] if self._fed else BOS_ID, token_id)
        self._learned.append(learn)
        self._fed.append(token_id)
        self.log_probs = self.runner.step(token_id)
        self._scores = None

    def _rewind(self, length, wanted):
        """Back to the first ``length`` fed ids; re-steps one id to get its log-probs."""
        if length and self._stack[length - 1] is None:
            length = 0  # beyond the stack: re-prime from the start
        for learned in self._learned[max(length - 1, 0):]:
            if learned:
                self.cache.remove_last()
        if length == 0:
            self.runner.reset()
            self._fed, self._stack, self._learned = [], [], []
            return
        self.runner.states = self._stack[length - 1]
        last = self._fed[length - 1]
        for kept in (self._stack, self._fed, self._learned):
            del kept[length - 1:]
        self._feed(last)

    # -- the strip ------------------------------------------------------------------------

    def _prefix_start(self):
        """Where the word being typed starts in the text (len(text) if none is)."""
        spans = tokenization.token_spans(self.text) if self.prefix else []
        return spans[-1][0] if spans and spans[-1][1] == len(self.text) else len(self.text)

    def _typed_prefix(self):
        """The prefix as the user typed it, if it reads as the prefix token on its own."""
        typed = self.text[self._word_start:]
        return typed if typed and tokenization.tokenize(typed, self.options) == [self.prefix] else ""

    def strip(self):
        """Up to ``strip_size`` distinct words: completions of the prefix, else next words."""
        if self.prefix:
            key = tokenization.lowercase(self.prefix)
            lo = bisect.bisect_left(self._keys, key)
            hi = bisect.bisect_left(self._keys, key + "\U0010ffff")
            candidates = self._key_ids[lo:hi]
        else:
            candidates = np.flatnonzero(self.suggestible)
        if len(candidates) == 0:
            return []
        ranking = self.scores()
        scores = ranking[candidates]
        take = min(len(candidates), self.strip_size * 4 + len(self._passed))  # room for case duplicates
        # Every candidate scoring at least the take-th best, ordered by (score desc, id asc):
        # equal scores (the cache can make them) rank the same on every platform.
        threshold = -np.partition(-scores, take - 1)[take - 1]
        best = candidates[scores >= threshold]
        best = best[np.lexsort((best, -ranking[best]))][:take]
        words, seen = [], set(self._passed)  # passed-over words are never re-offered
        typed = self._typed_prefix()  # once per strip, not per candidate
        for token_id in best:
            word = self._display(self.vocab.tokens[token_id], typed)
            if word.lower() not in seen:
                seen.add(word.lower())
                words.append(word)
            if len(words) == self.strip_size:
                break
        if self.no_repeat:
            self._shown = words
        return words

    def scores(self):
        """What the strip ranks by: the model's log-probs, mixed with the cache if there is one."""
        if self._scores is None:
            self._scores = self.log_probs if self.cache is None else self.cache.mix(self.log_probs, self._fed[-1])
        return self._scores

    @property
    def fed_ids(self):
        """The ids stepped so far (<bos> first), for traces and tests."""
        return list(self._fed)

    def sentence_initial(self):
        return self._fed[-1:] == [BOS_ID]

    def _display(self, token, typed):
        """Keyboard casing: the typed prefix's case kept; sentence starts and "i" capitalised."""
        if typed:
            rest = token[len(tokenization.lowercase(self.prefix)):]
            return typed + (rest.upper() if len(typed) > 1 and typed.isupper() else rest)
        if token == "i" or token.startswith("i'"):
            return "I" + token[1:]
        return token[:1].upper() + token[1:] if self.sentence_initial() else token
