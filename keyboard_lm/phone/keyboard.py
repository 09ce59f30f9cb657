"""The keyboard engine: the phone's loop, keystroke by keystroke. numpy + ai_edge_litert only.

Input: a verified bundle (``keyboard_lm.phone.bundle.load_bundle``) and the text before the cursor,
changed one keystroke at a time. Output: the suggestion strip (as many words as the bundle's
manifest says, 3 by default). The Android app's ``core/`` ports this class line for line;
golden traces hold the two to the same strips.

The rules are written once, in docs/engine.md, which both ports cite by section:

- §2 the fed ids are a function of the text: <bos> + the ids of every finished token, with
  <eos> <bos> after each sentence end, as training framed sentences;
- §3-§5 the strip: next words, or completions of the typed prefix, ranked by score (ties: lower
  id first), in keyboard casing; §6 a word passed over is not offered again for that word;
  §7 a tap commits the word plus a space;
- §8 a keystroke keeps the longest common prefix of the fed ids and rewinds the rest from a
  bounded stack of states; §9 the engine reads the last CONTEXT_CHARS characters and
  re-tokenizes only from the last whitespace checkpoint (the proof that this is exact is there);
- §10 resets prime a field (the opening text is not learned), a cursor jump resets on the
  same text; §11 a private field is only followed; §12 the personal cache mixes into the
  ranking and learns committed words, forgetting them on backspace;
- §16 the bundle's lexicon and the user's words share the model's <unk> probability, so
  words outside the vocabulary are offered too; §17 the user's words are learned after N
  commits (a bundle without a lexicon and an engine without user words behave as before).
"""
import bisect
import dataclasses
import re
import sys

import numpy as np

from data_pipeline import tokenization
from data_pipeline.vocab import BOS_ID, EOS_ID, SPECIAL_TOKENS, UNK_ID
from keyboard_lm.phone.lexicon import lowercase_text

STACK_LIMIT = 256  # states kept for rewinding; deeper rewinds re-prime on the window (docs/engine.md §8)
CONTEXT_CHARS = 2000  # characters before the cursor the engine reads (§9; KeyboardEngine.java's CONTEXT_CHARS too; the app's controller reads by it)
USER_SHARE = 0.5  # the share of the <unk> mass the user's words take when there is a lexicon too (§16)
_SPACES = re.compile(tokenization.whitespace_class(lambda cp: f"\\U{cp:08X}") + "+")


def reachable_token(token, shown):
    """True if the strip could ever show the word token ``token``, given ``shown(token)``: which
    single words it can show. The token itself, or a compound whose parts between ``-`` all
    are (§4.1: each part completes in its turn)."""
    if shown(token):
        return True
    parts = token.split("-")
    return len(parts) > 1 and all(part and shown(part) for part in parts)


def common_prefix_length(a, b):
    """len of the longest common prefix of two strs, by C-level compares (O(n), no loop per char)."""
    if b.startswith(a):
        return len(a)
    if a.startswith(b):
        return len(b)
    lo, hi = 0, min(len(a), len(b))  # a[:lo] == b[:lo] and a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a.startswith(b[lo:mid], lo):
            lo = mid
        else:
            hi = mid
    return lo


def chunks(text, start, options):
    """Tokens of ``text[start:]`` cut after each whitespace run: ([(end, tokens)], rest tokens) (§9)."""
    pieces, begin = [], start
    for space in _SPACES.finditer(text, start):
        pieces.append((space.end(), tokenization.tokenize(text[begin:space.end()], options)))
        begin = space.end()
    return pieces, tokenization.tokenize(text[begin:], options) if begin < len(text) else []


