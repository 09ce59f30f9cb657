"""On-device adaptation (docs/engine.md §18): the ``train`` signature's math against TensorFlow's
autodiff and loss, the zero adapter against the step model bit for bit, the LiteRT loop of
``kblm adapt`` on a real (toy) run, the adapter file, ``--adapter`` on the harness, bad input."""
import json
import struct
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from export import tflite
from export.adapter_model import PARAMETERS, adam, build_adaptable_model, masked_loss_and_gradients, window_forward
from export.exporter import export_run
from export.step_model import build_step_model
from keyboard_lm.cli import main
from keyboard_lm.phone.adapter import (MAGIC, AdaptOptions, TooShort, adapt, limit_forgetting, load_adapter,
                                      save_adapter, scaled, windows_of)
from keyboard_lm.phone.bundle import load_bundle
from keyboard_lm.phone.runtime import StepRunner, TrainRunner
from keyboard_lm.training.model import zero_states
from keyboard_lm.training.run import load_run

ROOT = Path(__file__).resolve().parents[2]
KBLM = [sys.executable, "-m", "keyboard_lm.cli"]

# (command, case, the test that covers it): rows of docs/bad-input.md
CASES = [
    ("adapt", "text too short to train: one line, nothing written", "test_too_short_text_trains_nothing"),
    ("adapt", "a bundle without a train signature: one line", "test_a_bundle_without_train_is_refused"),
    ("adapt", "a bundle of adapter format 1 (train without reset): one line asking to re-export; it still suggests",
     "test_a_bundle_of_the_first_adapter_format_suggests_but_is_not_adapted"),
    ("adapt", "an adapter that does not beat the base: not written, the previous one kept",
     "test_a_worse_adapter_keeps_the_previous_one"),
    ("adapt", "a diverging run (non-finite loss): the epoch is thrown away", "test_a_diverging_epoch_is_thrown_away"),
    ("adapt", "a base model whose held-out or general loss is not finite: nothing trained, nothing written",
     "test_a_base_that_cannot_score_the_text_trains_nothing"),
    ("adapt", "an adapter that raises the general loss past --max-forgetting at any strength: not written",
     "test_the_bundle_carries_a_general_sample_and_adapt_guards_with_it"),
    ("suggest / type / simulate", "--adapter of another bundle: one warning line, the base runs on",
     "test_bad_adapter_files_are_refused_and_the_base_runs_on"),
] + [("suggest / type / simulate", f"--adapter {what}: one warning line, the base runs on",
       "test_bad_adapter_files_are_refused_and_the_base_runs_on")
      for what in ("not an adapter", "truncated", "a corrupt payload (sha256)", "another format version",
                   "a NaN in the payload")]

# The user says "park" where the toy corpus mostly says "station".
USER = ["see you at the park tonight !", "we met at the park .", "are you at the park ?",
        "i will call you at the park .", "see you at the park soon .", "the park is late again ."]


def user_text(path, count=200, seed=0):
    rng = np.random.default_rng(seed)
    path.write_text("\n".join(USER[i] for i in rng.integers(0, len(USER), count)) + "\n")
    return path


@pytest.fixture(scope="module")
def model(toy_run):
    run = load_run(toy_run)
    return run.model, run.model_config


@pytest.fixture(scope="module")
def adaptable(model):
    return build_adaptable_model(*model, rank=3, window=8)


@pytest.fixture(scope="module")
def float_model(adaptable):
    return tflite.convert(adaptable, "float32")


