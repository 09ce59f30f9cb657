"""kblm personalize: a real fine-tune of a real (toy) base run on a user's text, the
freeze options and the pull toward the base, the many-users batch (parallel processes,
resume, one bad user), and bad input."""
import hashlib
import json
import shutil

import numpy as np
import pytest

from data_pipeline.errors import KblmError
from keyboard_lm.phone.bundle import load_bundle
from keyboard_lm.cli import main
from keyboard_lm.training.evaluate import evaluate_messages
from keyboard_lm.personalize import MIN_WORDS, PersonalizeOptions, personalize
from keyboard_lm.personalize.report import CACHE_WEIGHTS, format_report
from keyboard_lm.training.run import load_run_model
from tests.keyboard_lm.test_training import saved_groups

# This user goes to the park, not to the station the base corpus mostly talks about.
USER_SENTENCES = ["see you at the park tonight !", "we met at the park .", "are you at the park ?",
                  "i will call you at the park .", "see you at the park soon ."]
# (the forgetting guard off: these tests look at the fine-tune itself; its own tests turn it on)
FAST = dict(epochs=3, learning_rate=1e-2, batch_size=8, general_limit=200, ksr_limit=0, quantize=None,
            max_forgetting=None)


def write_user(path, sentences=USER_SENTENCES, count=120, seed=0):
    rng = np.random.default_rng(seed)
    path.write_text("\n".join(sentences[i] for i in rng.integers(0, len(sentences), count)) + "\n")
    return path


def test_personalize_fits_the_user_and_exports_a_bundle(toy_run, tmp_path):
    user = write_user(tmp_path / "alice.txt")
    report = personalize(toy_run, user, tmp_path / "alice", PersonalizeOptions(
        **{**FAST, "ksr_limit": 20, "quantize": "float32"}), progress=False)
    before, after = report["before"], report["after"]
    assert after["eval"]["perplexity"] < 0.8 * before["eval"]["perplexity"]
    assert after["eval"]["top1"] > before["eval"]["top1"]
    assert report["ksr"]["after"]["ksr"] > report["ksr"]["before"]["ksr"]
    cached = report["ksr"]["after+cache"]  # as the phone runs it: cache primed on the user's text, words learned
    assert list(cached["tried"]) == [str(w) for w in CACHE_WEIGHTS] and cached["cache_weight"] in CACHE_WEIGHTS
    assert cached["ksr"] == max(cached["tried"].values()) and cached["messages"] == report["ksr"]["after"]["messages"]
    assert f"best --cache-weight {cached['cache_weight']:g}" in format_report(report)
    out = tmp_path / "alice"
    assert json.loads((out / "report.json").read_text())["user"] == "alice"
    config = json.loads((out / "config.json").read_text())
    assert config["personalization"]["options"]["learning_rate"] == 1e-2
    assert saved_groups(out / "best.keras") == {"layers", "vars"}  # weights only: no Adam state
    bundle = load_bundle(out / "bundle")  # checksums verified, the base vocabulary
    assert bundle.vocab.tokens == load_bundle_vocab_tokens(toy_run)
    assert main(["export", str(out), "--quantize", "float32", "--out", str(tmp_path / "b2")]) == 0


def load_bundle_vocab_tokens(run):
    from data_pipeline.vocab import Vocabulary

    return Vocabulary.load(run / "vocab").tokens


def _weights(model):
    return {w.path: w.numpy() for w in model.weights}


def test_freeze_and_anchor(toy_run, tmp_path):
    user = write_user(tmp_path / "u.txt")
    base = _weights(load_run_model(toy_run))

    reports = {}

    def tuned(name, **options):
        reports[name] = personalize(toy_run, user, tmp_path / name,
                                    PersonalizeOptions(**{**FAST, "patience": 5, **options}), progress=False)
        return _weights(load_run_model(tmp_path / name))

    def moved(weights, part):
        return sum(float(np.abs(weights[k] - base[k]).sum()) for k in base if part in k)

    frozen = tuned("frozen", freeze="embedding", dropout=0.5)  # the rate is used, saved and recorded
    assert moved(frozen, "embedding") == 0 and moved(frozen, "lstm") > 0
    last_only = tuned("last", freeze="all-but-last")  # one LSTM layer: only it trains
    assert moved(last_only, "embedding") == 0 and moved(last_only, "lstm") > 0
    free, anchored = tuned("free", anchor=0.0), tuned("anchored", anchor=10.0)
    assert moved(anchored, "") < 0.5 * moved(free, "")
    general = {name: reports[name]["after"]["general"]["perplexity"] for name in ("free", "anchored")}
    assert general["anchored"] < general["free"]  # the pull toward the base limits forgetting
    import keras

    rates = {layer.rate for layer in load_run_model(tmp_path / "frozen").layers
             if isinstance(layer, keras.layers.Dropout)}
    assert rates == {0.5}
    assert json.loads((tmp_path / "frozen" / "config.json").read_text())["model"]["dropout"] == 0.5


