"""Writing the bundle: model.tflite + vocabulary + manifest.json, as a directory and one .zip.

The format itself (FORMAT_VERSION, FILES, the checks made on load) lives with the loader in
``keyboard_lm.phone.bundle``, which the phone harness uses without TensorFlow.
"""
import json
import shutil
import zipfile
from pathlib import Path

from data_pipeline.textio import atomic_directory, atomic_write_bytes
from keyboard_lm.phone.bundle import FILES, FORMAT_VERSION, GENERAL_FILE, OPTIONAL_FILES, manifest_strip_size, sha256


def write_bundle(out, tflite_bytes, vocab_dir, manifest, make_zip=False, lexicon=None, general=None):
    """Writes the bundle directory atomically (and ``out.zip`` if asked); returns the manifest.

    A manifest the loader would refuse for its engine options (engine.strip_size, docs/engine.md
    §3) is refused here, before anything is written. ``lexicon``: the lexicon file's bytes
    (``export.lexicon``), with the manifest's ``lexicon`` block; None: a bundle without one.
    ``general``: the adapter's general sample (messages), with the adapter block's ``general``
    (docs/engine.md §18.3)."""
    out = Path(out)
    manifest_strip_size(manifest, f"{out / 'manifest.json'}")
    with atomic_directory(out) as tmp:
        (tmp / "model.tflite").write_bytes(tflite_bytes)
        for name in ("vocab.txt", "vocab.json"):
            shutil.copyfile(Path(vocab_dir) / name, tmp / name)
        if lexicon is not None:
            (tmp / OPTIONAL_FILES[0]).write_bytes(lexicon)
        if general is not None:
            (tmp / GENERAL_FILE).write_bytes("".join(f"{m}\n" for m in general).encode("utf-8"))
        manifest = {**manifest, "format_version": FORMAT_VERSION,
                    "files": {name: {"sha256": sha256(tmp / name), "bytes": (tmp / name).stat().st_size}
                              for name in (*FILES, *OPTIONAL_FILES) if (tmp / name).exists()}}
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
        for name in (*FILES, *OPTIONAL_FILES, "manifest.json"):
            if (Path(directory) / name).exists():
                archive.write(Path(directory) / name, name)
    atomic_write_bytes(zip_path, buffer.getvalue())
