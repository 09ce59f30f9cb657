"""The personal cache: the user's recent words and word pairs, mixed into the model's
distribution. numpy only (it runs on the phone with the engine).

    p(w | prev) = (1 - weight) * p_model(w | context) + weight * p_cache(w | prev)
    p_cache(w | prev) = (c(prev, w) + smoothing * c(w) / n) / (c(prev, ·) + smoothing)

c counts the last ``capacity`` words the user committed (vocabulary words only; ``prev`` is
the token stepped just before, which may be <bos> or punctuation), n is how many there are.
p_cache is a bigram estimate backed off to the unigram one; it sums to 1 over the
vocabulary. The cache is an undo log: the engine removes what it learned when the user
backspaces into a committed word, so only text that stays is learned.
Saved as JSON (the (prev, word) pairs, oldest first), so it can persist between sessions.
"""
import collections
import json

import numpy as np

from data_pipeline.errors import KblmError
from data_pipeline.textio import atomic_write_text

FORMAT_VERSION = 1
DEFAULT_CAPACITY = 5000
DEFAULT_SMOOTHING = 1.0


class PersonalCache:
    def __init__(self, vocab_size, weight, capacity=DEFAULT_CAPACITY, smoothing=DEFAULT_SMOOTHING):
        if not 0.0 <= weight < 1.0:
            raise KblmError(f"cache weight must be in [0, 1), got {weight}")
        if capacity < 1:
            raise KblmError(f"cache capacity must be at least 1, got {capacity}")
        if not smoothing > 0:
            raise KblmError(f"cache smoothing must be positive, got {smoothing}")
        self.vocab_size, self.weight = vocab_size, float(weight)
        self.capacity, self.smoothing = int(capacity), float(smoothing)
        self._pairs = collections.deque()
        self._evicted = collections.deque(maxlen=self.capacity)  # per add: the pair it pushed out, or None
        self._unigram = np.zeros(vocab_size)
        self._bigram = collections.defaultdict(collections.Counter)  # prev -> Counter(word)

    def __len__(self):
        return len(self._pairs)

    def add(self, prev, word):
        self._pairs.append((prev, word))
        self._count(prev, word, 1)
        evicted = None
        if len(self._pairs) > self.capacity:
            evicted = self._pairs.popleft()
            self._count(*evicted, -1)
        self._evicted.append(evicted)

    def remove_last(self):
        """Undoes the latest ``add`` (the user deleted that word), bringing back the pair
        that add pushed out; a no-op when empty."""
        if self._pairs:
            self._count(*self._pairs.pop(), -1)
            evicted = self._evicted.pop() if self._evicted else None
            if evicted is not None:
                self._pairs.appendleft(evicted)
                self._count(*evicted, 1)

    def _count(self, prev, word, delta):
        self._unigram[word] += delta
        counter = self._bigram[prev]
        counter[word] += delta
        if counter[word] == 0:
            del counter[word]
            if not counter:
                del self._bigram[prev]

    def mix(self, log_probs, prev):
        """log p(w | prev) of the mixture, for every vocabulary id (float64)."""
        log_probs = np.asarray(log_probs, np.float64)
        if not self._pairs or self.weight == 0.0:
            return log_probs
        cache = self._unigram * (self.smoothing / len(self._pairs))
        following = self._bigram.get(prev)
        total = 0
        if following:
            for word, count in following.items():
                cache[word] += count
                total += count
        cache /= total + self.smoothing
        with np.errstate(divide="ignore"):
            return np.log((1.0 - self.weight) * np.exp(log_probs) + self.weight * cache)

    # -- persistence ----------------------------------------------------------------------

    def to_json(self):
        return {"format_version": FORMAT_VERSION, "vocab_size": self.vocab_size, "weight": self.weight,
                "capacity": self.capacity, "smoothing": self.smoothing, "pairs": [list(p) for p in self._pairs]}

    def save(self, path):
        atomic_write_text(path, json.dumps(self.to_json()) + "\n")

    @classmethod
    def load(cls, path, vocab_size, weight=None):
        """Reads a saved cache; checks it was made for a vocabulary of ``vocab_size`` ids."""
        try:
            data = json.loads(open(path, encoding="utf-8").read())
        except (OSError, ValueError) as error:
            raise KblmError(f"{path}: not a readable personal cache ({error})") from None
        if data.get("format_version") != FORMAT_VERSION:
            raise KblmError(f"{path}: field format_version: expected {FORMAT_VERSION}, "
                            f"got {data.get('format_version')!r}")
        if data.get("vocab_size") != vocab_size:
            raise KblmError(f"{path}: field vocab_size: the cache was made for {data.get('vocab_size')} ids, "
                            f"the bundle has {vocab_size}")
        cache = cls(vocab_size, data["weight"] if weight is None else weight, data["capacity"], data["smoothing"])
        for index, pair in enumerate(data["pairs"]):
            if (len(pair) != 2 or not all(isinstance(i, int) and 0 <= i < vocab_size for i in pair)):
                raise KblmError(f"{path}: field pairs[{index}]: expected two ids below {vocab_size}, got {pair!r}")
            cache.add(*pair)
        return cache
