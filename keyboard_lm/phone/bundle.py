"""Loading the bundle: model.tflite + vocabulary + manifest.json, as a directory or one .zip.

Plain Python + numpy + ai_edge_litert: the phone harness loads bundles with this module,
so it never imports TensorFlow. Every file's sha256 is in the manifest and checked on load.
Writing a bundle is ``export.bundle``'s job; the format (FORMAT_VERSION, FILES) lives here.

    bundles/NAME/
      model.tflite    the step model (signature "step")
      vocab.txt       one token per line, line number = id
      vocab.json      tokenizer spec + options, special ids (the vocabulary's own metadata)
      manifest.json   format version, signature and state layout, quantization, the
                      engine's options (strip size), metrics, sha256 of every file, the run
                      it came from
      lexicon.tsv.gz  optional: words outside the vocabulary with counts (keyboard_lm.phone.lexicon)
      adapter-general.txt  optional: general messages, one a line, for the on-device
                      adaptation's forgetting guard (docs/engine.md §18.3)
"""
import dataclasses
import hashlib
import json
import shutil
import tempfile
import weakref
import zipfile
from pathlib import Path

from data_pipeline.errors import KblmError
from data_pipeline.vocab import Vocabulary
from keyboard_lm.phone.runtime import one_line

FORMAT_VERSION = 1
FILES = ("model.tflite", "vocab.txt", "vocab.json")
GENERAL_FILE = "adapter-general.txt"  # present when the adapter block names it (docs/engine.md §18.3)
# present when the manifest has a lexicon block (docs/engine.md §16), or the adapter block a general sample
OPTIONAL_FILES = ("lexicon.tsv.gz", GENERAL_FILE)
DEFAULT_STRIP_SIZE = 3  # words on the strip when the manifest does not say (bundles before the field)
MAX_STRIP_SIZE = 10  # docs/engine.md §3: the manifest's engine.strip_size lies in [1, MAX_STRIP_SIZE]


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


MAX_ENTRY_BYTES = 1 << 30  # 1 GiB: far above any phone model, far below a zip bomb
BUNDLE_NAMES = (*FILES, *OPTIONAL_FILES, "manifest.json")
CHUNK = 1 << 20


def _made_by_export(path):
    """True for a directory ``kblm export`` wrote: only bundle files, a manifest with a version."""
    path = Path(path)
    if not {entry.name for entry in path.iterdir()} <= set(BUNDLE_NAMES):
        return False
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "format_version" in manifest


def _zip_made_by_export(path):
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except _zip_errors():
        return False
    return "manifest.json" in names and names <= set(BUNDLE_NAMES)


# data_pipeline.textio.check_output kinds: may a command replace what is at the path?
BUNDLE_OUTPUT = ("bundle directory", _made_by_export, True)
BUNDLE_ZIP_OUTPUT = ("bundle .zip", _zip_made_by_export, False)


def _zip_errors():
    """What reading a corrupt zip raises (bad headers, CRC, truncated or garbled streams)."""
    import lzma
    import zlib

    return (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, lzma.LZMAError,
            NotImplementedError, RuntimeError, ValueError, OSError)


class Names:
    """How errors name a bundle's files: the user's path, never a temporary extraction.

    A directory bundle's files are paths (``bundles/b/model.tflite``); a zip's are entries
    (``bundles/b.zip (entry model.tflite)``)."""

    def __init__(self, source, directory=None):
        self.source = Path(source)
        self.directory = Path(directory) if directory is not None else None  # a zip's extraction

    def __call__(self, name):
        return f"{self.source} (entry {name})" if self.directory is not None else str(self.source / name)

    def relabel(self, message):
        """``message`` with the extraction directory's paths replaced by the user's names."""
        if self.directory is None:
            return message
        for name in BUNDLE_NAMES:
            message = message.replace(str(self.directory / name), self(name))
        return message.replace(str(self.directory), str(self.source))