def random_inputs(adaptable, seed=1):
    rng = np.random.default_rng(seed)
    vocabulary = adaptable.shapes["adapter_bias"][0]
    tokens = rng.integers(4, vocabulary, adaptable.window).astype(np.int32)
    targets = rng.integers(4, vocabulary, adaptable.window).astype(np.int32)
    mask = np.ones(adaptable.window, np.float32)
    mask[-3:] = 0  # a padded tail
    reset = np.zeros(adaptable.window, np.float32)
    reset[2] = 1  # a second sentence starts at position 2
    states = {name: rng.normal(0, 0.3, (1, size)).astype(np.float32) for name, size in adaptable.layout}
    params = {name: rng.normal(0, 0.2, shape).astype(np.float32) for name, shape in adaptable.shapes.items()}
    moments = [{name: np.abs(rng.normal(0, 0.01, shape)).astype(np.float32) for name, shape in
                adaptable.shapes.items()} for _ in range(2)]
    return tokens, targets, mask, reset, states, params, moments


def tf_loss(adaptable, tokens, targets, mask, reset, states, params):
    """TensorFlow's masked loss of the window, by Keras's own cross-entropy."""
    features, _ = window_forward(adaptable, tf.constant(tokens), tf.constant(mask), tf.constant(reset),
                                 [tf.constant(states[name]) for name, _ in adaptable.layout], adaptable.window)
    logits = adaptable.logits(features) + tf.matmul(tf.matmul(features, params["adapter_down"]),
                                                    params["adapter_up"]) + params["adapter_bias"]
    losses = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    return tf.reduce_sum(losses * mask) / tf.reduce_sum(mask), features, logits


def test_explicit_gradient_equals_autodiff(adaptable):
    tokens, targets, mask, reset, states, params, _ = random_inputs(adaptable)
    variables = {name: tf.Variable(value) for name, value in params.items()}
    with tf.GradientTape() as tape:
        loss, features, logits = tf_loss(adaptable, tokens, targets, mask, reset, states, variables)
    expected = tape.gradient(loss, variables)
    ours_loss, ours = masked_loss_and_gradients(logits, tf.constant(targets), tf.constant(mask), features,
                                                tf.constant(params["adapter_down"]), tf.constant(params["adapter_up"]))
    assert abs(float(ours_loss) - float(loss)) <= 1e-5
    for name in PARAMETERS:
        assert np.abs(ours[name].numpy() - expected[name].numpy()).max() <= 1e-5, name
        assert np.abs(expected[name].numpy()).max() > 1e-4  # a gradient that is really there


def test_litert_train_equals_tensorflow(adaptable, float_model):
    """The LiteRT signature: TensorFlow's masked loss within 1e-5, Adam on autodiff's gradient."""
    tokens, targets, mask, reset, states, params, (m, v) = random_inputs(adaptable)
    trainer = TrainRunner(float_model, adaptable.layout, adaptable.block())
    loss, new_params, new_m, new_v, count, end = trainer.train(tokens, targets, mask, reset, states, params, m, v,
                                                               4.0, 0.01, 1e-3)
    variables = {name: tf.Variable(value) for name, value in params.items()}
    with tf.GradientTape() as tape:
        expected_loss, _, _ = tf_loss(adaptable, tokens, targets, mask, reset, states, variables)
    grads = tape.gradient(expected_loss, variables)
    assert abs(loss - float(expected_loss)) <= 1e-5
    want_p, want_m, want_v, t = adam(params, {k: g.numpy() for k, g in grads.items()}, m, v, 4.0, 0.01, 1e-3)
    assert count == float(t) == 5.0
    for name in PARAMETERS:
        assert np.abs(new_params[name] - np.asarray(want_p[name])).max() <= 1e-5, name
        assert np.abs(new_m[name] - np.asarray(want_m[name])).max() <= 1e-6, name
        assert np.abs(new_v[name] - np.asarray(want_v[name])).max() <= 1e-6, name
        assert not np.array_equal(new_params[name], params[name])
    # The state after the window is the step model's after the last real position, reset at position 2.
    runner = StepRunner(float_model, adaptable.layout, adapter=adaptable.block())
    runner.states = {k: s.copy() for k, s in states.items()}
    for token, starts in zip(tokens[:int(mask.sum())], reset):
        if starts:
            runner.reset()
        runner.step(int(token))
    for name, _ in adaptable.layout:
        assert np.abs(end[name] - runner.states[name]).max() <= 1e-5


