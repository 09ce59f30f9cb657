"""``kblm personalize``: fine-tune a base run on one person's text, or on many people's.

Input: a base run (``kblm train``), a user's text (file or directory, one message per
line). Output: a run directory ``kblm export`` and ``kblm evaluate`` accept, plus
``report.json`` (written last: its presence marks the user as done):

    runs/NAME-USER/
      config.json     the base's config + a "personalization" section (options, user text)
      vocab/          the base vocabulary, unchanged (unseen words stay <unk>)
      best.keras      the epoch that did best on the user's held-out slice (the base if nothing
                      beat it), after the final pass
      best.json, logs/train.csv, metrics.json
      bundle/         the exported bundle (unless --quantize none)
      report.json     before -> after on the user's held-out text (or --eval-texts) and on
                      general text, keystroke savings through the harness, time and peak memory

How: the last ``holdout`` share of the user's messages is held out for early stopping;
the rest is fine-tuned on in message mode (each sentence from <bos>, as the keyboard
starts a text field) with a small learning rate, optionally freezing layers, and with
an L2 penalty ``anchor * sum((w - w_base)^2)`` pulling the weights back toward the
base so general ability is not forgotten. Once the held-out slice has chosen the epoch,
one more epoch runs over all the user's text, held-out slice included (``final_pass``): it
is the user's latest text, and the sweep on dev slices found a small gain. (It is skipped
when the base was kept or the time budget is spent.) The held-out slice is then no longer
unseen, so without ``eval_texts`` the report's user figures (and the KSR replay, through a
bundle exported for it) describe the chosen epoch before the pass: the shipped model
learned a little more. Everything is written to a temp directory and renamed at the end:
a failure leaves neither a half-written run nor a changed base.

Many users: a directory with one file or subdirectory per user; users run in parallel
processes, users already done are skipped (the batch resumes), and one user's bad data
is reported in the summary without stopping the others.

The parts, each importing only those before it:

    options.py    PersonalizeOptions, the limits, the checks of the user's text
    guard.py      the forgetting guard: what ships when the general loss rose over the limit
    fine_tune.py  the fine-tune: freezing, the pull toward the base, early stopping on the
                  held-out slice, the final pass (both through keyboard_lm.training.loop),
                  then the guard
    report.py     keystroke savings through the harness; the report's and summary's text
    single.py     ``personalize``: one user, from text to run directory, bundle and report
    many.py       ``personalize_many``: the users directory, the process pool, resuming

Kept free of imports beyond plain Python and data_pipeline's TF-free modules: TensorFlow
starts only when a fine-tune does.
"""
from keyboard_lm.personalize.fine_tune import set_threads
from keyboard_lm.personalize.many import finished, personalize_many, user_sources
from keyboard_lm.personalize.options import (FREEZE, MIN_KNOWN, MIN_WORDS, WARN_UNKNOWN, PersonalizeOptions,
                                             check_user_text, count_words, split_user_text,
                                             unknown_words_warnings)
from keyboard_lm.personalize.report import format_report, format_summary
from keyboard_lm.personalize.single import personalize

__all__ = ["FREEZE", "MIN_KNOWN", "MIN_WORDS", "WARN_UNKNOWN", "PersonalizeOptions", "check_user_text",
           "count_words", "finished", "format_report", "format_summary", "personalize", "personalize_many",
           "set_threads", "split_user_text", "unknown_words_warnings", "user_sources"]
