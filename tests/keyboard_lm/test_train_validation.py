"""`kblm train` with bad settings: one line naming the field, exit 1, nothing left behind; and
`--resume` with a new budget continuing a run that finished its epochs or its time (issue 16)."""
import json
import os

import numpy as np
import pytest

from keyboard_lm.cli import main

SENTENCES = [
    "the cat sat on the mat", "the dog sat on the rug", "a cat ate the fish",
    "the dog ate a bone", "my cat likes the sun", "your dog likes the park",
    "see you at the park tomorrow", "see you at the station tonight",
]
# Small and quick: the tiny preset, 16 windows of 8 ids a batch, 5 batches an epoch.
QUICK = ["--preset", "tiny", "--batch-size", "16", "--sequence-length", "8", "--steps-per-epoch", "5"]

# Bad input to `kblm train` (command, what is wrong): each fails with one `kblm: error:` line
# naming the flag or field, exit status 1, before any data is loaded, and leaves no run behind.
CASES = [
    ("train", "--embedding-dim -5"),
    ("train", "--embedding-dim 100000"),
    ("train", "--rnn-units abc"),
    ("train", "--rnn-units 16,0"),
    ("train", "--dropout 1"),
    ("train", "--epochs 0"),
    ("train", "--max-minutes -1"),
    ("train", "--steps-per-epoch 0"),
    ("train", "--learning-rate 0"),
    ("train", "--clip-norm -1"),
    ("train", "--seed -1"),
    ("train", "--batch-size 0"),
    ("train", "--sequence-length 0"),
    ("train", "--paragraphs"),
    ("train", '--config with {"model": {"embedding_dim": "big"}}'),
    ("train", '--config with {"model": {"rnn_units": []}}'),
    ("train", '--config with {"model": {"cell": "transformer"}}'),
    ("train", '--config with {"model": {"vocabulary_size": 500}}'),
    ("train", '--config with {"train": {"epochs": 1.5}}'),
    ("train", '--config with {"train": {"learning_rate": "fast"}}'),
    ("train", '--config with {"train": {"validation_steps": 0}}'),
    ("train", '--config with {"train": {"optimizer": "lion"}}'),
    ("train", '--config with {"train": {"pipeline": {"mode": "bptt"}}}'),
    ("train", '--config with {"train": {"pipeline": 8}}'),
    ("train", "--config with [1, 2] (not an object)"),
    ("train", "--corpus FILE of one line (one message: too few to split 80/10/10)"),
    ("train", "--strategy multi_worker without TF_CONFIG (fails after the data is loaded)"),
    ("train --resume", "--resume of a run whose config.json says embedding_dim 'big'"),
    ("train --resume", "--resume of a run whose config.json is not an object"),
    ("train --resume", "--resume --embedding-dim 32 (the model cannot change)"),
    ("train --resume", "--resume --batch-size 8 (the batches cannot change)"),
    ("train --resume", "--resume --corpus FILE (the corpus cannot change)"),
    ("train --resume", "--resume --epochs 0"),
    ("train --resume", "--resume --epochs 1 of a run that trained 2 epochs"),
    ("train --resume", "--resume --epochs 5 of a run that early-stopped"),
]