def test_the_final_pass_learns_the_held_out_slice_and_the_report_stays_held_out(toy_run, tmp_path):
    """The held-out slice (the user's latest messages) chooses the epoch, then is trained on
    in one more epoch over all the text. The report's user figures and KSR replay are those
    of the chosen epoch, measured before the pass (they match a --no-final-pass run)."""
    latest = "we met at the station tomorrow !"  # only in the held-out tail
    user = write_user(tmp_path / "u.txt", count=120)
    tail = [latest if i % 2 else USER_SENTENCES[i % 5] for i in range(13)]  # round(133 * 0.1) held out
    user.write_text(user.read_text() + "\n".join(tail) + "\n")
    common = ["personalize", "--base", str(toy_run), "--texts", str(user), "--epochs", "3", "--learning-rate",
              "1e-2", "--batch-size", "8", "--general-limit", "100", "--ksr-limit", "20", "--quantize", "float32",
              "--max-forgetting", "none"]
    assert main([*common, "--out", str(tmp_path / "with")]) == 0
    assert main([*common, "--out", str(tmp_path / "without"), "--no-final-pass"]) == 0
    runs = ("with", "without")
    reports = {name: json.loads((tmp_path / name / "report.json").read_text()) for name in runs}
    records = {name: json.loads((tmp_path / name / "best.json").read_text()) for name in runs}
    assert records["with"]["final_pass"] is True and "final_pass" not in records["without"]
    assert records["with"]["epoch"] == records["without"]["epoch"] >= 1  # the same epoch chosen
    assert reports["with"]["final_pass"] and not reports["without"]["final_pass"]
    assert reports["with"]["user_after_before_final_pass"] and not reports["without"]["user_after_before_final_pass"]
    # The report describes the chosen epoch on text it had not seen, as without the pass ...
    assert reports["with"]["after"]["eval"] == pytest.approx(reports["without"]["after"]["eval"], rel=1e-5)
    assert reports["with"]["ksr"] == reports["without"]["ksr"]
    # ... while the saved model and its bundle learned the latest messages.
    after = {name: evaluate_messages(tmp_path / name, {"latest": [latest] * 4})["latest"]["perplexity"]
             for name in runs}
    assert after["with"] < 0.8 * after["without"]
    assert reports["with"]["after"]["general"] != reports["without"]["after"]["general"]
    assert (load_bundle(tmp_path / "with" / "bundle").manifest["run"]["best"]["final_pass"] is True)
    options = json.loads((tmp_path / "without" / "config.json").read_text())["personalization"]["options"]
    assert options["final_pass"] is False


def test_no_final_pass_when_the_base_is_kept(toy_run, tmp_path):
    """A held-out slice unlike the rest: no epoch beats the base, which is kept unchanged."""
    user = write_user(tmp_path / "u.txt", count=120)
    user.write_text(user.read_text() + "we met at the station tomorrow !\n" * 13)
    report = personalize(toy_run, user, tmp_path / "kept", PersonalizeOptions(**FAST), progress=False)
    assert report["best_epoch"] == 0 and not report["final_pass"]
    assert "final_pass" not in json.loads((tmp_path / "kept" / "best.json").read_text())
    base, kept = _weights(load_run_model(toy_run)), _weights(load_run_model(tmp_path / "kept"))
    assert all(np.array_equal(base[k], kept[k]) for k in base)


def test_bad_user_text_leaves_nothing_behind(toy_run, tmp_path):
    options = PersonalizeOptions(**FAST)
    short = write_user(tmp_path / "short.txt", count=10)
    with pytest.raises(KblmError, match=f"needs at least {MIN_WORDS}"):
        personalize(toy_run, short, tmp_path / "out", options, progress=False)
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("zebra quokka narwhal okapi axolotl tapir\n" * 80)
    with pytest.raises(KblmError, match="in the base vocabulary"):
        personalize(toy_run, unknown, tmp_path / "out", options, progress=False)
    broken = tmp_path / "broken.txt"
    broken.write_bytes(b"see you at the park .\n" * 100 + b"see you \xff there\n")
    with pytest.raises(KblmError, match=r"broken.txt.*line 101"):
        personalize(toy_run, broken, tmp_path / "out", options, progress=False)
    one_line = tmp_path / "one_line.txt"
    one_line.write_text(" ".join(USER_SENTENCES * 20) + "\n")
    with pytest.raises(KblmError, match="one message"):
        personalize(toy_run, one_line, tmp_path / "out", options, progress=False)
    mismatched = tmp_path / "base-copy"  # a vocabulary valid on its own, but not the base's
    shutil.copytree(toy_run, mismatched)
    vocab = mismatched / "vocab" / "vocab.txt"
    vocab.write_text(vocab.read_text().replace("park", "parc"))
    meta = json.loads((mismatched / "vocab" / "vocab.json").read_text())
    meta["sha256"] = hashlib.sha256(vocab.read_bytes()).hexdigest()
    (mismatched / "vocab" / "vocab.json").write_text(json.dumps(meta))
    with pytest.raises(KblmError, match="not the vocabulary the base run was trained with"):
        personalize(mismatched, write_user(tmp_path / "ok.txt"), tmp_path / "out", options, progress=False)
    assert not (tmp_path / "out").exists()


