"""Writes an adapter file (.kbad, docs/engine.md §18.4) for a bundle with numpy, struct, json and
hashlib only -- not with keyboard_lm's writer -- so the Java core's Adapter is held to the spec's
bytes, not to one port's reading of it.

    python tests/android/make_adapter_fixture.py BUNDLE_DIR OUT_DIR

OUT_DIR/bundle/       the bundle; its manifest gains an adapter block (§18) if it has none
                      (rank 3, window 8, feature_size the last state's size: Java checks only
                      that the file agrees with the block, and the toy model is never run here),
                      and loses the general sample (§18.3) if it has one: the Java tests' runs
                      on it have no forgetting guard, whatever kblm export's default
OUT_DIR/bundle-general/  the same bundle with a general sample of its own (GENERAL, written
                      here with json and hashlib: adapter-general.txt, its files entry, the
                      adapter block's general field)
OUT_DIR/adapter.kbad  the adapter: seeded values with half-float corner cases at the start of
                      adapter_bias
OUT_DIR/expected.json the arrays as float32 values, and float32 -> float16 rounding cases
                      (float32 bits -> numpy's half bits, round to nearest even), and bundle-general's
                      messages

tests/android/test_java_core.py writes it beside the Java tests' bundle (AdapterTest reads it).
"""
import hashlib
import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

MAGIC = b"KBLMADAP"
NAMES = ("adapter_bias", "adapter_down", "adapter_up")
GENERAL_FILE = "adapter-general.txt"
# bundle-general's sample (docs/engine.md §18.3): general text, partly in the toy vocabulary, partly
# not (<unk>), unlike the Java tests' user (NightlyAdaptationTest); one message a line, one not ASCII
GENERAL = [
    "i will call you tomorrow .", "the quokka met a wombat at the zoo .", "see you soon .",
    "my aunt bakes bread on sundays", "ok 👍🏽 see you", "will you call me soon ?",
    "the parliament adjourned at noon .", "call me at the park tomorrow", "are you well ?",
    "the river flooded the valley .",
]


