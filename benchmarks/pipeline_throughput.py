"""Input-pipeline throughput (tokens/s) on Brown train, message and stream modes.

Run: ``python benchmarks/pipeline_throughput.py``. Writes
benchmarks/results/pipeline_throughput.{json,md} and compares with the training
throughput measured by benchmarks/train_throughput.py (if its results exist): the
pipeline must feed at least 20x what training consumes.
"""
import dataclasses
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import RESULTS, write_results  # noqa: E402

REPEATS = 3


def tokens_per_second(make, repeats=REPEATS):
    """(first pass, median of later passes) tokens/s over full passes of the dataset."""
    dataset = make()
    rates = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        tokens = sum(float(weights.numpy().sum()) for _, _, weights in dataset)
        rates.append(tokens / (time.perf_counter() - start))
    return rates[0], statistics.median(rates[1:]), tokens


def main():
    from data_pipeline.corpora import load_corpus
    from data_pipeline.dataset import PipelineConfig, make_dataset
    from data_pipeline.vocab import build_vocabulary

    corpus = load_corpus("brown")
    vocab = build_vocabulary(corpus, progress=False)
    train = corpus.splits["train"]
    message = PipelineConfig(batch_size=32, sequence_length=35)
    configs = [
        ("message, bucketed", message),
        ("message, padded to 36", dataclasses.replace(message, bucket_by_length=False)),
        ("stream 20x35", PipelineConfig(mode="stream", batch_size=20, sequence_length=35)),
    ]
    consumed = training_consumption()
    rows = []
    for name, config in configs:
        first, cached, tokens = tokens_per_second(lambda: make_dataset(train, vocab, config, training=True))
        need = consumed.get(config.mode)
        rows.append({"pipeline": name, "tokens": int(tokens), "first_pass": first, "cached": cached,
                     "training_consumes": need or "",
                     "headroom": f"{first / need:.0f}x / {cached / need:.0f}x" if need else ""})
        print(rows[-1], flush=True)
    table = write_results("pipeline_throughput", rows, [
        ("pipeline", "pipeline"), ("tokens", "real tokens/epoch"),
        ("first_pass", "first pass tokens/s (tokenizes)"), ("cached", "later passes tokens/s"),
        ("training_consumes", "training consumes tokens/s"), ("headroom", "headroom (first / later)")],
        {"training_source": "benchmarks/results/train_throughput.json"})
    print(table)


REFERENCE_TRAINING = {"message": "mobile", "stream": "pytorch-peer"}  # real models, not the toy
COMMAND_SIDE = "kblm train (steady)"  # train_throughput's row for what the command consumes


def training_consumption():
    """Measured training rate per data mode: the mobile preset (message), the peer model (stream)."""
    path = RESULTS / "train_throughput.json"
    if not path.exists():
        return {}
    rows = {row["config"]: row for row in json.loads(path.read_text())["rows"]
            if row.get("side", COMMAND_SIDE) == COMMAND_SIDE}  # the command's loop, not the bare step
    return {mode: rows[name]["tokens_per_second"] for mode, name in REFERENCE_TRAINING.items() if name in rows}


if __name__ == "__main__":
    main()