def test_a_failure_mid_way_leaves_no_run_and_the_base_untouched(toy_run, tmp_path, monkeypatch):
    import keyboard_lm.personalize as personalize_module

    before = {p.name: p.read_bytes() for p in toy_run.rglob("*") if p.is_file()}

    def export_fails(*args, **kwargs):
        raise KblmError("export failed (injected)")

    monkeypatch.setattr("export.exporter.export_run", export_fails)
    with pytest.raises(KblmError, match="injected"):
        personalize_module.personalize(toy_run, write_user(tmp_path / "u.txt"), tmp_path / "out",
                                       PersonalizeOptions(**{**FAST, "epochs": 1, "quantize": "float32"}),
                                       progress=False)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    assert {p.name: p.read_bytes() for p in toy_run.rglob("*") if p.is_file()} == before


def test_a_bundle_that_quantizes_badly_falls_back(toy_run, tmp_path, monkeypatch):
    """If the chosen quantization loses more top-3 than the export allows, the fine-tune is
    kept and exported in the fallback mode (recorded); with no fallback, a clear error."""
    import export.exporter
    from export.exporter import QuantizationLoss

    real_export = export.exporter.export_run

    def int8_too_lossy(run, mode, out, **kwargs):  # the exporter's verdict, injected for one mode
        if mode == "dynamic_int8":
            raise QuantizationLoss("dynamic_int8 loses 2.00% relative top-3 accuracy (injected); choose another")
        return real_export(run, mode, out, **kwargs)

    monkeypatch.setattr(export.exporter, "export_run", int8_too_lossy)
    options = PersonalizeOptions(**{**FAST, "epochs": 1, "quantize": "dynamic_int8"})
    report = personalize(toy_run, write_user(tmp_path / "u.txt"), tmp_path / "fell", options, progress=False)
    assert report["bundle_quantization"] == "float16" and "injected" in report["quantize_fallback_reason"]
    assert load_bundle(tmp_path / "fell" / "bundle").manifest["quantization"] == "float16"
    with pytest.raises(KblmError, match="--quantize-fallback"):
        personalize(toy_run, write_user(tmp_path / "u.txt"), tmp_path / "failed",
                    PersonalizeOptions(**{**FAST, "epochs": 1, "quantize": "dynamic_int8", "quantize_fallback": None}),
                    progress=False)
    assert not (tmp_path / "failed").exists()


def test_many_users_in_parallel_resume_and_survive_a_bad_user(toy_run, tmp_path, capsys):
    users = tmp_path / "users"
    users.mkdir()
    write_user(users / "alice.txt", seed=1)
    (users / "bob").mkdir()
    write_user(users / "bob" / "notes.txt", ["i think the train is late .", "the train is late again ."], seed=2)
    write_user(users / "carol.txt", count=5)  # too short
    out = tmp_path / "runs"
    args = ["personalize", "--base", str(toy_run), "--users", str(users), "--out", str(out), "--jobs", "2",
            "--epochs", "1", "--ksr-limit", "0", "--quantize", "none", "--general-limit", "100",
            "--max-forgetting", "none"]  # the batch's mechanics (the guard: test_forgetting_guard)
    assert main(args) == 1  # carol failed, the others did not
    summary = {row["user"]: row for row in json.loads((out / "summary.json").read_text())}
    assert summary["alice"]["status"] == summary["bob"]["status"] == "personalized"
    assert summary["carol"]["status"] == "failed" and "at least" in summary["carol"]["error"]
    assert (out / "alice" / "best.keras").exists() and not (out / "carol").exists()
    stamp = (out / "alice" / "report.json").stat().st_mtime_ns
    (out / ".bob.x.tmp").mkdir()  # what a killed batch leaves behind
    write_user(users / "carol.txt")  # carol fixes her data; the batch resumes
    assert main(args) == 0
    summary = {row["user"]: row for row in json.loads((out / "summary.json").read_text())}
    assert summary["alice"]["status"] == "done earlier" and summary["carol"]["status"] == "personalized"
    assert (out / "alice" / "report.json").stat().st_mtime_ns == stamp and not (out / ".bob.x.tmp").exists()
    assert "| alice | done earlier |" in capsys.readouterr().out
    config_path = out / "alice" / "config.json"
    config = json.loads(config_path.read_text())
    del config["personalization"]["options"]["dropout"]  # as written before --dropout existed
    config_path.write_text(json.dumps(config))
    assert main(args) == 0
    summary = {row["user"]: row for row in json.loads((out / "summary.json").read_text())}
    assert summary["alice"]["status"] == "done earlier"  # the same options as today's defaults
    del config["personalization"]["options"]["final_pass"]  # before --final-pass: runs had none
    config_path.write_text(json.dumps(config))
    assert main([*args, "--no-final-pass"]) == 0
    summary = {row["user"]: row for row in json.loads((out / "summary.json").read_text())}
    assert summary["alice"]["status"] == "done earlier" and summary["bob"]["status"] == "personalized"