def test_window_loss_equals_the_keras_model_from_an_empty_state(model, adaptable, float_model):
    """Two sentences packed in one window (reset at 0 and 2), started from states that are not
    zeros: the loss is the Keras model's on each sentence from an empty state."""
    keras_model, config = model
    tokens, targets, mask, reset, states, _, _ = random_inputs(adaptable, seed=3)
    reset[0] = 1
    trainer = TrainRunner(float_model, adaptable.layout, adaptable.block())
    zeros = trainer.zeros()
    loss = trainer.train(tokens, targets, mask, reset, states, zeros, zeros, zeros, 0.0, 0.0, 0.0)[0]
    total = 0.0
    for begin, end in ((0, 2), (2, int(mask.sum()))):
        logits, *_ = keras_model([keras.ops.convert_to_tensor(tokens[None, begin:end]), *zero_states(config, 1)])
        total += float(np.sum(keras.losses.sparse_categorical_crossentropy(targets[None, begin:end], logits,
                                                                            from_logits=True)[0].numpy()))
    assert abs(loss - total / mask.sum()) <= 1e-5


@pytest.mark.parametrize("mode", ["float32", "dynamic_int8"])
def test_zero_adapter_is_the_step_model_bit_for_bit(model, adaptable, mode):
    base = tflite.convert(build_step_model(*model), mode)
    adapted = tflite.convert(adaptable, mode)
    layout = adaptable.layout
    plain, with_zeros = StepRunner(base, layout), StepRunner(adapted, layout, adapter=adaptable.block())
    for token in [1, 5, 9, 4, 12, 7, 2]:
        assert np.array_equal(plain.step(token), with_zeros.step(token))
    assert all(np.array_equal(plain.states[k], with_zeros.states[k]) for k, _ in layout)
    ops = tflite.op_names(adapted)
    assert not [op for op in ops if op.startswith(tflite.FORBIDDEN_OPS)]


@pytest.fixture(scope="module")
def adapter_bundle(toy_run, tmp_path_factory):
    """The toy run exported as the user gets it (dynamic_int8, the train signature)."""
    out = tmp_path_factory.mktemp("adapter") / "bundle"
    export_run(toy_run, "dynamic_int8", out, sample_messages=50)
    return out


@pytest.fixture(scope="module")
def trained(adapter_bundle, tmp_path_factory):
    folder = tmp_path_factory.mktemp("trained")
    texts = user_text(folder / "user.txt")
    out = folder / "user.kbad"
    # the toy user contradicts the toy corpus: the guard would refuse it (tested on its own below)
    assert main(["adapt", str(adapter_bundle), "--texts", str(texts), "--out", str(out), "--quiet",
                 "--max-forgetting", "none"]) in (0, None)
    return out, texts


def park_rank(engine_probs, vocab):
    return int(np.sum(engine_probs > engine_probs[vocab.id("park")]))


def test_windows_pack_sentences_with_a_reset_at_each_start(adapter_bundle):
    """§18.3: sentences laid end to end, reset 1 at each <bos>; a sentence longer than the room
    left runs on into the next window; only the last window is padded."""
    vocab = load_bundle(adapter_bundle).vocab
    # 3 sentences of 7, 4 and 7 positions (the toy tokenizer keeps punctuation): 18 positions in 3 windows
    messages = ["see you at the park . we met .", "are you at the station ?"]
    windows = windows_of(messages, vocab, 8, carry=False)
    tokens = np.concatenate([w.tokens for w in windows])
    reset = np.concatenate([w.reset for w in windows])
    mask = np.concatenate([w.mask for w in windows])
    assert len(windows) == 3 and mask.tolist() == [1.0] * 18 + [0.0] * 6
    assert np.flatnonzero(reset).tolist() == [0, 7, 11]  # the three sentences' starts
    assert tokens[[0, 7, 11]].tolist() == [vocab.id("<bos>")] * 3
    assert [w.first for w in windows] == [True, False, False]
    # "we met ." is cut at the window's end: the next window goes on from its state (reset 0 at 0)
    assert windows[1].reset[0] == 0 and windows[1].tokens[0] == vocab.id("we")
    assert windows[0].targets[6] == vocab.id("<eos>") and windows[0].tokens[7] == vocab.id("<bos>")
    # carry: one stream per message, a reset only at each message's first position
    carried = windows_of(messages, vocab, 8, carry=True)
    assert np.flatnonzero(np.concatenate([w.reset for w in carried])).tolist() == [0, 12]
    assert np.concatenate([w.mask for w in carried]).sum() == 19  # 12 + 7 positions: a stream loses only its last id


