"""Training throughput (tokens/s) on Brown train, per configuration, median of several runs.

Run: ``python benchmarks/train_throughput.py [--quick]``. Writes
benchmarks/results/train_throughput.{json,md}.

Configurations:
- ``pytorch-peer``: the PyTorch word_language_model defaults (2x200 LSTM, untied, batch
  20x35 stream, SGD lr 20, clip 0.25) on the Bengio vocabulary, measured with the toolkit's
  settings variants (plain, XLA, bfloat16 compute, thread settings). Peer figure measured
  on this CPU: PyTorch 2.13 = 4.4k tokens/s; plain Keras fit = 4.0k tokens/s.
- ``tiny`` / ``mobile`` / ``server`` presets in their own batch layout.
"""
import argparse
import dataclasses
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import median_rate, write_results  # noqa: E402

PYTORCH_PEER_TOKENS_PER_SECOND = 4400.0


def measure(corpus, vocab, model_config, train_config, repeats, calls):
    import keras
    import tensorflow as tf

    from data_pipeline.dataset import make_dataset
    from keyboard_lm.training.loop import Steps, make_optimizer
    from keyboard_lm.training.model import build_training_model

    keras.mixed_precision.set_global_policy(train_config.precision)
    try:
        keras.utils.set_random_seed(0)
        strategy = tf.distribute.get_strategy()
        pipeline = train_config.pipeline
        dataset = make_dataset(corpus.splits["train"], vocab, pipeline, training=True).repeat()
        batches = iter(dataset)
        model = build_training_model(model_config, pipeline)
        model.compile(optimizer=make_optimizer(train_config, 1000))
        model.optimizer.build(model.trainable_variables)
        steps = Steps(model, model_config, strategy, train_config.clip_norm, train_config.jit_compile)
        stream = pipeline.mode == "stream"
        state = {"states": steps.replica_zero_states(pipeline.batch_size) if stream else None,
                 "tokens": 0.0}

        def one_step():
            sums, next_states = steps.train_step(next(batches), state["states"])
            state["states"] = next_states if stream else None
            state["tokens"] = float(sums["tokens"])  # also waits for the step to finish

        one_step()
        tokens_per_batch = state["tokens"]  # stream: exact; message: the first batch's real tokens
        if not stream:  # message batches vary; average real tokens over 50 batches
            probe = iter(make_dataset(corpus.splits["train"], vocab, pipeline, training=True))
            tokens_per_batch = sum(float(next(probe)[2].numpy().sum()) for _ in range(50)) / 50
        return median_rate(one_step, tokens_per_batch, repeats=repeats, calls_per_repeat=calls)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    parser.add_argument("--only", help="comma-separated configuration names")
    args = parser.parse_args()
    import tensorflow as tf

    from data_pipeline.corpora import load_corpus
    from data_pipeline.dataset import PipelineConfig
    from data_pipeline.tokenization import TokenizerOptions
    from data_pipeline.vocab import VocabularyOptions, build_vocabulary
    from keyboard_lm.training.config import ModelConfig, TrainConfig, preset

    threads = os.environ.get("KBLM_THREADS")
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)
    corpus = load_corpus("brown")
    bengio = build_vocabulary(corpus, VocabularyOptions.bengio(), TokenizerOptions(lowercase=False),
                              progress=False)
    default = build_vocabulary(corpus, progress=False)
    peer_model = ModelConfig(vocabulary_size=len(bengio), embedding_dim=200, rnn_units=(200, 200),
                             dropout=0.2, tie_weights=False)
    peer_train = TrainConfig(optimizer="sgd", learning_rate=20.0, clip_norm=0.25, schedule="constant",
                             pipeline=PipelineConfig(mode="stream", batch_size=20, sequence_length=35))
    configs = [
        ("pytorch-peer", "float32", bengio, peer_model, peer_train),
        ("pytorch-peer +xla", "float32 + XLA", bengio, peer_model, dataclasses.replace(peer_train, jit_compile=True)),
        ("pytorch-peer +bf16", "mixed_bfloat16", bengio, peer_model,
         dataclasses.replace(peer_train, precision="mixed_bfloat16")),
    ]
    for name in ("tiny", "mobile", "server"):
        model_config, train_config = preset(name)
        configs.append((name, "float32", default,
                        dataclasses.replace(model_config, vocabulary_size=len(default)), train_config))
    if args.only:
        wanted = set(args.only.split(","))
        configs = [c for c in configs if c[0] in wanted]
    rows = []
    for name, setting, vocab, model_config, train_config in configs:
        repeats, calls = (3, 5) if args.quick or name == "server" else (5, 20)
        rate = measure(corpus, vocab, model_config, train_config, repeats, calls)
        rows.append({"config": name, "setting": setting, "mode": train_config.pipeline.mode,
                     "batch": f"{train_config.pipeline.batch_size}x{train_config.pipeline.sequence_length}",
                     "tokens_per_second": rate["median"], "min": rate["min"], "max": rate["max"],
                     "vs_pytorch": f"{rate['median'] / PYTORCH_PEER_TOKENS_PER_SECOND:.2f}x"
                     if name.startswith("pytorch") else ""})
        print(rows[-1], flush=True)
    table = write_results("train_throughput", rows, [
        ("config", "configuration"), ("setting", "setting"), ("mode", "mode"), ("batch", "batch"),
        ("tokens_per_second", "tokens/s (median)"), ("min", "min"), ("max", "max"),
        ("vs_pytorch", "x PyTorch 4.4k")], {"threads": threads or "TensorFlow default"})
    print(table)


if __name__ == "__main__":
    main()