# description -> (arguments after `train --out RUN`, a config file's text or None, what the error names)
ARGUMENTS = {
    "--embedding-dim -5": (["--embedding-dim", "-5"], None, "--embedding-dim: expected an integer in [1, 65536], got -5"),
    "--embedding-dim 100000": (["--embedding-dim", "100000"], None, "--embedding-dim"),
    "--rnn-units abc": (["--rnn-units", "abc"], None, "--rnn-units: expected a non-empty list of integers"),
    "--rnn-units 16,0": (["--rnn-units", "16,0"], None, "--rnn-units"),
    "--dropout 1": (["--dropout", "1"], None, "--dropout: expected a number in [0, 1), got 1.0"),
    "--epochs 0": (["--epochs", "0"], None, "--epochs: expected an integer >= 1, got 0"),
    "--max-minutes -1": (["--max-minutes", "-1"], None, "--max-minutes: expected a number > 0"),
    "--steps-per-epoch 0": (["--steps-per-epoch", "0"], None, "--steps-per-epoch: expected an integer >= 1"),
    "--learning-rate 0": (["--learning-rate", "0"], None, "--learning-rate: expected a number > 0"),
    "--clip-norm -1": (["--clip-norm", "-1"], None, "--clip-norm: expected a number > 0"),
    "--seed -1": (["--seed", "-1"], None, "--seed: expected an integer in [0, 4294967295], got -1"),
    "--batch-size 0": (["--batch-size", "0"], None, "--batch-size: expected an integer >= 1, got 0"),
    "--sequence-length 0": (["--sequence-length", "0"], None, "--sequence-length: expected an integer >= 1"),
    "--paragraphs": (["--paragraphs"], None, "--paragraphs: not supported by kblm train"),
    '--config with {"model": {"embedding_dim": "big"}}': (
        [], '{"model": {"embedding_dim": "big"}}',
        "c.json: model.embedding_dim: expected an integer in [1, 65536], got 'big'"),
    '--config with {"model": {"rnn_units": []}}': ([], '{"model": {"rnn_units": []}}', "c.json: model.rnn_units"),
    '--config with {"model": {"cell": "transformer"}}': (
        [], '{"model": {"cell": "transformer"}}', "c.json: model.cell: expected one of ['lstm', 'gru', 'simple_rnn', 'cifg']"),
    '--config with {"model": {"vocabulary_size": 500}}': (
        [], '{"model": {"vocabulary_size": 500}}', "c.json: model.vocabulary_size: set from the vocabulary"),
    '--config with {"train": {"epochs": 1.5}}': ([], '{"train": {"epochs": 1.5}}', "c.json: train.epochs"),
    '--config with {"train": {"learning_rate": "fast"}}': (
        [], '{"train": {"learning_rate": "fast"}}', "c.json: train.learning_rate: expected a number > 0, got 'fast'"),
    '--config with {"train": {"validation_steps": 0}}': (
        [], '{"train": {"validation_steps": 0}}', "c.json: train.validation_steps"),
    '--config with {"train": {"optimizer": "lion"}}': ([], '{"train": {"optimizer": "lion"}}', "c.json: train.optimizer"),
    '--config with {"train": {"pipeline": {"mode": "bptt"}}}': (
        [], '{"train": {"pipeline": {"mode": "bptt"}}}', "c.json: train.pipeline.mode: expected one of"),
    '--config with {"train": {"pipeline": 8}}': (
        [], '{"train": {"pipeline": 8}}', "c.json: train.pipeline: expected an object, got 8"),
    "--config with [1, 2] (not an object)": ([], "[1, 2]", "c.json: expected a JSON object"),
    "--corpus FILE of one line (one message: too few to split 80/10/10)": (
        ["--corpus", "{one_line}"], None, "one_line.txt: 1 message (one per line); the 80/10/10"),
    "--strategy multi_worker without TF_CONFIG (fails after the data is loaded)": (
        ["--strategy", "multi_worker"], None, "strategy multi_worker needs TF_CONFIG"),
}


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "messages.txt"
    rng = np.random.default_rng(0)
    path.write_text("\n".join(SENTENCES[i] for i in rng.integers(0, len(SENTENCES), 800)) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, corpus_file):
    """A real tiny run that completed its 2 epochs (kept read-only by the tests that use it)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", "--corpus", corpus_file, *QUICK, "--epochs", "2", "--out", str(run)]) == 0
    return run


def tree(root):
    """Every file under ``root`` with its bytes (to show a command changed nothing)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def one_error_line(capsys, expected):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    errors = [line for line in lines if line.startswith("kblm: error: ")]
    assert len(errors) == 1 and errors == lines[-1:], captured.err
    assert expected in errors[0], errors[0]
    assert "Traceback" not in captured.err + captured.out
    return errors[0]


