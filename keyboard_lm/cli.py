"""The ``kblm`` command line: a thin shell that parses flags and calls one library function.

TensorFlow is imported lazily, inside the commands that need it.
"""
import argparse
import json
import os
import sys
from pathlib import Path

from data_pipeline.errors import KblmError


def _add_corpus_arguments(parser):
    parser.add_argument("corpus", help="brown, nlp-corpus, or a UTF-8 text file or directory")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="corpus cache (default: $KBLM_CACHE_DIR or ~/.cache/keyboard-lm)")
    parser.add_argument("--paragraphs", action="store_true",
                        help="user text: one message per blank-line-separated paragraph, not per line")
    parser.add_argument("--replace-bad-bytes", action="store_true",
                        help="user text: replace invalid UTF-8 bytes with U+FFFD instead of failing")


def _add_vocabulary_arguments(parser):
    parser.add_argument("--vocab-size", type=int, default=10_000,
                        help="vocabulary cap, special tokens included (default 10000)")
    parser.add_argument("--min-count", type=int, default=1,
                        help="drop tokens seen fewer times in the train split (default 1)")
    parser.add_argument("--bengio", action="store_true",
                        help="Bengio et al. 2003 protocol: case kept, tokens seen <= 3 times in "
                             "the corpus become <unk>, no cap (overrides the two flags above)")
    parser.add_argument("--no-lowercase", action="store_true",
                        help="keep case (the default folds case; the keyboard re-capitalises)")


def _load_corpus(args):
    from data_pipeline.corpora import load_corpus

    return load_corpus(args.corpus, args.cache_dir, args.paragraphs, args.replace_bad_bytes)


def _vocabulary_options(args):
    from data_pipeline.tokenization import TokenizerOptions
    from data_pipeline.vocab import VocabularyOptions

    if args.bengio:
        return VocabularyOptions.bengio(), TokenizerOptions(lowercase=False)
    return (VocabularyOptions(max_size=args.vocab_size, min_count=args.min_count),
            TokenizerOptions(lowercase=not args.no_lowercase))


def cmd_data_fetch(args):
    from data_pipeline.corpora import fetch

    for name in args.corpora:
        print(f"{name}: {fetch(name, args.cache_dir)} (sha256 verified)")


def cmd_data_vocab(args):
    from data_pipeline.vocab import build_vocabulary

    corpus = _load_corpus(args)
    vocab_options, tokenizer_options = _vocabulary_options(args)
    vocab = build_vocabulary(corpus, vocab_options, tokenizer_options)
    vocab.save(args.out)
    coverage = ", ".join(f"{s} {c:.2%}" for s, c in vocab.metadata["coverage"].items())
    print(f"wrote {args.out}/vocab.txt and vocab.json: {len(vocab):,} tokens; coverage {coverage}")


def cmd_data_stats(args):
    from data_pipeline import stats
    from data_pipeline.textio import atomic_write_text
    from data_pipeline.vocab import Vocabulary, build_vocabulary, count_splits

    corpus = _load_corpus(args)
    vocab_options, tokenizer_options = _vocabulary_options(args)
    if args.vocab:
        vocab = Vocabulary.load(args.vocab)
        tokenizer_options = vocab.tokenizer_options
    split_counts = count_splits(corpus, tokenizer_options)
    if not args.vocab:
        vocab = build_vocabulary(corpus, vocab_options, tokenizer_options, split_counts)
    report = stats.corpus_statistics(corpus, split_counts, vocab)
    if not args.no_padding:
        from data_pipeline.dataset import PipelineConfig

        report["padding_ratio"] = stats.padding_ratios(corpus.splits["valid"], vocab, PipelineConfig())
    print(stats.format_report(report))
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.plot:
        stats.plot_lengths(report, args.plot)
        print(f"wrote {args.plot}")


def build_parser():
    parser = argparse.ArgumentParser(prog="kblm", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="corpora, vocabulary, statistics")
    data_commands = data.add_subparsers(dest="data_command", required=True)

    fetch = data_commands.add_parser("fetch", help="fetch and verify corpora into the cache")
    fetch.add_argument("corpora", nargs="+", choices=["brown", "nlp-corpus"], help="corpora to fetch")
    fetch.add_argument("--cache-dir", type=Path, default=None, help="corpus cache directory")
    fetch.set_defaults(func=cmd_data_fetch)

    vocab = data_commands.add_parser("vocab", help="build a vocabulary from a corpus's train split")
    _add_corpus_arguments(vocab)
    _add_vocabulary_arguments(vocab)
    vocab.add_argument("--out", type=Path, required=True, help="directory for vocab.txt and vocab.json")
    vocab.set_defaults(func=cmd_data_vocab)

    stats = data_commands.add_parser("stats", help="print dataset statistics of a corpus")
    _add_corpus_arguments(stats)
    _add_vocabulary_arguments(stats)
    stats.add_argument("--vocab", type=Path, help="use this saved vocabulary instead of building one")
    stats.add_argument("--json", type=Path, help="also write the statistics as JSON here")
    stats.add_argument("--plot", type=Path, help="also write a PNG of the length histograms here")
    stats.add_argument("--no-padding", action="store_true",
                       help="skip the padding-ratio measurement (it builds tf.data batches)")
    stats.set_defaults(func=cmd_data_stats)
    return parser


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter out
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KblmError as e:
        print(f"kblm: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kblm: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
