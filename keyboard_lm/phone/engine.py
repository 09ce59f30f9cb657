"""Opening an engine: a bundle, an optional personal cache, and the user's earlier text.

What ``kblm suggest / type / simulate / trace``, personalization's keystroke savings and the
benchmarks all do before the first keystroke, written once. TensorFlow-free.
"""
from keyboard_lm.phone.bundle import Bundle, load_bundle
from keyboard_lm.phone.keyboard import KeyboardEngine
from keyboard_lm.phone.personal_cache import PersonalCache
from keyboard_lm.phone.user_words import UserWords, load_or_start, words_path


def open_engine(bundle, cache_weight=None, cache_file=None, prime=None, num_threads=1, no_repeat=True,
                learn_words=False, warn=None, adapter=None):
    """A KeyboardEngine on ``bundle`` (a path, loaded and verified here, or a loaded Bundle),
    its strip as long as the bundle's manifest says (docs/engine.md §3).

    A personal cache if asked: ``cache_file`` a saved one to start from (``cache_weight``
    None: its own weight), else ``cache_weight`` a fresh one. ``prime``: messages the cache
    learns first, each as if typed in its own field (read lazily, after the bundle loaded);
    the engine then opens on an empty field.

    ``learn_words``: with a cache, the user's words are learned too (docs/engine.md §17),
    read from beside ``cache_file`` (``user_words.words_path``); a corrupt file is kept
    aside and the engine starts with none, said once through ``warn``.

    ``adapter``: a .kbad file trained for this bundle (docs/engine.md §18), added to every
    step. One that fails a check is refused, said once through ``warn`` (raised without
    it), and the engine runs on the base model."""
    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle)
    if adapter is not None:
        from data_pipeline.errors import KblmError
        from keyboard_lm.phone.adapter import load_adapter

        try:
            bundle.adapter = load_adapter(adapter, bundle)[0]
        except KblmError as e:
            if warn is None:
                raise
            warn(f"{e}; running the base model")
            bundle.adapter = None
    cache = None
    if cache_file:
        cache = PersonalCache.load(cache_file, len(bundle.vocab), cache_weight)
    elif cache_weight:
        cache = PersonalCache(len(bundle.vocab), cache_weight)
    words = None
    if learn_words and cache is not None:
        words = load_or_start(words_path(cache_file), warn=warn) if cache_file else UserWords()
    engine = KeyboardEngine(bundle, num_threads=num_threads, cache=cache, no_repeat=no_repeat, user_words=words)
    if prime is not None:
        for message in prime:  # learned as if typed (each message its own field)
            engine.reset(message + " ", learn=True)
        engine.reset()
    return engine