@pytest.mark.parametrize("command, description", [c for c in CASES if c[0] == "train"], ids=lambda v: v)
def test_bad_settings_fail_in_one_line_and_leave_no_run(tmp_path, corpus_file, capsys, monkeypatch,
                                                        command, description):
    args, config, expected = ARGUMENTS[description]
    one_line = tmp_path / "one_line.txt"
    one_line.write_text("word " * 20_000 + "\n", encoding="utf-8")  # one long message, no newline inside
    args = [a.format(one_line=one_line) for a in args]
    if config is not None:
        (tmp_path / "c.json").write_text(config, encoding="utf-8")
        args += ["--config", str(tmp_path / "c.json")]
    monkeypatch.delenv("TF_CONFIG", raising=False)
    out = tmp_path / "runs" / "run"  # neither runs/ nor run/ exists yet
    corpus = [] if "--corpus" in args else ["--corpus", corpus_file]
    assert main(["train", *corpus, *QUICK, "--out", str(out), *args]) == 1
    one_error_line(capsys, expected)
    assert not (tmp_path / "runs").exists()  # not even the parent it would have created


def test_a_failed_run_removes_only_what_it_created(tmp_path, corpus_file, capsys, monkeypatch):
    """--out exists (with the user's file in it): a run failing after the data is loaded
    removes its own vocab/ and config.json, and leaves the directory as it found it."""
    monkeypatch.delenv("TF_CONFIG", raising=False)
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    before = tree(out)
    assert main(["train", "--corpus", corpus_file, *QUICK, "--out", str(out), "--strategy", "multi_worker"]) == 1
    one_error_line(capsys, "strategy multi_worker needs TF_CONFIG")
    assert tree(out) == before and sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    # ... so the next attempt is not told to pass --resume
    assert main(["train", "--corpus", corpus_file, *QUICK, "--epochs", "1", "--out", str(out)]) == 0


@pytest.mark.parametrize("command, description", [c for c in CASES if c[0] == "train --resume"], ids=lambda v: v)
def test_bad_resume_fails_in_one_line_and_changes_nothing(tmp_path, finished_run, corpus_file, capsys,
                                                          command, description):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    config = json.loads((run / "config.json").read_text())
    args, expected = [], None
    if "embedding_dim 'big'" in description:
        config["model"]["embedding_dim"] = "big"
        (run / "config.json").write_text(json.dumps(config))
        expected = "config.json: model.embedding_dim: expected an integer in [1, 65536], got 'big'"
    elif "not an object" in description:
        (run / "config.json").write_text("[]")
        expected = "config.json: expected a JSON object, got list"
    elif "--embedding-dim 32" in description:
        args, expected = ["--embedding-dim", "32"], "--embedding-dim: cannot change when resuming"
    elif "--batch-size 8" in description:
        args, expected = ["--batch-size", "8"], "--batch-size: cannot change when resuming"
    elif "--corpus FILE" in description:
        args, expected = ["--corpus", corpus_file], "--corpus: cannot change when resuming"
    elif "--epochs 0" in description:
        args, expected = ["--epochs", "0"], "--epochs: expected an integer >= 1, got 0"
    elif "--epochs 1 of a run that trained 2" in description:
        args, expected = ["--epochs", "1"], "the run has trained 2 epochs already (its epochs: 1); give --epochs above 2"
    elif "early-stopped" in description:
        run = tmp_path / "stopped"
        early = tmp_path / "early.json"  # too small a rate to change a weight: valid perplexity stalls
        early.write_text(json.dumps({"train": {"optimizer": "sgd", "learning_rate": 1e-30, "schedule": "constant",
                                               "early_stopping_patience": 0}}))
        assert main(["train", "--corpus", corpus_file, *QUICK, "--epochs", "4", "--config", str(early),
                     "--out", str(run)]) == 0
        assert json.loads((run / "metrics.json").read_text())["status"] == "early_stopped"
        capsys.readouterr()
        args, expected = ["--epochs", "5"], "early-stopped: valid perplexity stopped improving after epoch 1"
    before = tree(run)
    assert main(["train", "--out", str(run), "--resume", *args]) == 1
    one_error_line(capsys, expected)
    assert tree(run) == before