def _block(feature_size, rank, window, vocabulary_size):
    shapes = {"adapter_bias": [vocabulary_size], "adapter_down": [feature_size, rank],
              "adapter_up": [rank, vocabulary_size]}
    return {"format_version": 2, "rank": rank, "window": window, "feature_size": feature_size,
            "parameters": [{"name": name, "shape": shapes[name]} for name in NAMES],
            "optimizer": {"name": "adam", "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}}


def kbad_bytes(model_sha256, arrays, training):
    """The file of §18.4: magic, u32 LE header length, the JSON header (the spec's key order),
    the arrays in order as little-endian half floats, row-major."""
    payload = b"".join(np.ascontiguousarray(a, dtype="<f2").tobytes() for a in arrays)
    bias, down, up = arrays
    header = {"format_version": 1, "bundle_model_sha256": model_sha256, "rank": down.shape[1],
              "feature_size": down.shape[0], "vocabulary_size": bias.shape[0], "dtype": "float16",
              "arrays": [{"name": n, "shape": list(a.shape)} for n, a in zip(NAMES, arrays)],
              "payload_sha256": hashlib.sha256(payload).hexdigest(), "training": training}
    head = json.dumps(header).encode("utf-8")
    return MAGIC + struct.pack("<I", len(head)) + head + payload


def read_kbad(data):
    """(header, [bias, down, up] as float32) of a .kbad file's bytes, checking what §18.4 lists
    except the bundle (used on the file the Java port writes)."""
    assert data[:8] == MAGIC, data[:8]
    (length,) = struct.unpack("<I", data[8:12])
    header = json.loads(data[12:12 + length].decode("utf-8"))
    assert list(header) == ["format_version", "bundle_model_sha256", "rank", "feature_size", "vocabulary_size",
                            "dtype", "arrays", "payload_sha256", "training"], list(header)
    payload = data[12 + length:]
    assert header["format_version"] == 1 and header["dtype"] == "float16"
    assert hashlib.sha256(payload).hexdigest() == header["payload_sha256"]
    arrays, offset = [], 0
    for entry, name in zip(header["arrays"], NAMES):
        assert entry["name"] == name
        count = int(np.prod(entry["shape"]))
        arrays.append(np.frombuffer(payload, "<f2", count, offset).astype(np.float32).reshape(entry["shape"]))
        offset += 2 * count
    assert offset == len(payload)
    return header, arrays


def set_general(bundle_dir, lines):
    """Gives the bundle these general messages (None: no general sample): adapter-general.txt
    (UTF-8, one a line), its files entry (sha256, bytes) and the adapter block's general field."""
    bundle_dir = Path(bundle_dir)
    manifest_path = bundle_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    (bundle_dir / GENERAL_FILE).unlink(missing_ok=True)
    manifest["files"].pop(GENERAL_FILE, None)
    manifest["adapter"].pop("general", None)
    if lines is not None:
        data = "".join(f"{line}\n" for line in lines).encode("utf-8")
        (bundle_dir / GENERAL_FILE).write_bytes(data)
        manifest["files"][GENERAL_FILE] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        manifest["adapter"]["general"] = {"file": GENERAL_FILE, "messages": len(lines)}
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _rounding_cases(rng):
    """float32 values whose nearest half float the Java port must find as numpy does."""
    halves = rng.integers(0, 0x7bff, 400).astype(np.uint16)  # finite, non-negative halves
    low = halves.view(np.float16).astype(np.float32)
    high = (halves + 1).view(np.float16).astype(np.float32)
    ties = (low.astype(np.float64) + high.astype(np.float64)) / 2  # exactly halfway: exact in float32
    wide = rng.standard_normal(600) * 10.0 ** rng.uniform(-9, 5.5, 600)
    corners = [0.0, -0.0, 1.0, -1.0, 65504.0, 65519.99, 65520.0, 65536.0, 1e10, -1e10, np.inf, -np.inf,
               2.0 ** -24, 2.0 ** -25, 2.0 ** -25 * 1.0000001, 2.0 ** -24 * 1.5, 2.0 ** -24 * 2.5, 2.0 ** -26,
               2.0 ** -14, 2.0 ** -14 - 2.0 ** -30, 2.0 ** -14 - 2.0 ** -25, 1e-45, 1e-40, 3.0e-39, 0.1, 1 / 3]
    values = np.concatenate([np.array(corners), ties, -ties[:100], wide]).astype(np.float32)
    with np.errstate(over="ignore"):
        bits = values.astype(np.float16).view(np.uint16)
    return {"float_bits": values.view(np.uint32).tolist(), "half_bits": bits.tolist()}


def _all_halves_sha256():
    """sha256 of every finite or infinite half as float32 little-endian bytes (NaNs as 0: their
    payload bits are the hardware's business)."""
    values = np.arange(0x10000, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)
    values[np.isnan(values)] = 0
    return hashlib.sha256(values.astype("<f4").tobytes()).hexdigest()


def write_fixture(bundle_dir, out_dir):
    bundle_dir, out_dir = Path(bundle_dir), Path(out_dir)
    for name in ("bundle", "bundle-general"):
        if (out_dir / name).exists():
            shutil.rmtree(out_dir / name)
    shutil.copytree(bundle_dir, out_dir / "bundle")
    manifest_path = out_dir / "bundle" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    vocabulary_size = manifest["signature"]["vocabulary_size"]
    if "adapter" not in manifest:
        manifest["adapter"] = _block(manifest["signature"]["states"][-1]["size"], 3, 8, vocabulary_size)
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    set_general(out_dir / "bundle", None)
    shutil.copytree(out_dir / "bundle", out_dir / "bundle-general")
    set_general(out_dir / "bundle-general", GENERAL)
    manifest = json.loads(manifest_path.read_text())
    block = manifest["adapter"]
    rank, features = block["rank"], block["feature_size"]

    rng = np.random.default_rng(0)
    bias = (rng.standard_normal(vocabulary_size) * 0.5).astype(np.float32)
    bias[:10] = [65504.0, -0.0, 2.0 ** -24, -(2.0 ** -24) * 1023, 2.0 ** -14, -65504.0, 1e-3, 0.0, -2.0, 0.333]
    down = (rng.standard_normal((features, rank)) / np.sqrt(features)).astype(np.float32)
    up = (rng.standard_normal((rank, vocabulary_size)) * 0.05).astype(np.float32)
    arrays = [a.astype(np.float16) for a in (bias, down, up)]
    training = {"written_by": "tests/android/make_adapter_fixture.py", "held_out_losses": [4.25, 4.0]}
    (out_dir / "adapter.kbad").write_bytes(kbad_bytes(manifest["files"]["model.tflite"]["sha256"], arrays, training))
    expected = {"rank": rank, "feature_size": features, "vocabulary_size": vocabulary_size, "training": training,
                **{name: a.astype(np.float32).reshape(-1).tolist() for name, a in zip(NAMES, arrays)},
                "rounding": _rounding_cases(rng), "all_halves_sha256": _all_halves_sha256(),
                "general_messages": GENERAL}
    (out_dir / "expected.json").write_text(json.dumps(expected))
    return out_dir


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(write_fixture(sys.argv[1], sys.argv[2]))