def _safe_extract(archive_path, target):
    """Extracts the bundle's four files, and nothing else, from a zip into ``target``; any
    corruption (bad CRC, truncated stream, an entry whose declared size lies) is a KblmError
    naming the zip and the entry."""
    errors = _zip_errors()
    names = Names(archive_path, target)
    try:
        archive = zipfile.ZipFile(archive_path)
    except errors as e:
        raise KblmError(f"{archive_path}: not a readable zip ({one_line(e)})") from None
    with archive:
        seen = set()
        for info in archive.infolist():
            name = info.filename
            is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
            if name.startswith(("/", "\\")) or ".." in Path(name).parts or is_link or \
                    target.resolve() not in (target / name).resolve().parents:
                raise KblmError(f"{archive_path}: entry {name!r} would escape the bundle directory; refusing it")
            if name not in BUNDLE_NAMES:
                raise KblmError(f"{archive_path}: unexpected entry {name!r}; a bundle holds only "
                                f"{list(BUNDLE_NAMES)}")
            if name in seen:
                raise KblmError(f"{archive_path}: entry {name!r} appears twice; refusing the zip")
            seen.add(name)
            if info.file_size > MAX_ENTRY_BYTES:
                raise KblmError(f"{archive_path}: entry {name!r} unpacks to {info.file_size:,} bytes; refusing it")
        for info in archive.infolist():
            _extract_entry(archive, info, target / info.filename, names(info.filename), errors)


def _extract_entry(archive, info, destination, where, errors):
    try:
        source = archive.open(info)
    except errors as e:  # a bad local header, an encrypted entry, an unknown compression
        raise KblmError(f"{where}: unreadable zip entry ({one_line(e)})") from None
    written = 0
    with source, open(destination, "wb") as sink:
        while True:
            try:
                chunk = source.read(CHUNK)
            except errors as e:  # bad CRC-32, a garbled or truncated compressed stream
                raise KblmError(f"{where}: corrupt zip entry ({one_line(e)})") from None
            if not chunk:
                break
            written += len(chunk)
            sink.write(chunk)
    if written != info.file_size:  # the stream ended early: the declared size is false
        raise KblmError(f"{where}: holds {written:,} bytes, but the zip declares {info.file_size:,} (corrupt zip)")


class Bundle:
    """A verified bundle on disk: manifest, vocabulary tokens and the .tflite path.

    ``names`` says how errors name its files (the user's path, not an extraction)."""

    def __init__(self, directory, manifest, vocab, temporary=False, names=None):
        self.directory = Path(directory)
        self.manifest = manifest
        self.vocab = vocab
        self.names = names or Names(self.directory)
        self._spare = None  # the runner made while verifying, handed out by the first runner()
        self.lexicon = None  # the verified lexicon (keyboard_lm.phone.lexicon.Lexicon), if the bundle has one
        self.adapter = None  # the user's adapter arrays every runner feeds (docs/engine.md §18), if one is loaded
        self.general_messages = None  # the adapter block's general sample (§18.3: the forgetting guard), if any
        if temporary:  # a zip's extraction: removed with the Bundle object
            weakref.finalize(self, shutil.rmtree, self.directory, True)

    @property
    def model_path(self):
        return self.directory / "model.tflite"

    @property
    def strip_size(self):
        """Words on the suggestion strip: the manifest's engine.strip_size (docs/engine.md §3)."""
        return manifest_strip_size(self.manifest)

    @property
    def state_layout(self):
        return [(s["name"], s["size"]) for s in self.manifest["signature"]["states"]]

    @property
    def adapter_block(self):
        """The manifest's adapter block (docs/engine.md §18), or None: a bundle without ``train``."""
        return self.manifest.get("adapter")

    @property
    def model_sha256(self):
        return self.manifest["files"]["model.tflite"]["sha256"]

    def runner(self, num_threads=1):
        """A fresh StepRunner (empty state) whose signature matches the manifest, adding the
        loaded adapter (if any) to every step."""
        from keyboard_lm.phone.runtime import StepRunner

        spare, self._spare = self._spare, None
        if spare is None or spare.num_threads != num_threads:
            spare = StepRunner(self.model_path, self.state_layout, num_threads,
                               vocabulary_size=self.manifest["signature"]["vocabulary_size"],
                               name=self.names("model.tflite"),
                               against=f"{self.names('manifest.json')} field signature", adapter=self.adapter_block)
        spare.set_adapter(self.adapter)
        return spare

    def trainer(self, num_threads=1):
        """The ``train`` signature's runner (runtime.TrainRunner); the bundle must have an adapter block."""
        from keyboard_lm.phone.runtime import TrainRunner

        if self.adapter_block is None:
            raise KblmError(f"{self.names('manifest.json')}: the bundle has no train signature (no adapter block); "
                            "re-export it with this keyboard-lm (kblm export, without --adapter-rank 0)")
        if self.adapter_block["format_version"] != ADAPTER_FORMAT:
            raise KblmError(f"{self.names('manifest.json')}: field adapter.format_version is "
                            f"{self.adapter_block['format_version']}: its train signature is from an earlier keyboard-lm "
                            f"(one sentence per window); re-export the bundle with this one (adapter format "
                            f"{ADAPTER_FORMAT}) to adapt")
        return TrainRunner(self.model_path, self.state_layout, self.adapter_block, num_threads,
                           name=self.names("model.tflite"))