def test_resume_with_more_epochs_continues_a_complete_run(tmp_path, finished_run, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    assert main(["train", "--out", str(run), "--resume"]) == 0  # no new budget: nothing to do
    assert "finished already (complete)" in capsys.readouterr().out
    assert main(["train", "--out", str(run), "--resume", "--epochs", "4"]) == 0
    rows = [row.split(",") for row in (run / "logs" / "train.csv").read_text().splitlines()]
    header, rows = rows[0], rows[1:]
    assert [int(r[0]) for r in rows] == [0, 1, 2, 3]  # continued at epoch 2, not restarted at 0
    loss = header.index("loss")
    assert float(rows[2][loss]) < float(rows[0][loss])  # from the trained weights, not new ones
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["epochs"] == 4
    assert [{k: r[k] for k in ("after", "epochs_done", "train")} for r in config["resumed"]] == [
        {"after": "complete", "epochs_done": 2, "train": {"epochs": 4}}]
    assert json.loads((run / "metrics.json").read_text())["status"] == "complete"
    assert (run / "last").is_dir() and not (run / "backup").exists()


def test_resume_with_more_time_continues_a_run_stopped_by_its_budget(tmp_path, corpus_file, capsys):
    run = tmp_path / "run"
    flags = ["--preset", "tiny", "--batch-size", "16", "--sequence-length", "8"]
    assert main(["train", "--corpus", corpus_file, *flags, "--epochs", "200", "--max-minutes", "0.001",
                 "--out", str(run)]) == 0
    assert json.loads((run / "metrics.json").read_text())["status"] == "time_budget"
    first = len((run / "logs" / "train.csv").read_text().splitlines()) - 1
    assert first < 200
    assert main(["train", "--out", str(run), "--resume", "--max-minutes", "0.002"]) == 0
    epochs = [int(r.split(",")[0]) for r in (run / "logs" / "train.csv").read_text().splitlines()[1:]]
    assert epochs[:first] == list(range(first)) and epochs[first] == first  # picks up where it stopped
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["max_minutes"] == 0.002 and config["resumed"][0]["after"] == "time_budget"
    assert os.path.isdir(run / "last")


# -- kblm personalize on text in another language (issue 16, item 5) -------------------------

FRENCH = ["on se voit à la station demain .", "le train est encore en retard !", "je suis à la station ce soir .",
          "tu es au parc ou à la station ?", "le train part bientôt , ne sois pas en retard ."]


def test_personalize_warns_when_most_words_are_unknown(toy_run, tmp_path, capsys):
    from keyboard_lm.personalize import PersonalizeOptions, format_report, personalize

    rng = np.random.default_rng(0)
    texts = tmp_path / "marie.txt"
    texts.write_text("\n".join(FRENCH[i] for i in rng.integers(0, len(FRENCH), 120)) + "\n", encoding="utf-8")
    options = PersonalizeOptions(epochs=2, learning_rate=1e-2, batch_size=8, general_limit=50, ksr_limit=0,
                                 quantize=None, final_pass=False, max_forgetting=None)  # the fine-tune's own figures
    report = personalize(toy_run, texts, tmp_path / "marie", options, progress=False)
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("kblm: warning:")]
    assert len(warnings) == 1 and "of the user's words are not in the base vocabulary" in warnings[0]
    assert "count a predicted <unk> as correct" in warnings[0] and "trained on this text's language" in warnings[0]
    saved = json.loads((tmp_path / "marie" / "report.json").read_text())
    assert saved["warnings"] == report["warnings"] and len(saved["warnings"]) == 1
    assert saved["known_words"] / saved["words"] < 0.8
    # <unk> targets count as hits in the user figures; over known words only the gain is smaller
    before, after = report["before"], report["after"]
    assert after["eval"]["top3"] > after["eval_known"]["top3"]
    assert after["eval"]["top3"] - before["eval"]["top3"] > after["eval_known"]["top3"] - before["eval_known"]["top3"]
    assert "top-3 over known words" in format_report(report)


def test_no_warning_when_the_base_knows_the_words():
    from keyboard_lm.personalize import unknown_words_warnings

    assert unknown_words_warnings("u.txt", 1000, 801) == []
    assert len(unknown_words_warnings("u.txt", 1000, 800)) == 1
