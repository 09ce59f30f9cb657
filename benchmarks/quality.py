"""Model quality under a CPU time budget: Brown with the Bengio et al. 2003 protocol, and
nlp-corpus with the default vocabulary. Test perplexity and top-1/top-3 accuracy.

Run: ``python benchmarks/quality.py [--minutes 30] [--nlp-minutes 45] [--wide-minutes 62]
[--only brown-bengio-mobile]``. Trains into
runs/bench/NAME (resumable: an interrupted benchmark continues), then evaluates on test.
Writes benchmarks/results/quality.{json,md}.

References on Brown (Bengio protocol): Bengio et al. 2003, Table 1: best neural model 252,
best n-gram (Kneser-Ney / class-based) about 310-320. The PyTorch word_language_model
example (2x200 LSTM, untied, 7.8M parameters): 183.8 after 2 epochs (about 400 s here).
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import RESULTS, write_results  # noqa: E402

RUNS = "runs/bench"


def experiments(minutes, nlp_minutes, wide_minutes=62.0):
    from data_pipeline.tokenization import TokenizerOptions
    from data_pipeline.vocab import VocabularyOptions

    # Bengio et al.'s protocol: their vocabulary rule, case kept, stream training
    brown = dict(corpus="brown", preset="mobile", vocab=VocabularyOptions.bengio(),
                 tokenizer=TokenizerOptions(lowercase=False),
                 train={"epochs": 100, "pipeline": {"mode": "stream", "batch_size": 20, "sequence_length": 35}})
    return {
        "brown-bengio-mobile": dict(brown, budget=minutes),
        # A wider recurrent layer (512 units, dropout 0.3 against its overfitting), ~3M parameters:
        # the base the personalization benchmark also measures (--base brown-bengio-wide).
        "brown-bengio-wide": dict(brown, budget=wide_minutes, model={"rnn_units": [512], "dropout": 0.3}),
        "nlp-corpus-mobile": dict(corpus="nlp-corpus", preset="mobile", budget=nlp_minutes,
                                  vocab=VocabularyOptions(), tokenizer=TokenizerOptions(),
                                  train={"epochs": 100}),
    }


def run(name, spec):
    from keyboard_lm.training.evaluate import evaluate_run
    from keyboard_lm.training.train import train

    out = os.path.join(RUNS, name)
    resume = os.path.exists(os.path.join(out, "config.json"))
    started = time.monotonic()
    metrics = train(out, spec["corpus"], spec["preset"], spec.get("model", {}),
                    {**spec["train"], "max_minutes": spec["budget"]},
                    spec["vocab"], spec["tokenizer"], resume=resume, progress=False)
    test = evaluate_run(out, "test", progress=False)
    return {"experiment": name, "corpus": spec["corpus"], "preset": spec["preset"],
            "parameters": metrics["parameters"], "budget_minutes": spec["budget"],
            "epochs": (metrics.get("best") or {}).get("epoch"), "status": metrics["status"],
            "valid_perplexity": (metrics.get("best") or {}).get("val_perplexity"),
            "test_perplexity": test["perplexity"], "test_top1": 100 * test["top1"],
            "test_top3": 100 * test["top3"], "eval_mode": test["mode"],
            "wall_minutes": (time.monotonic() - started) / 60}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training budget of the Brown run")
    parser.add_argument("--nlp-minutes", type=float, default=45.0, help="training budget of the nlp-corpus run")
    parser.add_argument("--wide-minutes", type=float, default=62.0, help="training budget of the wide Brown run")
    parser.add_argument("--only", help="comma-separated experiment names")
    args = parser.parse_args()
    specs = experiments(args.minutes, args.nlp_minutes, args.wide_minutes)
    names = args.only.split(",") if args.only else list(specs)
    previous = RESULTS / "quality.json"
    rows = {r["experiment"]: r for r in json.loads(previous.read_text())["rows"]} if previous.exists() else {}
    for name in names:
        rows[name] = run(name, specs[name])
        print(rows[name], flush=True)
    table = write_results("quality", list(rows.values()), [
        ("experiment", "experiment"), ("parameters", "parameters"), ("budget_minutes", "CPU budget (min)"),
        ("epochs", "best epoch"), ("valid_perplexity", "valid ppl"), ("test_perplexity", "test ppl"),
        ("test_top1", "test top-1 %"), ("test_top3", "test top-3 %"), ("eval_mode", "eval")])
    print(table)


if __name__ == "__main__":
    main()