def test_a_bundle_of_the_first_adapter_format_suggests_but_is_not_adapted(adapter_bundle, trained, tmp_path):
    """Block format 1 had no reset input: its step runs as before (adapters too), but its train
    cannot run packed windows: kblm adapt refuses it in one line, asking to re-export."""
    import shutil
    copy = tmp_path / "old"
    shutil.copytree(adapter_bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["adapter"]["format_version"] = 1
    (copy / "manifest.json").write_text(json.dumps(manifest))
    result = _cli(["suggest", str(copy), "see you at the", "--adapter", str(trained[0])])
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
    result = _cli(["adapt", str(copy), "--texts", str(trained[1]), "--out", str(tmp_path / "a.kbad")])
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "adapter.format_version is 1" in result.stderr and "re-export" in result.stderr
    assert not (tmp_path / "a.kbad").exists()


def test_the_guard_ships_within_the_limit_scales_over_it_and_refuses_past_it():
    """§18.3: a general loss linear in the adapter's strength a (1 + a here, the base's 1):
    within the limit as trained; over it, the largest a of 5 bisections within it, the arrays
    scaled (down untouched); at a limit under 1/32 nothing ships."""
    rng = np.random.default_rng(0)
    arrays = {"adapter_bias": rng.normal(size=7).astype(np.float32),
              "adapter_down": rng.normal(size=(3, 2)).astype(np.float32),
              "adapter_up": rng.normal(size=(2, 7)).astype(np.float32)}
    strength = lambda a: float(np.abs(a["adapter_bias"]).sum() / np.abs(arrays["adapter_bias"]).sum())
    measured = []

    def general_loss(a):
        measured.append(strength(a))
        return 1.0 + strength(a)

    shipped, record = limit_forgetting(arrays, general_loss, 1.0, 1.5)
    assert shipped is arrays and record["blend"] == 1.0 and record["rise"] == pytest.approx(1.0)
    measured.clear()
    shipped, record = limit_forgetting(arrays, general_loss, 1.0, 0.3)
    # 0.5 over, 0.25 within, 0.375 over, 0.3125 over, 0.28125 within: 9/32
    assert record["blend"] == 0.28125 and measured == pytest.approx([1, 0.5, 0.25, 0.375, 0.3125, 0.28125], abs=1e-3)
    assert record["rise"] <= 0.3 and record["trained_rise"] == pytest.approx(1.0) and "0.28125" in record["what"]
    want = scaled(arrays, 0.28125)
    assert all(np.array_equal(shipped[k], want[k]) for k in arrays)
    assert np.array_equal(shipped["adapter_down"], np.asarray(arrays["adapter_down"], np.float16).astype(np.float32))
    assert np.allclose(shipped["adapter_up"], 0.28125 * arrays["adapter_up"], rtol=1e-3)
    shipped, record = limit_forgetting(arrays, general_loss, 1.0, 0.01)
    assert shipped is None and record["blend"] == 0.0 and "forgot too much general text" in record["what"]


def test_the_bundle_carries_a_general_sample_and_adapt_guards_with_it(adapter_bundle, trained, tmp_path):
    """The toy user says "park" where the toy corpus says "station": on the corpus's own text
    the adapter forgets a lot (the base is nearly perfect there), which the guard must catch."""
    bundle = load_bundle(adapter_bundle)
    block = bundle.adapter_block["general"]
    assert block["file"] == "adapter-general.txt" and block["messages"] == len(bundle.general_messages) > 0
    assert bundle.general_messages[0] == " ".join(bundle.general_messages[0].split())  # one line each
    shown = _cli(["inspect", str(adapter_bundle)]).stdout
    assert f"forgetting guard: {block['messages']:,} general messages" in shown and "windows of 16 tokens" in shown
    texts = trained[1].read_text().splitlines()
    default = adapt(bundle, texts)  # the 2% default: no strength of it is within
    assert not default["shipped"] and default["guard"]["trained_rise"] > 1 and default["guard"]["blend"] == 0
    assert default["arrays"] is None and "forgot too much general text" in default["reason"]
    loose = adapt(bundle, texts, AdaptOptions(max_forgetting=1.0))  # up to +100%: a part of it ships
    guard = loose["guard"]
    assert loose["shipped"] and 0 < guard["blend"] < 1 and guard["blend"] * 32 == int(guard["blend"] * 32)
    assert guard["base_general_loss"] < guard["general_loss"] <= guard["base_general_loss"] * 2
    assert loose["held_out_loss"] < loose["base_held_out_loss"]  # a part of a better adapter is still better
    off = adapt(bundle, texts, AdaptOptions(max_forgetting=None))
    assert off["guard"] is None and off["shipped"]
    result = _cli(["adapt", str(adapter_bundle), "--texts", str(trained[1]), "--out", str(tmp_path / "a.kbad"),
                   "--quiet"])
    assert result.returncode == 0 and "forgot too much general text" in result.stdout
    assert "no adapter" in result.stdout and not (tmp_path / "a.kbad").exists()


def test_adapt_learns_the_user_and_the_harness_uses_it(adapter_bundle, trained, capsys):
    out, _ = trained
    bundle = load_bundle(adapter_bundle)
    arrays, header = load_adapter(out, bundle)
    training = header["training"]
    assert training["held_out_loss"] < 0.9 * training["base_held_out_loss"]
    assert header["bundle_model_sha256"] == bundle.model_sha256 and out.read_bytes()[:8] == MAGIC
    # every step adds it: "park" climbs after "at the"
    runner = bundle.runner()
    ranks = []
    for adapter in (None, arrays):
        runner.set_adapter(adapter)
        runner.reset()
        for word in ["<bos>", "see", "you", "at", "the"]:
            probs = runner.step(bundle.vocab.id(word))
        ranks.append(park_rank(probs, bundle.vocab))
    assert ranks[1] == 0 < ranks[0]
    capsys.readouterr()
    main(["suggest", str(adapter_bundle), "we met at the ", "--adapter", str(out)])
    assert capsys.readouterr().out.split("[1] ")[1].split()[0] == "park"


def test_simulate_with_the_adapter_saves_keystrokes(adapter_bundle, trained, tmp_path, capsys):
    out, _ = trained
    messages = user_text(tmp_path / "later.txt", 40, seed=9)
    reports = {}
    for name, extra in (("base", []), ("adapter", ["--adapter", str(out)])):
        main(["simulate", str(adapter_bundle), "--text", str(messages), "--json", str(tmp_path / f"{name}.json"),
              *extra])
        reports[name] = json.loads((tmp_path / f"{name}.json").read_text())[0]
    assert reports["adapter"]["ksr"] > reports["base"]["ksr"]


def test_the_file_round_trips_in_float16(adapter_bundle, tmp_path):
    bundle = load_bundle(adapter_bundle)
    rng = np.random.default_rng(0)
    arrays = {p["name"]: rng.normal(0, 1, p["shape"]).astype(np.float32) for p in bundle.adapter_block["parameters"]}
    size = save_adapter(tmp_path / "a.kbad", bundle, arrays, {"note": "test"})
    loaded, header = load_adapter(tmp_path / "a.kbad", bundle)
    (length,) = struct.unpack("<I", (tmp_path / "a.kbad").read_bytes()[8:12])
    assert size == 12 + length + 2 * sum(a.size for a in arrays.values())
    for name, value in arrays.items():
        assert np.array_equal(loaded[name], value.astype(np.float16).astype(np.float32))
    assert header["training"] == {"note": "test"}


def _cli(args):
    return subprocess.run(KBLM + args, cwd=ROOT, capture_output=True, text=True, timeout=600)


def _written(path, data):
    path.write_bytes(data)
    return path


def _corrupt(source, target, change):
    data = bytearray(source.read_bytes())
    (length,) = struct.unpack("<I", data[8:12])
    header = json.loads(data[12:12 + length])
    payload = data[12 + length:]
    header, payload = change(header, payload)
    text = json.dumps(header).encode()
    target.write_bytes(MAGIC + struct.pack("<I", len(text)) + text + bytes(payload))
    return target


def test_bad_adapter_files_are_refused_and_the_base_runs_on(adapter_bundle, trained, toy_run, tmp_path, capsys):
    out, _ = trained
    other = tmp_path / "other-bundle"
    export_run(toy_run, "float32", other, sample_messages=20)  # same run, another model file

    def nan(header, payload):
        import hashlib

        payload[0:2] = np.array([np.nan], "<f2").tobytes()
        return {**header, "payload_sha256": hashlib.sha256(bytes(payload)).hexdigest()}, payload

    cases = {
        "not an adapter": (lambda p: _written(p, b"hello"), "not a keyboard-lm adapter"),
        "truncated": (lambda p: _written(p, out.read_bytes()[:-7]), "payload is"),
        "payload": (lambda p: _corrupt(out, p, lambda h, d: (h, d[:-2] + b"\x00\x3c")), "field payload_sha256"),
        "version": (lambda p: _corrupt(out, p, lambda h, d: ({**h, "format_version": 2}, d)), "field format_version"),
        "nan": (lambda p: _corrupt(out, p, nan), "not finite"),
    }
    assert main(["suggest", str(adapter_bundle), "we met at the "]) in (0, None)
    base = capsys.readouterr().out
    for name, (make, message) in cases.items():
        path = make(tmp_path / f"{name}.kbad")
        assert main(["suggest", str(adapter_bundle), "we met at the ", "--adapter", str(path)]) in (0, None)
        printed = capsys.readouterr()
        assert printed.out == base, name
        lines = printed.err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and str(path) in lines[0] and "running the base" in lines[0]
    # in a process of its own: one line on the console, exit 0, the base's strip
    result = _cli(["suggest", str(other), "we met at the ", "--adapter", str(out)])
    assert result.returncode == 0 and "field bundle_model_sha256" in result.stderr and "another bundle" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "next words" in result.stdout


def test_too_short_text_trains_nothing(adapter_bundle, tmp_path):
    texts = user_text(tmp_path / "short.txt", count=12)
    result = _cli(["adapt", str(adapter_bundle), "--texts", str(texts), "--out", str(tmp_path / "a.kbad")])
    assert result.returncode == 1 and "too little text" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "a.kbad").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.txt"]