def load_bundle(path):
    """Loads and verifies a bundle directory or .zip (a zip is extracted to a temp dir that
    lives as long as the returned Bundle): the manifest's fields, every file's size and
    sha256, the tokenizer spec, the vocabulary, and the model itself (it loads in LiteRT and
    its ``step`` signature matches the manifest). Any fault is a one-line KblmError."""
    path = Path(path)
    if not path.exists():
        raise KblmError(f"{path}: no such bundle")
    if path.is_dir():
        return _verified(path, False, Names(path))
    if not zipfile.is_zipfile(path):
        try:
            with open(path, "rb") as f:
                head = f.read(4)
        except OSError as e:
            raise KblmError(f"{path}: unreadable ({e.strerror})") from None
        if head.startswith(b"PK") or path.suffix.lower() == ".zip":
            raise KblmError(f"{path}: not a readable zip (truncated or corrupt: no end-of-archive record)")
        raise KblmError(f"{path}: neither a bundle directory nor a .zip")
    target = Path(tempfile.mkdtemp(prefix="kblm-bundle-"))
    try:
        _safe_extract(path, target)
        return _verified(target, True, Names(path, target))
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


_MISSING = object()


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value):
    text = json.dumps(value, ensure_ascii=False) if value is not _MISSING else "nothing"
    return text if len(text) <= 60 else text[:57] + "..."


class _Fields:
    """Typed access to manifest.json's fields; a missing or ill-typed one is a one-line error."""

    def __init__(self, where):
        self.where = where

    def error(self, field, problem):
        return KblmError(f"{self.where}: field {field} {problem}")

    def need(self, parent, key, field, check, what):
        value = parent.get(key, _MISSING) if isinstance(parent, dict) else _MISSING
        if value is _MISSING:
            raise self.error(field, f"is missing ({what} expected)")
        if not check(value):
            raise self.error(field, f"must be {what}, not {_show(value)}")
        return value


def manifest_strip_size(manifest, where="manifest.json"):
    """The manifest's ``engine.strip_size`` (docs/engine.md §3): DEFAULT_STRIP_SIZE when the
    manifest has no ``engine`` block or the block no ``strip_size`` (bundles made before the
    field); anything but an integer in [1, MAX_STRIP_SIZE] is a one-line KblmError."""
    engine = manifest.get("engine", _MISSING) if isinstance(manifest, dict) else _MISSING
    if engine is _MISSING:
        return DEFAULT_STRIP_SIZE
    if not isinstance(engine, dict):
        raise KblmError(f"{where}: field engine must be an object with strip_size, not {_show(engine)}")
    size = engine.get("strip_size", DEFAULT_STRIP_SIZE)
    if not _is_int(size) or not 1 <= size <= MAX_STRIP_SIZE:
        raise KblmError(f"{where}: field engine.strip_size must be an integer from 1 to {MAX_STRIP_SIZE}, "
                        f"not {_show(size)}")
    return size


