"""The bundle: model.tflite + vocabulary + manifest.json, as a directory or one .zip.

Plain Python + numpy + ai_edge_litert: the phone harness loads bundles with this module,
so it never imports TensorFlow. Every file's sha256 is in the manifest and checked on load.

    bundles/NAME/
      model.tflite    the step model (signature "step")
      vocab.txt       one token per line, line number = id
      vocab.json      tokenizer spec + options, special ids (the vocabulary's own metadata)
      manifest.json   format version, signature and state layout, quantization, metrics,
                      sha256 of every file, the run it came from
"""
import hashlib
import json
import shutil
import tempfile
import weakref
import zipfile
from pathlib import Path

from data_pipeline.errors import KblmError
from data_pipeline.textio import atomic_directory, atomic_write_bytes
from data_pipeline.vocab import Vocabulary

FORMAT_VERSION = 1
FILES = ("model.tflite", "vocab.txt", "vocab.json")


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_bundle(out, tflite_bytes, vocab_dir, manifest, make_zip=False):
    """Writes the bundle directory atomically (and ``out.zip`` if asked); returns the manifest."""
    out = Path(out)
    with atomic_directory(out) as tmp:
        (tmp / "model.tflite").write_bytes(tflite_bytes)
        for name in ("vocab.txt", "vocab.json"):
            shutil.copyfile(Path(vocab_dir) / name, tmp / name)
        manifest = {**manifest, "format_version": FORMAT_VERSION,
                    "files": {name: {"sha256": sha256(tmp / name), "bytes": (tmp / name).stat().st_size}
                              for name in FILES}}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    if make_zip:
        write_zip(out, zip_path(out))
    return manifest


def zip_path(out):
    """bundles/NAME -> bundles/NAME.zip (appended, so NAME.int8 and NAME.f16 never collide)."""
    out = Path(out)
    return out.with_name(out.name + ".zip")


def write_zip(directory, zip_path):
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in (*FILES, "manifest.json"):
            archive.write(Path(directory) / name, name)
    atomic_write_bytes(zip_path, buffer.getvalue())


MAX_ENTRY_BYTES = 1 << 30  # 1 GiB: far above any phone model, far below a zip bomb


def _safe_extract(archive_path, target):
    """Extracts the bundle's four files, and nothing else, from a zip into ``target``."""
    with zipfile.ZipFile(archive_path) as archive:
        for info in archive.infolist():
            name = info.filename
            is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
            if name.startswith(("/", "\\")) or ".." in Path(name).parts or is_link or \
                    target.resolve() not in (target / name).resolve().parents:
                raise KblmError(f"{archive_path}: entry {name!r} would escape the bundle directory; refusing it")
            if name not in (*FILES, "manifest.json"):
                raise KblmError(f"{archive_path}: unexpected entry {name!r}; a bundle holds only "
                                f"{[*FILES, 'manifest.json']}")
            if info.file_size > MAX_ENTRY_BYTES:
                raise KblmError(f"{archive_path}: entry {name!r} unpacks to {info.file_size:,} bytes; refusing it")
        for name in archive.namelist():
            with archive.open(name) as source, open(target / name, "wb") as sink:
                shutil.copyfileobj(source, sink)


class Bundle:
    """A verified bundle on disk: manifest, vocabulary tokens and the .tflite path."""

    def __init__(self, directory, manifest, vocab, temporary=False):
        self.directory = Path(directory)
        self.manifest = manifest
        self.vocab = vocab
        if temporary:  # a zip's extraction: removed with the Bundle object
            weakref.finalize(self, shutil.rmtree, self.directory, True)

    @property
    def model_path(self):
        return self.directory / "model.tflite"

    @property
    def state_layout(self):
        return [(s["name"], s["size"]) for s in self.manifest["signature"]["states"]]

    def runner(self, num_threads=1):
        from export.runtime import StepRunner

        return StepRunner(self.model_path, self.state_layout, num_threads)


def load_bundle(path):
    """Loads and verifies a bundle directory or .zip (a zip is extracted to a temp dir that
    lives as long as the returned Bundle)."""
    path = Path(path)
    if not path.exists():
        raise KblmError(f"{path}: no such bundle")
    if path.is_dir():
        return _verified(path, temporary=False)
    if not zipfile.is_zipfile(path):
        raise KblmError(f"{path}: neither a bundle directory nor a .zip")
    target = Path(tempfile.mkdtemp(prefix="kblm-bundle-"))
    try:
        _safe_extract(path, target)
        return _verified(target, temporary=True)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def _verified(path, temporary):
    manifest_path = path / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KblmError(f"{manifest_path}: missing; not a keyboard-lm bundle") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise KblmError(f"{manifest_path}: not valid JSON ({e})") from None
    if not isinstance(manifest, dict):
        raise KblmError(f"{manifest_path}: expected a JSON object, got {type(manifest).__name__}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise KblmError(f"{manifest_path}: bundle format_version {manifest.get('format_version')!r}; "
                        f"this keyboard-lm reads format {FORMAT_VERSION}")
    files = manifest.get("files") if isinstance(manifest.get("files"), dict) else {}
    for name in FILES:
        expected = (files.get(name) or {}).get("sha256")
        if not (path / name).is_file():
            raise KblmError(f"{path / name}: missing from the bundle")
        if sha256(path / name) != expected:
            raise KblmError(f"{path / name}: sha256 does not match manifest.json (tampered or corrupt)")
    vocab = Vocabulary.load(path)  # checks the tokenizer spec version and special ids
    size = (manifest.get("signature") or {}).get("vocabulary_size")
    if len(vocab) != size:
        raise KblmError(f"{path / 'vocab.txt'}: {len(vocab)} tokens, but the model outputs {size}")
    return Bundle(path, manifest, vocab, temporary)