def test_a_bundle_without_train_is_refused(toy_run, tmp_path):
    bundle = tmp_path / "no-train"
    export_run(toy_run, "float32", bundle, sample_messages=20, adapter_rank=0)
    assert "adapter" not in json.loads((bundle / "manifest.json").read_text())
    texts = user_text(tmp_path / "u.txt")
    result = _cli(["adapt", str(bundle), "--texts", str(texts), "--out", str(tmp_path / "a.kbad")])
    assert result.returncode == 1 and "no train signature" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "a.kbad").exists()


def test_a_worse_adapter_keeps_the_previous_one(adapter_bundle, trained, tmp_path):
    out, _ = trained
    previous = tmp_path / "user.kbad"
    previous.write_bytes(out.read_bytes())
    # Text the base already predicts as well as it can: the adapter cannot beat it on held-out text.
    rng = np.random.default_rng(5)
    from tests.conftest import KEYBOARD_SENTENCES
    (tmp_path / "same.txt").write_text("\n".join(rng.choice(KEYBOARD_SENTENCES, 150)) + "\n")
    result = _cli(["adapt", str(adapter_bundle), "--texts", str(tmp_path / "same.txt"), "--out", str(previous),
                   "--learning-rate", "0.5"])
    assert result.returncode == 0, result.stderr
    assert "no adapter" in result.stdout and previous.read_bytes() == out.read_bytes()


