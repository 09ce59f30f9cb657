"""Dataset statistics: what ``kblm data stats`` prints and saves.

Input: a Corpus, its ``count_splits`` output and a Vocabulary. Output: a JSON-able
dict (messages, tokens, types, length percentiles and histogram, vocabulary coverage
and <unk> rate per split, padding ratio of message-mode batches), a text report
and an optional PNG of the length histograms.
"""
import numpy as np

HISTOGRAM_EDGES = (1, 5, 10, 15, 20, 25, 30, 40, 50, 75, 100, 150, 200)


def length_histogram(lengths):
    """[(label, count)] of tokens per message over HISTOGRAM_EDGES (last bin open)."""
    lengths = np.asarray(lengths)
    edges = list(HISTOGRAM_EDGES) + [max(int(lengths.max(initial=0)) + 1, HISTOGRAM_EDGES[-1] + 1)]
    counts, _ = np.histogram(lengths, bins=[0] + edges)
    labels = ["0"] + [f"{lo}-{hi - 1}" if hi - 1 > lo else f"{lo}" for lo, hi in zip(edges, edges[1:])]
    labels[-1] = f"{HISTOGRAM_EDGES[-1]}+"
    return [(label, int(c)) for label, c in zip(labels, counts)]


def split_statistics(messages, counts, lengths, vocab):
    lengths = np.asarray(lengths)
    tokens = int(lengths.sum())
    return {
        "messages": len(messages),
        "tokens": tokens,
        "types": len(counts),
        "mean_length": round(float(lengths.mean()), 2) if len(lengths) else 0.0,
        "length_percentiles": {f"p{q}": int(np.percentile(lengths, q)) for q in (50, 95, 99)}
        if len(lengths) else {},
        "max_length": int(lengths.max(initial=0)),
        "coverage": round(vocab.coverage(counts), 6),
        "unk_rate": round(1 - vocab.coverage(counts), 6),
        "length_histogram": length_histogram(lengths),
    }


def corpus_statistics(corpus, split_counts, vocab):
    return {
        "corpus": {"name": corpus.name, "source": corpus.source},
        "tokenizer": vocab.metadata["tokenizer"],
        "vocabulary": {"size": len(vocab), "options": vocab.metadata["options"]},
        "splits": {split: split_statistics(corpus.splits[split], *split_counts[split], vocab)
                   for split in corpus.splits},
    }


def padding_ratios(messages, vocab, config, max_batches=300):
    """Padding share of message-mode batches, with and without length bucketing."""
    import dataclasses

    from data_pipeline.dataset import message_dataset, padding_ratio

    return {
        f"bucketed={bucketed}": round(padding_ratio(message_dataset(
            messages, vocab, dataclasses.replace(config, bucket_by_length=bucketed)), max_batches), 4)
        for bucketed in (True, False)
    }


def format_report(stats):
    lines = [f"corpus {stats['corpus']['name']} ({stats['corpus']['source']}), tokenizer spec "
             f"{stats['tokenizer']['spec_version']}, lowercase={stats['tokenizer']['lowercase']}",
             f"vocabulary {stats['vocabulary']['size']:,} types, options {stats['vocabulary']['options']}",
             "",
             f"{'split':<6} {'messages':>9} {'tokens':>10} {'types':>8} {'mean len':>8} "
             f"{'p50':>4} {'p95':>4} {'max':>6} {'coverage':>9} {'<unk>':>7}"]
    for split, s in stats["splits"].items():
        p = s["length_percentiles"]
        lines.append(f"{split:<6} {s['messages']:>9,} {s['tokens']:>10,} {s['types']:>8,} "
                     f"{s['mean_length']:>8} {p.get('p50', 0):>4} {p.get('p95', 0):>4} "
                     f"{s['max_length']:>6} {s['coverage']:>9.2%} {s['unk_rate']:>7.2%}")
    train = stats["splits"]["train"]["length_histogram"]
    top = max(c for _, c in train) or 1
    lines += ["", "tokens per message (train):"]
    lines += [f"  {label:>7} {'#' * round(40 * c / top):<40} {c:,}" for label, c in train]
    if "padding_ratio" in stats:
        lines += ["", f"padding share of message-mode batches: {stats['padding_ratio']}"]
    return "\n".join(lines)


def plot_lengths(stats, path):
    """Writes a PNG of the tokens-per-message histogram of every split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    splits = list(stats["splits"])
    labels = [label for label, _ in stats["splits"]["train"]["length_histogram"]]
    width = 0.8 / len(splits)
    for i, split in enumerate(splits):
        hist = stats["splits"][split]["length_histogram"]
        total = sum(c for _, c in hist) or 1
        ax.bar(np.arange(len(hist)) + i * width, [c / total for _, c in hist], width, label=split)
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels, rotation=45)
    ax.set_xlabel("tokens per message")
    ax.set_ylabel("share of messages")
    ax.set_title(f"{stats['corpus']['name']}: message lengths")
    ax.legend()
    fig.tight_layout()
    from data_pipeline.textio import atomic_write_bytes
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