class KeyboardEngine:
    """Holds the model state for one text field and answers the suggestion strip.

    ``strip_size``: words on the strip; None (the default) takes the bundle's (its manifest's
    engine.strip_size, 3 if absent: docs/engine.md §3)."""

    def __init__(self, bundle, strip_size=None, num_threads=1, cache=None, no_repeat=True, user_words=None):
        self.vocab = bundle.vocab
        self.cache, self.no_repeat = cache, no_repeat
        self.lexicon = getattr(bundle, "lexicon", None)  # words outside the vocabulary (§16)
        self.user_words = user_words  # words the user teaches it (§17)
        self.manifest = bundle.manifest
        self.options = self.vocab.tokenizer_options
        self._cased = dataclasses.replace(self.options, lowercase=False)  # a committed word's typed case (§17)
        self.runner = bundle.runner(num_threads)
        self.strip_size = bundle.strip_size if strip_size is None else strip_size
        # A model trained on single sentences (message mode) starts each from an empty state (§2).
        self.reset_at_sentence_start = bundle.manifest.get("sentence_context", "reset") == "reset"
        tokens = self.vocab.tokens  # suggestible: vocabulary words, no specials or punctuation (§3)
        heads = [token[:1] for token in tokens]  # is_word reads a token's first character only
        word_heads = {head for head in set(heads) if tokenization.is_word(head)}
        self.suggestible = np.array([head in word_heads for head in heads], bool)
        self.suggestible[:len(SPECIAL_TOKENS)] = False
        ids = np.flatnonzero(self.suggestible).tolist()
        lowered = lowercase_text("\n".join([tokens[i] for i in ids])).split("\n") if ids else []  # 1:1, per character
        order = sorted(range(len(ids)), key=lowered.__getitem__)  # by key, then id (a stable sort)
        self._keys = [lowered[j] for j in order]
        self._key_ids = np.array([ids[j] for j in order], np.int64)
        self.reset()

    # -- text changes -------------------------------------------------------------------

    def reset(self, text="", learn=False, private=False):
        """A new text field or a cursor jump: empty state, then primed on ``text`` (§10).

        The cache (if any) does not learn the text a field opens with (it learned it when
        it was typed), unless ``learn``: teaching a cache the user's earlier text.
        ``private``: a password field, or one that asks for no suggestions or no learning
        (the app's ``InputTypes.isPrivate``): until the next reset the engine only follows
        the text; no model step, an empty strip, nothing learned or cached."""
        self.private = private
        self.runner.reset()
        self._primed = 0 if learn else sys.maxsize
        self._primed_end = 0 if learn else sys.maxsize  # where the opening text ends (for a re-prime)
        self._fed, self._stack, self._learned = [], [], []
        self._words, self._taught, self._tail_words = [], [], []  # per fed id: its word if <unk>; user words taught
        self.text, self.prefix = "", ""
        self._base, self._marks = 0, [(0, 1)]  # checkpoints (position, ids before it), ascending
        self.log_probs = self._scores = None
        self._passed, self._shown, self._word_start = set(), [], 0
        if private:
            self.text = text
            return
        self._feed(BOS_ID)
        self.set_text(text)
        self._primed = min(self._primed, len(self._fed))  # ids at these positions are never learned
        self._primed_end = min(self._primed_end, len(text))

    def set_text(self, text):
        """The text before the cursor changed (typing, backspace, paste): resync the model (§8)."""
        if self.private:
            self.text = text
            return
        if text == self.text and self._fed:
            return
        typed_on = text.startswith(self.text) and len(text) > len(self.text)
        kept, tail = self._retokenize(text)  # the wanted ids are self._fed[:kept] + tail
        tail_words = self._tail_words  # the word of each <unk> in tail (with user words, §17)
        self.text = text
        word_start = self._prefix_start()
        if typed_on and word_start == self._word_start:  # no-repeat (§6)
            self._passed.update(word.lower() for word in self._shown)  # shown, not tapped
        else:
            self._passed = set()
        self._word_start, self._shown = word_start, []  # where the word being typed starts
        common = kept
        for have, want in zip(self._fed[kept:], tail):
            if have != want:
                break
            if have == UNK_ID and self.user_words is not None and \
                    self._words[common] != tail_words[common - kept]:  # another unknown word (§17)
                break
            common += 1
        if common < len(self._fed):
            if common and self._stack[common - 1] is None:  # deeper than the stack: re-prime (§9)
                kept, tail = self._window(text)
                tail_words = self._tail_words
                common = 0
            self._rewind(common)
        start = len(self._fed) - kept
        for token_id, word in zip(tail[start:], tail_words[start:]):
            self._feed(token_id, word)

    def type(self, characters):
        self.set_text(self.text + characters)

    def backspace(self):
        self.set_text(self.text[:-1])

    def tap(self, index):
        """Accepts suggestion ``index``: the word replaces the prefix, plus a space (§7)."""
        word = self.strip()[index]
        before = self.text[:self._word_start]
        if before and not self.prefix and not tokenization.ends_with_space(before):
            before += " "  # after "Hi." the word needs its own space
        self.set_text(before + word + " ")
        return word

    # -- model steps ----------------------------------------------------------------------

    def _retokenize(self, text):
        """(kept, tail): the new text's fed ids are ``self._fed[:kept] + tail``. Tokenizes
        from the last checkpoint before the change; sets the prefix and the checkpoints (§9)."""
        diverge = common_prefix_length(self.text, text)
        last = bisect.bisect_right(self._marks, (diverge, sys.maxsize))  # checkpoints still valid
        if last == 0 or self._marks[last - 1][0] < len(text) - CONTEXT_CHARS:
            return self._window(text)  # an edit before the window, or too much new text
        del self._marks[last:]
        return self._marks[-1][1], self._extend(*chunks(text, self._marks[-1][0], self.options), text)

    def _window(self, text):
        """Starts the fed ids afresh at the window's base (§9); returns (0, all the ids)."""
        base = 0
        if len(text) > CONTEXT_CHARS:
            space = _SPACES.search(text, len(text) - CONTEXT_CHARS - 1)
            base = space.end() if space else len(text) - CONTEXT_CHARS
        pieces, rest = chunks(text, base, self.options)
        for i, (end, tokens) in enumerate(pieces if base else []):  # prefer a sentence start
            if tokens and tokens[-1] in tokenization.SENTENCE_ENDS:
                base, pieces = end, pieces[i + 1:]
                break
        moved, self._base, self._marks = base != self._base, base, [(base, 1)]
        ids = [BOS_ID] + self._extend(pieces, rest, text)
        self._tail_words = [None] + self._tail_words
        if moved and 0 < self._primed_end < sys.maxsize:  # the opening text's ids, in the new window (§10)
            self._primed = self._marks[bisect.bisect_right(self._marks, (self._primed_end, sys.maxsize)) - 1][1] \
                if self._primed_end >= base else 0
        return 0, ids

    def _extend(self, pieces, rest, text):
        """Ids of the tokens after the last checkpoint, adding one after each piece; sets the prefix (§2).
        Sets ``_tail_words``: per id, the word as typed if it is <unk> (with user words, §17), else None."""
        ids, words, before = [], [], self._marks[-1][1]
        begin = self._marks[-1][0]
        for end, tokens in pieces:
            self._ids(tokens, ids, words, text, begin, end)
            self._marks.append((end, before + len(ids)))
            begin = end
        self.prefix = rest.pop() if rest and tokenization.is_word(rest[-1]) else ""
        self._ids(rest, ids, words, text, begin, None)
        self._tail_words = words
        return ids

    def _ids(self, tokens, ids, words, text, begin, end):
        start = len(ids)
        for token in tokens:
            ids.append(self.vocab.id(token))
            words.append(None)
            if token in tokenization.SENTENCE_ENDS:  # a sentence end (§2)
                ids += [EOS_ID, BOS_ID]
                words += [None, None]
        if self.user_words is not None and UNK_ID in ids[start:]:  # the words as typed, in their case
            cased = tokenization.tokenize(text[begin:end], self._cased)[:len(tokens)]
            if len(cased) < len(tokens):
                cased = tokens
            position = start
            for token, typed in zip(tokens, cased):
                if ids[position] == UNK_ID:
                    words[position] = typed if tokenization.lowercase(typed) == tokenization.lowercase(token) \
                        else token
                position += 3 if token in tokenization.SENTENCE_ENDS else 1

    def _feed(self, token_id, word=None):
        self._stack.append(self.runner.state_inputs())  # the state before this id
        if len(self._stack) > STACK_LIMIT:
            self._stack[len(self._stack) - STACK_LIMIT - 1] = None  # forget the oldest
        if token_id == BOS_ID and self.reset_at_sentence_start:  # sentence_context "reset" (§2)
            self.runner.reset()
        # the cache learns a committed vocabulary word, unless the field opened with it (§12)
        learn = self.cache is not None and bool(self.suggestible[token_id]) and len(self._fed) >= self._primed
        if learn:
            self.cache.add(self._fed[-1] if self._fed else BOS_ID, token_id)
        self._learned.append(learn)
        taught = False  # an unknown word, outside the lexicon too, counts towards learning it (§17)
        if word is not None and len(self._fed) >= self._primed and \
                (self.lexicon is None or tokenization.lowercase(word) not in self.lexicon):
            taught = self.user_words.commit(self.vocab.tokens[self._fed[-1]] if self._fed else "<bos>", word)
        self._taught.append(taught)
        self._words.append(word)
        self._fed.append(token_id)
        self.log_probs = self.runner.step(token_id)
        self._scores = None

    def _rewind(self, length):
        """Back to the first ``length`` fed ids; re-steps one id to get its log-probs (§8);
        the cache forgets what the dropped ids taught it (§12)."""
        for learned in self._learned[max(length - 1, 0):]:
            if learned:
                self.cache.remove_last()
        for taught in self._taught[max(length - 1, 0):]:
            if taught:
                self.user_words.undo()
        if length == 0:
            self.runner.reset()
            self._fed, self._stack, self._learned, self._words, self._taught = [], [], [], [], []
            return
        self.runner.states = self._stack[length - 1]
        last, word = self._fed[length - 1], self._words[length - 1]
        for kept in (self._stack, self._fed, self._learned, self._words, self._taught):
            del kept[length - 1:]
        self._feed(last, word)

    # -- the strip ------------------------------------------------------------------------

    def _prefix_start(self):
        """Where the word being typed starts in the text (len(text) if none is)."""
        start = self._marks[-1][0]  # the prefix lies after the last checkpoint
        spans = tokenization.token_spans(self.text[start:]) if self.prefix else []
        return start + spans[-1][0] if spans and start + spans[-1][1] == len(self.text) else len(self.text)

    def _typed_prefix(self):
        """The prefix as the user typed it, if it reads as the prefix token on its own."""
        typed = self.text[self._word_start:]
        return typed if typed and tokenization.tokenize(typed, self.options) == [self.prefix] else ""

    def strip(self):
        """Up to ``strip_size`` distinct words: completions of the prefix (§4), else next words
        (§3); a hyphenated prefix's remaining slots take compounds (§4.1)."""
        if self.private:
            return []
        key = tokenization.lowercase(self.prefix) if self.prefix else None
        room = self.strip_size * 4 + len(self._passed)  # room for case duplicates
        words, seen = [], set(self._passed)  # passed-over words are never re-offered
        typed = self._typed_prefix()  # once per strip, not per candidate
        self._fill(words, seen, key, room, self.prefix, typed, "")
        if len(words) < self.strip_size:
            compound = self._compound(typed)
            if compound is not None:
                head, tail, tail_typed = compound
                shout = len(typed) > 1 and typed.isupper()  # all capitals typed: the compound too (§4.1)
                self._fill(words, seen, tokenization.lowercase(tail), room, tail, tail_typed, head, shout)
        if self.no_repeat:
            self._shown = words
        return words

    def _fill(self, words, seen, key, room, prefix, typed, head, shout=False):
        """Adds to ``words`` (up to the strip size) the best candidates completing ``key`` (None:
        next words), ranked by §3/§16, each ``head`` + its displayed form (§5, §16) for the
        prefix token ``prefix`` typed as ``typed`` (upper-cased if ``shout``), unless its
        lowercase is in ``seen``."""
        if key is not None:
            lo = bisect.bisect_left(self._keys, key)
            hi = bisect.bisect_left(self._keys, key + "\U0010ffff")
            candidates = self._key_ids[lo:hi]
        else:
            candidates = np.flatnonzero(self.suggestible)
        extra_ids, extra_scores, extra_words = self._extra_candidates(key, room)
        if len(candidates) == 0 and len(extra_ids) == 0:
            return
        ranking = self.scores()
        if len(candidates):
            scores = ranking[candidates]
            take = min(len(candidates), room)
            # Every candidate scoring at least the take-th best, ordered by (score desc, id asc):
            # equal scores (the cache can make them) rank the same on every platform.
            threshold = -np.partition(-scores, take - 1)[take - 1]
            best = candidates[scores >= threshold]
            best = best[np.lexsort((best, -ranking[best]))][:take]
        else:
            best = candidates
        if len(extra_ids):  # words outside the vocabulary join the ranking (§16)
            ids = np.concatenate([best, extra_ids])
            order = np.lexsort((ids, -np.concatenate([ranking[best].astype(np.float64), extra_scores])))[:room]
            best = ids[order]
        vocabulary_size = len(self.vocab)
        for token_id in best:
            if len(words) == self.strip_size:
                break
            if token_id < vocabulary_size:
                word = head + self._display(self.vocab.tokens[token_id], typed, prefix)
            else:
                word = head + self._display_extra(extra_words[token_id], typed, prefix)
            if shout:
                word = word.upper()
            if word.lower() not in seen:
                seen.add(word.lower())
                words.append(word)

    def _compound(self, typed):
        """(head, tail, typed tail) of a typed hyphenated prefix (§4.1): ``head`` the typed text
        up to and including its last hyphen, ``tail`` the prefix token's part after its last
        ``-``, typed as the rest; None unless that rest is non-empty and reads as ``tail``."""
        cut = max(typed.rfind("-"), typed.rfind("\u2010"))
        if cut < 0 or "-" not in self.prefix:
            return None
        tail, tail_typed = self.prefix[self.prefix.rfind("-") + 1:], typed[cut + 1:]
        if not tail_typed or tokenization.tokenize(tail_typed, self.options) != [tail]:
            return None
        return typed[:cut + 1], tail, tail_typed

    def _extra_candidates(self, key, room):
        """(ids, scores, {id: word}) of the best ``room`` lexicon and user words completing
        ``key`` (None: next words), by §16's rule; ids from len(vocab) on: the lexicon's in
        count order, then the user's in key order. Empty without a lexicon or user words."""
        lexicon, user = self.lexicon, self.user_words
        users = len(user) if user is not None else 0
        if lexicon is None and not users:
            return np.zeros(0, np.int64), np.zeros(0), {}
        unk = float(self.scores()[UNK_ID])
        lexicon_share = 1.0 if not users else (1.0 - USER_SHARE if lexicon is not None and lexicon.total else 0.0)
        first = len(self.vocab)
        ids, scores, words = [], [], {}
        if lexicon is not None and lexicon.total and lexicon_share:
            if key is None:  # next words: the most frequent
                chosen = lexicon.by_count[:room]
            else:
                lo, hi = lexicon.range(key)
                ranks = lexicon.rank[lo:hi]
                chosen = lo + (np.argpartition(ranks, room - 1)[:room] if hi - lo > room else np.arange(hi - lo))
            ids.append(first + lexicon.rank[chosen])
            with np.errstate(divide="ignore"):
                scores.append(unk + np.log(lexicon_share * lexicon.counts[chosen] / lexicon.total))
            words.update(zip((first + lexicon.rank[chosen]).tolist(), lexicon.words_at(chosen)))
        if users:
            lo, hi = user.range(key) if key is not None else (0, users)
            if hi > lo:
                share = 1.0 - lexicon_share
                probabilities = user.probabilities(self.vocab.tokens[self._fed[-1]], lo, hi)
                offset = first + (len(lexicon) if lexicon is not None else 0)
                ids.append(offset + np.arange(lo, hi))
                scores.append(unk + np.log(share * probabilities))
                forms = user.index()[1]
                words.update((offset + i, forms[i]) for i in range(lo, hi))
        if not ids:
            return np.zeros(0, np.int64), np.zeros(0), {}
        return np.concatenate(ids).astype(np.int64), np.concatenate(scores), words

    def reachable(self, word):
        """True if the strip could ever show ``word`` (one token: a suggestible vocabulary
        word, a lexicon word or a learned user word, or a compound of such words joined by
        ``-``, §4.1), for ``kblm simulate``'s reachable words."""
        tokens = tokenization.tokenize(word, self.options)
        return len(tokens) == 1 and reachable_token(tokens[0], self._reachable_word)

    def _reachable_word(self, token):
        token_id = self.vocab.id(token)
        if token_id != UNK_ID:
            return bool(self.suggestible[token_id])
        key = tokenization.lowercase(token)
        return (self.lexicon is not None and key in self.lexicon) or \
            (self.user_words is not None and self.user_words.learned(key))

    def scores(self):
        """What the strip ranks by: the model's log-probs, mixed with the cache if there is one (§12)."""
        if self._scores is None:
            self._scores = self.log_probs if self.cache is None else self.cache.mix(self.log_probs, self._fed[-1])
        return self._scores

    @property
    def fed_ids(self):
        """The ids stepped so far (<bos> first), for traces and tests."""
        return list(self._fed)

    def sentence_initial(self):
        return self._fed[-1:] == [BOS_ID]

    def _display_extra(self, word, typed, prefix):
        """A lexicon or user word's shown form (§16): a word written with capitals where the
        prefix is typed keeps its own form; otherwise the typed prefix keeps its case, as §5."""
        if typed:
            if len(typed) > 1 and typed.isupper():
                return word.upper()
            head = word[:len(prefix)]
            return typed + word[len(prefix):] if head == head.lower() else word
        return word[:1].upper() + word[1:] if self.sentence_initial() else word

    def _display(self, token, typed, prefix):
        """Keyboard casing: the typed prefix's case kept; sentence starts and "i" capitalised (§5)."""
        if typed:
            rest = token[len(tokenization.lowercase(prefix)):]
            return typed + (rest.upper() if len(typed) > 1 and typed.isupper() else rest)
        if token == "i" or token.startswith("i'"):
            return "I" + token[1:]
        return token[:1].upper() + token[1:] if self.sentence_initial() else token