def faulty(bundle, bad, loss):
    """Makes ``bundle.trainer()`` the real LiteRT trainer, except that the n-th train call
    (counting from 1) returns ``loss`` where ``bad(n)``."""
    real = bundle.trainer()
    calls = [0]

    class Faulty:
        window, shapes, layout = real.window, real.shapes, real.layout

        def zeros(self):
            return real.zeros()

        def train(self, *args):
            out = real.train(*args)
            calls[0] += 1
            return (loss, *out[1:]) if bad(calls[0]) else out

    bundle.trainer = lambda num_threads=1: Faulty()


def test_a_diverging_epoch_is_thrown_away(adapter_bundle, tmp_path):
    """A trainer whose second epoch returns NaN: the first epoch's adapter ships."""
    bundle = load_bundle(adapter_bundle)
    texts = user_text(tmp_path / "u.txt").read_text().splitlines()
    clean = adapt(bundle, texts, AdaptOptions(epochs=1, max_forgetting=None))
    limit = clean["windows"] + clean["held_out_windows"]  # pass 0 (held-out) and epoch 1 are clean; epoch 2 is not
    faulty(bundle, lambda call: call > limit, float("nan"))
    result = adapt(bundle, texts, AdaptOptions(epochs=3, max_forgetting=None))
    assert result["shipped"] and "diverged" in result["reason"]
    assert len(result["epochs"]) == 2 and result["held_out_loss"] == result["epochs"][0]["held_out_loss"]
    with pytest.raises(TooShort):
        adapt(bundle, texts[:5])