def check_manifest(manifest, where):
    """Validates manifest.json's structure (``where``: how to name it); returns nothing.

    Required: format_version, files (sha256 and bytes of every file), signature (name,
    inputs, outputs, states, vocabulary_size, consistent with each other), quantization,
    tokenizer (this toolkit's spec version, known options), special_ids. Optional:
    sentence_context ("reset" or "carry"), engine.strip_size (an integer from 1 to
    MAX_STRIP_SIZE; 3 if absent); the informational created, model, parameters, ops,
    metrics and run are not needed to run the model."""
    from data_pipeline.tokenization import SPEC_VERSION, TokenizerOptions
    from keyboard_lm.phone.runtime import SIGNATURE, signature_tensors

    fields = _Fields(where)
    if not isinstance(manifest, dict):
        raise KblmError(f"{where}: expected a JSON object, got {type(manifest).__name__}")
    version = manifest.get("format_version")
    if not _is_int(version) or version != FORMAT_VERSION:
        raise KblmError(f"{where}: bundle format_version {version!r}; this keyboard-lm reads format {FORMAT_VERSION}")

    files = fields.need(manifest, "files", "files", lambda v: isinstance(v, dict), "an object of file entries")
    for name in files:
        if name not in FILES + OPTIONAL_FILES:
            raise fields.error(f"files.{name}", f"names a file a bundle does not hold (it holds {list(FILES)} "
                                                f"and optionally {list(OPTIONAL_FILES)})")
    lexicon = manifest.get("lexicon", _MISSING)
    if lexicon is not _MISSING:
        from keyboard_lm.phone.lexicon import FILE, FORMAT_VERSION as LEXICON_FORMAT

        if not isinstance(lexicon, dict):
            raise fields.error("lexicon", f"must be an object with format_version and words, not {_show(lexicon)}")
        fields.need(lexicon, "format_version", "lexicon.format_version", lambda v: _is_int(v) and v == LEXICON_FORMAT,
                    f"{LEXICON_FORMAT} (the lexicon format this keyboard-lm reads)")
        fields.need(lexicon, "words", "lexicon.words", lambda v: _is_int(v) and v > 0, "a positive word count")
        if FILE not in files:
            raise fields.error(f"files.{FILE}", "is missing, but the manifest has a lexicon block")
    elif OPTIONAL_FILES[0] in files:
        raise fields.error("lexicon", f"is missing, but files lists {OPTIONAL_FILES[0]}")
    for name in [*FILES, *(name for name in OPTIONAL_FILES if name in files)]:
        entry = fields.need(files, name, f"files.{name}", lambda v: isinstance(v, dict), "an object with sha256 and bytes")
        fields.need(entry, "sha256", f"files.{name}.sha256",
                    lambda v: isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v),
                    "64 lowercase hex digits")
        fields.need(entry, "bytes", f"files.{name}.bytes", lambda v: _is_int(v) and v >= 0, "a byte count")

    signature = fields.need(manifest, "signature", "signature", lambda v: isinstance(v, dict),
                            "an object with states and vocabulary_size")
    fields.need(signature, "name", "signature.name", lambda v: v == SIGNATURE, repr(SIGNATURE))
    states = fields.need(signature, "states", "signature.states", lambda v: isinstance(v, list) and v,
                         "a non-empty list of the state tensors")
    for i, state in enumerate(states):
        if not isinstance(state, dict):
            raise fields.error(f"signature.states[{i}]", f"must be an object with name and size, not {_show(state)}")
        fields.need(state, "name", f"signature.states[{i}].name", lambda v: isinstance(v, str) and v, "a tensor name")
        fields.need(state, "size", f"signature.states[{i}].size", lambda v: _is_int(v) and v > 0, "a positive size")
    names = [state["name"] for state in states]
    if len(set(names)) != len(names):
        raise fields.error("signature.states", f"names a tensor twice ({names})")
    size = fields.need(signature, "vocabulary_size", "signature.vocabulary_size", lambda v: _is_int(v) and v > 0,
                       "a positive integer")
    adapter = manifest.get("adapter")
    if adapter is not None:
        check_adapter_block(adapter, size, fields)
    inputs, outputs = signature_tensors([(s["name"], s["size"]) for s in states], size, adapter)
    for key, expected in (("inputs", inputs), ("outputs", outputs)):
        listed = fields.need(signature, key, f"signature.{key}", lambda v: isinstance(v, list), "a list of tensors")
        if listed != expected:
            raise fields.error(f"signature.{key}", "disagrees with signature.states and vocabulary_size (expected "
                               + ", ".join(f"{t['name']} {t['dtype']}{t['shape']}" for t in expected) + ")")
    if adapter is not None and "general" in adapter:
        if GENERAL_FILE not in files:
            raise fields.error(f"files.{GENERAL_FILE}", "is missing, but the adapter block names it")
    elif GENERAL_FILE in files:
        raise fields.error("adapter.general", f"is missing, but files lists {GENERAL_FILE}")

    fields.need(manifest, "quantization", "quantization", lambda v: isinstance(v, str) and v, "a mode name")
    tokenizer = fields.need(manifest, "tokenizer", "tokenizer", lambda v: isinstance(v, dict),
                            "an object with spec_version and options")
    spec = tokenizer.get("spec_version", _MISSING)
    if not _is_int(spec) or spec != SPEC_VERSION:
        raise fields.error("tokenizer.spec_version", f"is {_show(spec)}, but this keyboard-lm tokenizes by spec "
                                                     f"{SPEC_VERSION}; re-export the bundle with it")
    defaults = {f.name: f.default for f in dataclasses.fields(TokenizerOptions)}
    for key, value in tokenizer.items():
        if key == "spec_version":
            continue
        if key not in defaults:
            raise fields.error(f"tokenizer.{key}", f"is not an option of tokenizer spec {SPEC_VERSION} "
                                                   f"(options: {sorted(defaults)})")
        if type(value) is not type(defaults[key]):
            raise fields.error(f"tokenizer.{key}", f"must be a {type(defaults[key]).__name__}, not {_show(value)}")
    fields.need(manifest, "special_ids", "special_ids", lambda v: isinstance(v, dict), "an object of token ids")
    context = manifest.get("sentence_context", "reset")
    if context not in ("reset", "carry"):
        raise fields.error("sentence_context", f"is {_show(context)}, expected \"reset\" or \"carry\"")
    manifest_strip_size(manifest, where)


