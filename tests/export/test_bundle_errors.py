"""Bad bundles: every corrupt, truncated, mislabelled or mismatched bundle is one `kblm: error:`
line naming the user's path (the directory's file or the .zip's entry, never a temporary
extraction), exit status 1, no traceback, for `kblm inspect`, `suggest` and `simulate`.

The bundle is the session's toy export (real training, real LiteRT); each case damages a
copy of it. ``CASES`` (command, description) is the list the README's table of bad inputs
is made from.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from export.bundle import write_zip
from keyboard_lm.phone.bundle import load_bundle, sha256
from keyboard_lm.phone.runtime import native_output_captured
from keyboard_lm.cli import main

REPO = Path(__file__).resolve().parents[2]
ZIP = "zip"  # the case damages the .zip: the error must name it (and the entry)


# -- helpers that damage a copy of the bundle, keeping or breaking the checksums on purpose --

def read_manifest(directory):
    return json.loads((directory / "manifest.json").read_text())


def write_manifest(directory, manifest):
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def edit_manifest(change):
    def make(directory):
        manifest = read_manifest(directory)
        change(manifest)
        write_manifest(directory, manifest)
    return make


def replace_file(directory, name, data):
    """Writes ``name`` and records its new size and sha256 in the manifest (checksums match)."""
    (directory / name).write_bytes(data)
    manifest = read_manifest(directory)
    manifest["files"][name] = {"sha256": sha256(directory / name), "bytes": len(data)}
    write_manifest(directory, manifest)


def edit_model(change):
    """Rewrites model.tflite through LiteRT's flatbuffer tools (a valid flatbuffer), checksums updated."""
    def make(directory):
        from ai_edge_litert.tools import flatbuffer_utils

        model = flatbuffer_utils.read_model(str(directory / "model.tflite"))
        change(model)
        replace_file(directory, "model.tflite", bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    return make


def rename_signature(model):
    model.signatureDefs[0].signatureKey = "walk"


def rename_state_input(model):
    for tensor_map in model.signatureDefs[0].inputs:
        name = tensor_map.name.decode() if isinstance(tensor_map.name, bytes) else tensor_map.name
        if name == "h0":
            tensor_map.name = "hidden0"


def model_bytes(change):
    def make(directory):
        replace_file(directory, "model.tflite", change((directory / "model.tflite").read_bytes()))
    return make


def double_state_sizes(manifest):
    signature = manifest["signature"]
    for state in signature["states"]:
        state["size"] *= 2
    names = {state["name"] for state in signature["states"]}
    for tensor in signature["inputs"] + signature["outputs"]:
        if tensor["name"] in names or tensor["name"].removeprefix("next_") in names:
            tensor["shape"][1] *= 2


def one_more_word(directory):
    """A vocabulary one token longer than the model's output (vocab.json and manifest agree)."""
    text = (directory / "vocab.txt").read_text() + "zebra\n"
    (directory / "vocab.txt").write_text(text)
    meta = json.loads((directory / "vocab.json").read_text())
    meta["size"] += 1
    meta["sha256"] = sha256(directory / "vocab.txt")
    replace_file(directory, "vocab.json", (json.dumps(meta, indent=2) + "\n").encode())
    manifest = read_manifest(directory)
    manifest["files"]["vocab.txt"] = {"sha256": sha256(directory / "vocab.txt"), "bytes": len(text.encode())}
    size = manifest["signature"]["vocabulary_size"] = meta["size"]
    manifest["signature"]["outputs"][0]["shape"] = [1, size]
    resize_adapter(manifest, size)
    write_manifest(directory, manifest)


def resize_adapter(manifest, size):
    """The adapter block and the step's adapter inputs for a vocabulary of ``size`` (so that the
    manifest agrees with itself, and the fault is found where the case means it to be)."""
    for tensor in manifest.get("adapter", {}).get("parameters", []) + manifest["signature"]["inputs"]:
        if tensor["name"] == "adapter_bias":
            tensor["shape"] = [size]
        elif tensor["name"] == "adapter_up":
            tensor["shape"] = [tensor["shape"][0], size]


def cut_model_to_1000_bytes(directory):
    (directory / "model.tflite").write_bytes((directory / "model.tflite").read_bytes()[:1000])


def flip_model_bytes(directory):
    data = bytearray((directory / "model.tflite").read_bytes())
    data[2000:2002] = bytes(b ^ 0xFF for b in data[2000:2002])
    (directory / "model.tflite").write_bytes(bytes(data))


def vocab_json_spec(version):
    def make(directory):
        meta = json.loads((directory / "vocab.json").read_text())
        meta["tokenizer"]["spec_version"] = version
        replace_file(directory, "vocab.json", (json.dumps(meta, indent=2) + "\n").encode())
    return make


def delete(name):
    def make(directory):
        (directory / name).unlink()
    return make


def write_raw_manifest(text):
    def make(directory):
        (directory / "manifest.json").write_text(text)
    return make


def drop(*keys):
    def change(manifest):
        parent = manifest
        for key in keys[:-1]:
            parent = parent[key]
        del parent[keys[-1]]
    return edit_manifest(change)


def engine_option(key, value):
    """Sets manifest field engine.KEY (making the engine block if an older manifest has none)."""
    return edit_manifest(lambda manifest: manifest.setdefault("engine", {}).__setitem__(key, value))


def put(value, *keys):
    def change(manifest):
        parent = manifest
        for key in keys[:-1]:
            parent = parent[key]
        parent[keys[-1]] = value
    return edit_manifest(change)


# -- helpers on the .zip's bytes --

def zipped(directory, compression=zipfile.ZIP_DEFLATED):
    """The directory as ``NAME.zip`` next to it: as ``kblm export --zip`` writes it, or with
    ``compression`` and whichever bundle files are present."""
    path = directory.with_name(directory.name + ".zip")
    names = ("model.tflite", "vocab.txt", "vocab.json", "manifest.json")
    if compression == zipfile.ZIP_DEFLATED and all((directory / name).exists() for name in names):
        write_zip(directory, path)
        return path
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name in names:
            if (directory / name).exists():
                archive.write(directory / name, name)
    return path


def entry_data_span(path, name):
    """(offset, length) of an entry's stored (compressed) bytes in the zip."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    data = path.read_bytes()
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    return info.header_offset + 30 + name_length + extra_length, info.compress_size


def flip_bytes(name, compression):
    def make(directory):
        path = zipped(directory, compression)
        offset, length = entry_data_span(path, name)
        data = bytearray(path.read_bytes())
        for i in range(offset + length // 2, offset + length // 2 + 8):
            data[i] ^= 0xFF
        path.write_bytes(bytes(data))
        return path
    return make


def declare_size(name, delta):
    """Makes the zip declare ``delta`` more (or fewer) uncompressed bytes for ``name``, in both
    the local header and the central directory."""
    def make(directory):
        path = zipped(directory)
        with zipfile.ZipFile(path) as archive:
            info, central = archive.getinfo(name), archive.start_dir
        data = bytearray(path.read_bytes())
        local = info.header_offset + 22
        data[local:local + 4] = struct.pack("<I", info.file_size + delta)
        while data[central + 46:central + 46 + len(name)] != name.encode():  # this entry's central record
            central = data.index(b"PK\x01\x02", central + 4)
        data[central + 24:central + 28] = struct.pack("<I", info.file_size + delta)
        path.write_bytes(bytes(data))
        return path
    return make


def truncate_zip(directory):
    path = zipped(directory)
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    return path


def in_zip(damage):
    def make(directory):
        damage(directory)
        return zipped(directory)
    return make


# description -> (damage(copy_dir), fragments of the error line). A damage that returns a path
# (a .zip) is run on that; otherwise on the damaged directory.
LEXICON = [("Kasia", 3), ("quokka", 2), ("Zanzibar", 5)]


def with_lexicon(*damages, entries=LEXICON):
    """A lexicon added to the copy (export.lexicon.add_to_bundle, checksums right), then damaged."""
    def make(directory):
        from export.lexicon import add_to_bundle

        add_to_bundle(directory, entries)
        for damage in damages:
            damage(directory)
    return make


def lexicon_text(text):
    """lexicon.tsv.gz holding ``text`` (gzip'd, checksums updated)."""
    import gzip

    return lambda directory: replace_file(directory, "lexicon.tsv.gz", gzip.compress(text.encode(), mtime=0))


def flip_lexicon_byte(directory):
    data = bytearray((directory / "lexicon.tsv.gz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (directory / "lexicon.tsv.gz").write_bytes(bytes(data))


BAD_BUNDLES = {
    # zips
    "zip with flipped bytes in a deflated entry": (flip_bytes("model.tflite", zipfile.ZIP_DEFLATED),
                                                   [ZIP, "entry model.tflite", "corrupt zip entry"]),
    "zip with flipped bytes in a stored entry (bad CRC-32)": (flip_bytes("model.tflite", zipfile.ZIP_STORED),
                                                              [ZIP, "entry model.tflite", "Bad CRC-32"]),
    "zip cut in half": (truncate_zip, [ZIP, "truncated or corrupt"]),
    "zip entry declaring more bytes than it holds": (declare_size("vocab.txt", +100),
                                                      [ZIP, "entry vocab.txt", "declares"]),
    "zip entry declaring fewer bytes than it holds": (declare_size("vocab.txt", -5),
                                                       [ZIP, "entry vocab.txt", "Bad CRC-32"]),
    "zip without manifest.json": (in_zip(delete("manifest.json")), [ZIP, "entry manifest.json", "missing"]),
    "zip whose model.tflite is not a TFLite model (checksums match)": (
        in_zip(model_bytes(lambda data: b"not a flatbuffer at all " * 40)),
        [ZIP, "entry model.tflite", "not a TFLite model"]),
    "zip whose vocab.json has tokenizer spec_version 7": (in_zip(vocab_json_spec(7)),
                                                          [ZIP, "entry vocab.json", "spec_version is 7"]),
    # the model
    "model.tflite that is not a TFLite flatbuffer (checksums match)": (
        model_bytes(lambda data: bytes(len(data))), ["model.tflite", "not a TFLite model"]),
    "model.tflite cut in half (checksums match)": (model_bytes(lambda data: data[:len(data) // 2]),
                                                   ["model.tflite", "not a TFLite model"]),
    "model.tflite cut short (manifest not updated)": (cut_model_to_1000_bytes,
                                                      ["model.tflite", "1,000 bytes, but manifest.json lists"]),
    "model.tflite with flipped bytes (manifest not updated)": (flip_model_bytes,
                                                               ["model.tflite", "sha256 does not match"]),
    "model.tflite without a step signature": (edit_model(rename_signature),
                                              ["model.tflite", "no signature 'step'", "walk"]),
    "model.tflite whose step signature lacks a state input": (edit_model(rename_state_input),
                                                              ["model.tflite", "hidden0", "inputs"]),
    "model.tflite whose state sizes differ from the manifest": (edit_manifest(double_state_sizes),
                                                                ["model.tflite", "input h0 is float32[1, 32]",
                                                                 "float32[1, 64]"]),
    "model.tflite with fewer outputs than the vocabulary has words": (one_more_word,
                                                                      ["model.tflite", "log-probabilities"]),
    "vocab.txt missing": (delete("vocab.txt"), ["vocab.txt", "missing"]),
    # the tokenizer block
    "manifest tokenizer spec_version 7": (put(7, "tokenizer", "spec_version"),
                                          ["manifest.json", "tokenizer.spec_version is 7"]),
    "manifest tokenizer options differ from vocab.json": (put(False, "tokenizer", "lowercase"),
                                                          ["manifest.json", "field tokenizer", "vocab.json"]),
    "manifest with an unknown tokenizer option": (put(True, "tokenizer", "stem"),
                                                  ["manifest.json", "tokenizer.stem", "not an option"]),
    "manifest without a tokenizer": (drop("tokenizer"), ["manifest.json", "field tokenizer is missing"]),
    "vocab.json with tokenizer spec_version 7": (vocab_json_spec(7), ["vocab.json", "spec_version is 7"]),
    # the manifest's structure
    "manifest.json that is not JSON": (write_raw_manifest("{not json"), ["manifest.json", "not valid JSON"]),
    "manifest.json that is a list": (write_raw_manifest("[]"), ["manifest.json", "expected a JSON object"]),
    "manifest of another format_version": (put(2, "format_version"), ["manifest.json", "format_version 2"]),
    "manifest without files": (drop("files"), ["manifest.json", "field files is missing"]),
    "manifest file entry without sha256": (drop("files", "model.tflite", "sha256"),
                                           ["manifest.json", "files.model.tflite.sha256 is missing"]),
    "manifest file size that is not a number": (put("big", "files", "vocab.txt", "bytes"),
                                                ["manifest.json", "files.vocab.txt.bytes must be"]),
    "manifest listing a file a bundle does not hold": (put({"sha256": "0" * 64, "bytes": 1}, "files", "x.bin"),
                                                       ["manifest.json", "files.x.bin"]),
    "manifest without signature": (drop("signature"), ["manifest.json", "field signature is missing"]),
    "manifest signature without states": (drop("signature", "states"),
                                          ["manifest.json", "signature.states is missing"]),
    "manifest signature with a state of size 0": (put(0, "signature", "states", 0, "size"),
                                                  ["manifest.json", "signature.states[0].size must be"]),
    "manifest vocabulary_size that is not a number": (put("30", "signature", "vocabulary_size"),
                                                      ["manifest.json", "signature.vocabulary_size must be"]),
    "manifest signature inputs that disagree with its states": (put([], "signature", "inputs"),
                                                                ["manifest.json", "signature.inputs disagrees"]),
    "manifest vocabulary_size that differs from vocab.txt": (
        edit_manifest(lambda m: (m["signature"].update(vocabulary_size=m["signature"]["vocabulary_size"] + 1),
                                 m["signature"]["outputs"][0].update(shape=[1, m["signature"]["vocabulary_size"]]),
                                 resize_adapter(m, m["signature"]["vocabulary_size"]))),
        ["vocab.txt", "tokens, but manifest.json field signature.vocabulary_size is"]),
    "manifest without quantization": (drop("quantization"), ["manifest.json", "field quantization is missing"]),
    "manifest without special_ids": (drop("special_ids"), ["manifest.json", "field special_ids is missing"]),
    "manifest special_ids that differ from vocab.json": (put({"<pad>": 1}, "special_ids"),
                                                         ["manifest.json", "field special_ids", "vocab.json"]),
    "manifest with an unknown sentence_context": (put("sometimes", "sentence_context"),
                                                  ["manifest.json", "sentence_context"]),
    # the engine's options (docs/engine.md §3)
    "manifest engine.strip_size 0": (engine_option("strip_size", 0),
                                     ["manifest.json", "field engine.strip_size must be an integer from 1 to 10, "
                                                       "not 0"]),
    "manifest engine.strip_size 11 (above the most, 10)": (engine_option("strip_size", 11),
                                                           ["manifest.json", "field engine.strip_size", "not 11"]),
    "manifest engine.strip_size that is not an integer (\"3\", 2.5, true)": (
        engine_option("strip_size", "3"), ["manifest.json", "field engine.strip_size", 'not "3"']),
    "manifest engine that is not an object": (put([3], "engine"),
                                              ["manifest.json", "field engine must be an object", "not [3]"]),
    # the lexicon (docs/engine.md §16)
    "lexicon.tsv.gz with flipped bytes (manifest not updated)": (with_lexicon(flip_lexicon_byte),
                                                                 ["lexicon.tsv.gz", "sha256 does not match"]),
    "lexicon.tsv.gz that is not gzip (checksums updated)": (
        with_lexicon(lambda d: replace_file(d, "lexicon.tsv.gz", b"Kasia\t3\n")),
        ["lexicon.tsv.gz", "not a gzip'd UTF-8 lexicon"]),
    "lexicon.tsv.gz missing": (with_lexicon(delete("lexicon.tsv.gz")), ["lexicon.tsv.gz", "missing from the bundle"]),
    "lexicon with more words than the manifest says": (
        with_lexicon(lexicon_text("Kasia\t3\nquokka\t2\nZanzibar\t5\nzebu\t1\n")),
        ["lexicon.tsv.gz", "4 words, but manifest.json field lexicon.words is 3"]),
    "lexicon line without a count": (with_lexicon(lexicon_text("Kasia\nquokka\t2\nZanzibar\t5\n")),
                                     ["lexicon.tsv.gz", "line 1: expected word<TAB>positive count"]),
    "lexicon count of 0": (with_lexicon(lexicon_text("Kasia\t0\nquokka\t2\nZanzibar\t5\n")),
                           ["lexicon.tsv.gz", "line 1", "count of 0"]),
    "lexicon out of order": (with_lexicon(lexicon_text("quokka\t2\nKasia\t3\nZanzibar\t5\n")),
                             ["lexicon.tsv.gz", "line 2", "out of order"]),
    "lexicon holding a vocabulary word": (with_lexicon(lexicon_text("Kasia\t3\nstation\t2\nZanzibar\t5\n")),
                                          ["lexicon.tsv.gz", "line 2: 'station' is in the vocabulary"]),
    "manifest lexicon format_version 2": (with_lexicon(put(2, "lexicon", "format_version")),
                                          ["manifest.json", "field lexicon.format_version must be 1"]),
    "manifest listing lexicon.tsv.gz without a lexicon block": (with_lexicon(drop("lexicon")),
                                                                ["manifest.json", "field lexicon is missing"]),
    "manifest lexicon block without the file": (with_lexicon(drop("files", "lexicon.tsv.gz")),
                                                ["manifest.json", "files.lexicon.tsv.gz is missing"]),
    # the adapter block: the step's adapter inputs and the train signature (docs/engine.md §18)
    "manifest adapter.rank 0": (put(0, "adapter", "rank"), ["manifest.json", "field adapter.rank must be a positive"]),
    "manifest adapter format_version 3": (put(3, "adapter", "format_version"),
                                          ["manifest.json", "field adapter.format_version must be 2"]),
    "manifest adapter parameters that disagree with its rank": (
        put(5, "adapter", "rank"), ["manifest.json", "field adapter.parameters must be the three arrays"]),
    # the adapter's general sample (the forgetting guard, docs/engine.md §18.3)
    "manifest adapter.general naming another file": (put("general.txt", "adapter", "general", "file"),
                                                    ["manifest.json", "field adapter.general must be"]),
    "manifest files listing adapter-general.txt without adapter.general": (
        drop("adapter", "general"), ["manifest.json", "adapter.general is missing, but files lists"]),
    "adapter-general.txt with fewer lines than the manifest says (checksums match)": (
        lambda directory: replace_file(directory, "adapter-general.txt", b"see you at the station\n"),
        ["adapter-general.txt", "1 lines, but manifest.json field adapter.general.messages"]),
    "manifest without the adapter block of a model that takes one": (
        drop("adapter"), ["manifest.json", "signature.inputs disagrees"]),
}
COMMANDS = ("inspect", "suggest", "simulate")
CASES = [(command, description) for description in BAD_BUNDLES for command in COMMANDS] + [
    ("export", "--adapter-rank -1 or 65: refused by the parser", "test_adapter_rank_is_checked_by_the_parser"),
    ("export", "--strip-size 0, 11 or 2.5: refused by the parser", "test_strip_size_is_checked_by_the_parser")]


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "messages.txt"
    path.write_text("see you at the station tomorrow\nthe train is late again\n")
    return path


def command_line(command, bundle, text_file):
    if command == "inspect":
        return ["inspect", str(bundle)]
    if command == "suggest":
        return ["suggest", str(bundle), "see you at the sta"]
    return ["simulate", str(bundle), "--text", str(text_file)]


def copy_of(toy_bundle, tmp_path):
    target = tmp_path / "user bundle"  # a space: the path is quoted nowhere, named as is
    shutil.copytree(toy_bundle, target)
    return target


@pytest.mark.parametrize("command, description", [case for case in CASES if len(case) == 2],  # the rest name their test
                         ids=[f"{case[0]}: {case[1]}" for case in CASES if len(case) == 2])
def test_bad_bundle_is_one_error_line(command, description, toy_bundle, tmp_path, text_file, capfd):
    damage, fragments = BAD_BUNDLES[description]
    directory = copy_of(toy_bundle, tmp_path)
    made = damage(directory)
    path = made if isinstance(made, Path) else directory
    assert (path.suffix == ".zip") == (ZIP in fragments)
    capfd.readouterr()
    assert main(command_line(command, path, text_file)) == 1
    out, err = capfd.readouterr()  # file-descriptor level: LiteRT's C++ output would show here too
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kblm: error: "), err
    assert "Traceback" not in err and "kblm-bundle-" not in err
    assert str(path) in lines[0]
    for fragment in fragments:
        if fragment != ZIP:
            assert fragment in lines[0]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("as_zip", [False, True], ids=["directory", "zip"])
def test_the_intact_bundle_works(command, as_zip, toy_bundle, tmp_path, text_file, capfd):
    """The baseline of the cases above: the undamaged copy passes every command."""
    directory = copy_of(toy_bundle, tmp_path)
    path = zipped(directory) if as_zip else directory
    assert main(command_line(command, path, text_file)) == 0
    out, err = capfd.readouterr()
    assert out and "error" not in err and "XNNPACK" not in err
    if command != "simulate":  # simulate draws a progress bar on stderr
        assert err == ""


def test_inspect_prints_what_an_export_without_metrics_records(toy_bundle, tmp_path, capsys):
    directory = copy_of(toy_bundle, tmp_path)
    manifest = read_manifest(directory)
    for optional in ("metrics", "run", "ops", "parameters", "created", "model"):
        manifest.pop(optional, None)
    write_manifest(directory, manifest)
    assert main(["inspect", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "checksums OK" in out and "metrics: not recorded" in out and "ops: not recorded" in out
    assert "from run: not recorded" in out and "? parameters" in out


@pytest.mark.parametrize("value", ["2.5", "true"])
def test_strip_size_must_be_an_integer(value, toy_bundle, tmp_path):
    """The other non-integers the "not an integer" case above names, at the loader."""
    from data_pipeline.errors import KblmError

    directory = copy_of(toy_bundle, tmp_path)
    engine_option("strip_size", json.loads(value))(directory)
    with pytest.raises(KblmError, match=f"field engine.strip_size must be an integer from 1 to 10, not {value}$"):
        load_bundle(directory)


@pytest.mark.parametrize("value", ["0", "11", "2.5"])
def test_strip_size_is_checked_by_the_parser(value, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["export", "R", "--out", "o", "--strip-size", value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--strip-size" in err and "error" in err, err


def test_a_manifest_without_engine_options_means_a_strip_of_3(toy_bundle, tmp_path, capsys):
    """Bundles exported before the manifest had engine.strip_size load with the old strip of 3."""
    from keyboard_lm.phone.keyboard import KeyboardEngine

    assert read_manifest(toy_bundle)["engine"] == {"strip_size": 3}  # what kblm export writes by default
    directory = copy_of(toy_bundle, tmp_path)
    drop("engine")(directory)
    engine = KeyboardEngine(load_bundle(directory))
    engine.set_text("see you at the ")
    assert engine.strip_size == 3 and len(engine.strip()) == 3
    assert main(["inspect", str(directory)]) == 0
    assert "engine: strip of 3 words (default: the manifest sets no engine.strip_size)" in capsys.readouterr().out
    engine_option("strip_size", 1)(directory)
    assert len(KeyboardEngine(load_bundle(directory)).strip()) == 1


def test_export_strip_size_reaches_the_manifest_inspect_and_the_strip(toy_run, tmp_path, capsys):
    """kblm export --strip-size 5: the manifest records it, inspect shows it, the engine shows 5 words."""
    out = tmp_path / "five"
    assert main(["export", str(toy_run), "--quantize", "float32", "--sample-messages", "20", "--out", str(out),
                 "--strip-size", "5"]) == 0
    assert read_manifest(out)["engine"] == {"strip_size": 5}
    capsys.readouterr()
    assert main(["inspect", str(out)]) == 0
    assert "engine: strip of 5 words, sentence context reset" in capsys.readouterr().out
    assert main(["suggest", str(out), "see you at the "]) == 0
    assert "[5] " in capsys.readouterr().out


def run_cli(args, **env):
    environment = {k: v for k, v in os.environ.items() if k != "KBLM_VERBOSE"}
    environment.update(env)
    environment["PYTHONPATH"] = os.pathsep.join([str(REPO), environment.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "keyboard_lm.cli", *args], capture_output=True, text=True,
                          env=environment, cwd=REPO, timeout=300)


def test_suggest_prints_only_its_own_lines(toy_bundle):
    quiet = run_cli(["suggest", str(toy_bundle), "see you at the sta"])
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert quiet.stdout.splitlines() == [quiet.stdout.strip()] and quiet.stdout.startswith("completions of 'sta': [1]")
    # LiteRT does print its line; the CLI keeps it off the console unless asked (--verbose).
    verbose = run_cli(["suggest", str(toy_bundle), "see you at the sta"], KBLM_VERBOSE="1")
    assert verbose.returncode == 0 and verbose.stdout == quiet.stdout
    assert "XNNPACK delegate" in verbose.stderr


def test_the_library_keeps_litert_quiet_without_the_cli(toy_bundle):
    """load_bundle + a step, as the harness and benchmarks use it (no CLI around it)."""
    code = (f"from keyboard_lm.phone.bundle import load_bundle; r = load_bundle({str(toy_bundle)!r}).runner(); "
            "r.step(2); print('stepped')")

    def run(**env):
        environment = {k: v for k, v in os.environ.items() if k != "KBLM_VERBOSE"}
        environment.update(env, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                              cwd=REPO, timeout=300)

    quiet, verbose = run(), run(KBLM_VERBOSE="1")
    assert quiet.returncode == verbose.returncode == 0
    assert quiet.stdout == verbose.stdout == "stepped\n"
    assert quiet.stderr == "" and "XNNPACK delegate" in verbose.stderr


def test_a_bad_model_in_a_real_process_is_one_line(toy_bundle, tmp_path):
    directory = copy_of(toy_bundle, tmp_path)
    replace_file(directory, "model.tflite", b"\0" * 4096)
    result = run_cli(["suggest", str(directory), "see you"])
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(f"kblm: error: {directory / 'model.tflite'}: not a TFLite model")


def test_captured_native_output_is_replayed_when_the_block_fails(capfd):
    with pytest.raises(RuntimeError):
        with native_output_captured():
            os.write(2, b"native: something went wrong\n")
            raise RuntimeError("creation failed")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "native: something went wrong\nafter\n"
    with native_output_captured() as captured:
        os.write(1, b"chatter\n")
    assert captured == ["chatter\n"] and capfd.readouterr() == ("", "")


def test_load_bundle_hands_out_its_verifying_runner_once(toy_bundle):
    """load_bundle runs the model once to check its signature; the first runner() reuses that
    interpreter (no second load), later ones are new, each with its own state."""
    bundle = load_bundle(toy_bundle)
    verifying = bundle._spare
    first, second = bundle.runner(), bundle.runner()
    assert first is verifying and second is not verifying
    assert (first.step(2) == second.step(2)).all()


@pytest.mark.parametrize("as_zip", [False, True], ids=["directory", "zip"])
def test_a_bundle_with_a_lexicon_loads_and_inspect_shows_it(as_zip, toy_bundle, tmp_path, capsys):
    directory = copy_of(toy_bundle, tmp_path)
    with_lexicon()(directory)
    path = zipped(directory) if as_zip else directory
    assert len(load_bundle(path).lexicon) == 3
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "lexicon: 3 words outside the vocabulary (format 1; train)" in out
    assert main(["suggest", str(path), "see you at Zan"]) == 0
    assert capsys.readouterr().out.strip() == "completions of 'zan': [1] Zanzibar"
    assert main(["inspect", str(toy_bundle)]) == 0
    assert "lexicon: none" in capsys.readouterr().out


def test_export_writes_a_lexicon_from_wordfreq(toy_run, tmp_path, capsys):
    """kblm export --lexicon wordfreq:en --lexicon-size N: the toy text's words are all in its
    vocabulary, so the lexicon is wordfreq's most frequent N words outside it."""
    out = tmp_path / "wf"
    assert main(["export", str(toy_run), "--quantize", "float32", "--sample-messages", "20", "--out", str(out),
                 "--lexicon", "wordfreq:en", "--lexicon-size", "2000"]) == 0
    assert "lexicon: 2,000 words" in capsys.readouterr().out
    manifest = read_manifest(out)
    assert manifest["lexicon"] == {"format_version": 1, "words": 2000, "sources": ["train", "wordfreq:en"]}
    bundle = load_bundle(out)
    assert "and" in bundle.lexicon and "station" not in bundle.lexicon
    assert main(["suggest", str(out), "see you at the station wit"]) == 0
    assert "[1] with" in capsys.readouterr().out
    none = tmp_path / "none"
    assert main(["export", str(toy_run), "--quantize", "float32", "--sample-messages", "20", "--out", str(none),
                 "--lexicon", "none"]) == 0
    assert "lexicon" not in read_manifest(none) and not (none / "lexicon.tsv.gz").exists()
    assert main(["export", str(toy_run), "--out", str(tmp_path / "bad"), "--lexicon", "wordfreq"]) == 1
    assert "--lexicon: expected train, none or wordfreq:LANG" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["-1", "65", "2.5"])
def test_adapter_rank_is_checked_by_the_parser(value, toy_run, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["export", str(toy_run), "--out", str(tmp_path / "b"), "--adapter-rank", value])
    assert exit_.value.code == 2 and "--adapter-rank" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