@pytest.mark.parametrize("broken", ["held-out", "general"])
def test_a_base_that_cannot_score_the_text_trains_nothing(adapter_bundle, tmp_path, broken):
    """A non-finite loss from the base itself (pass 0 on the held-out part, or on the general
    sample): nothing is trained or shipped, and the reason names it (Java: DIVERGED)."""
    bundle = load_bundle(adapter_bundle)
    assert bundle.general_messages
    texts = user_text(tmp_path / "u.txt").read_text().splitlines()
    held = adapt(bundle, texts, AdaptOptions(epochs=1))["held_out_windows"]  # pass 0, then the general sample
    faulty(bundle, (lambda call: call <= held) if broken == "held-out" else (lambda call: call > held), float("inf"))
    result = adapt(bundle, texts, AdaptOptions(epochs=3))
    assert not result["shipped"] and result["epochs"] == [] and result["arrays"] is None
    assert result["reason"] == f"the base model's {broken} loss is nan; nothing trained"  # (run() reports nan)


def test_kblm_export_and_export_run_give_the_same_default_rank(adapter_bundle):
    """The command's default is the exporter's (the command once kept its own 4 after the
    exporter's default became 3), and a bundle exported without a rank has it."""
    import inspect

    from export.exporter import export_run
    from keyboard_lm.cli import build_parser
    from keyboard_lm.phone.bundle import DEFAULT_ADAPTER_RANK

    args = build_parser().parse_args(["export", "some-run", "--out", "some-bundle"])
    assert args.adapter_rank == inspect.signature(export_run).parameters["adapter_rank"].default == DEFAULT_ADAPTER_RANK
    assert load_bundle(adapter_bundle).adapter_block["rank"] == DEFAULT_ADAPTER_RANK