ADAPTER_FORMAT = 2  # docs/engine.md §18: the manifest's adapter block (2: train takes reset, windows are packed)
OLD_ADAPTER_FORMAT = 1  # a train signature without reset: step runs, kblm adapt asks to re-export
ADAPTER_FILE_FORMAT = 1  # §18.4: the .kbad file
ADAPTER_PARAMETERS = ("adapter_bias", "adapter_down", "adapter_up")
DEFAULT_GENERAL_MESSAGES = 200  # kblm export's general sample for the adapter's forgetting guard (§18.3)
DEFAULT_ADAPTER_RANK = 3  # kblm export's adapter rank when not told (docs/engine.md §18; 0: no train signature)


def check_adapter_block(adapter, vocabulary_size, fields):
    """The manifest's adapter block (§18): format, rank, window, feature size, the parameters'
    names and shapes."""
    if not isinstance(adapter, dict):
        raise fields.error("adapter", f"must be an object (docs/engine.md §18), not {_show(adapter)}")
    fields.need(adapter, "format_version", "adapter.format_version",
                lambda v: _is_int(v) and v in (ADAPTER_FORMAT, OLD_ADAPTER_FORMAT),
                f"{ADAPTER_FORMAT} (the adapter format this keyboard-lm reads)")
    rank = fields.need(adapter, "rank", "adapter.rank", lambda v: _is_int(v) and v > 0, "a positive integer")
    fields.need(adapter, "window", "adapter.window", lambda v: _is_int(v) and v > 0, "a positive integer")
    features = fields.need(adapter, "feature_size", "adapter.feature_size", lambda v: _is_int(v) and v > 0,
                           "a positive integer")
    expected = [{"name": "adapter_bias", "shape": [vocabulary_size]},
                {"name": "adapter_down", "shape": [features, rank]},
                {"name": "adapter_up", "shape": [rank, vocabulary_size]}]
    fields.need(adapter, "parameters", "adapter.parameters", lambda v: v == expected,
                "the three arrays of docs/engine.md §18 with shapes from rank, feature_size and the vocabulary ("
                + ", ".join(f"{p['name']} {p['shape']}" for p in expected) + ")")
    if "general" in adapter:
        fields.need(adapter, "general", "adapter.general",
                    lambda v: isinstance(v, dict) and set(v) == {"file", "messages"} and v["file"] == GENERAL_FILE
                    and _is_int(v["messages"]) and v["messages"] > 0,
                    f'{{"file": "{GENERAL_FILE}", "messages": <a positive count>}}')


def _general_messages(path, count, where):
    """The general sample's messages, one a line; its sha256 was checked with every file."""
    try:
        lines = path.read_bytes().decode("utf-8").split("\n")
    except UnicodeDecodeError as e:
        raise KblmError(f"{where}: not UTF-8 (byte {e.start})") from None
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) != count:
        raise KblmError(f"{where}: {len(lines):,} lines, but manifest.json field adapter.general.messages "
                        f"is {count:,}")
    return lines


def _verified(path, temporary, names):
    from keyboard_lm.phone.runtime import StepRunner

    where = names("manifest.json")
    manifest_path = path / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KblmError(f"{where}: missing; not a keyboard-lm bundle") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise KblmError(f"{where}: not valid JSON ({e})") from None
    check_manifest(manifest, where)
    for name in [*FILES, *(name for name in OPTIONAL_FILES if name in manifest["files"])]:
        file = path / name
        if not file.is_file():
            raise KblmError(f"{names(name)}: missing from the bundle")
        size, listed = file.stat().st_size, manifest["files"][name]["bytes"]
        if size != listed:
            raise KblmError(f"{names(name)}: {size:,} bytes, but manifest.json lists {listed:,} "
                            "(truncated, replaced or corrupt)")
        if sha256(file) != manifest["files"][name]["sha256"]:
            raise KblmError(f"{names(name)}: sha256 does not match manifest.json (tampered or corrupt)")
    try:
        vocab = Vocabulary.load(path)  # checks vocab.json's tokenizer spec version and special ids
    except KblmError as e:
        raise KblmError(names.relabel(str(e))) from None
    for key in ("tokenizer", "special_ids"):
        if manifest[key] != vocab.metadata.get(key):
            raise KblmError(f"{where}: field {key} is {_show(manifest[key])}, but {names('vocab.json')} says "
                            f"{_show(vocab.metadata.get(key))}")
    size = manifest["signature"]["vocabulary_size"]
    if len(vocab) != size:
        raise KblmError(f"{names('vocab.txt')}: {len(vocab):,} tokens, but manifest.json field "
                        f"signature.vocabulary_size is {size:,}")
    bundle = Bundle(path, manifest, vocab, temporary, names)
    if "general" in (manifest.get("adapter") or {}):
        bundle.general_messages = _general_messages(path / GENERAL_FILE, manifest["adapter"]["general"]["messages"],
                                                    names(GENERAL_FILE))
    if "lexicon" in manifest:
        from keyboard_lm.phone.lexicon import FILE, Lexicon

        bundle.lexicon = Lexicon.parse((path / FILE).read_bytes(), vocab, manifest["lexicon"]["words"], names(FILE))
    # Loads the model once: it must run in LiteRT with the signature the manifest describes.
    bundle._spare = StepRunner(bundle.model_path, bundle.state_layout, 1, vocabulary_size=size,
                               name=names("model.tflite"), against=f"{where} field signature",
                               adapter=manifest.get("adapter"))
    return bundle
