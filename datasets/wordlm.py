"""Word-level language-modelling corpora: Penn Treebank, WikiText-2 and any plain text.

Published formats (as used by AWD-LSTM and the EGRU paper's ``benchmarks/lm``):

* Penn Treebank (Mikolov's preprocessing): ``ptb.train.txt``, ``ptb.valid.txt``,
  ``ptb.test.txt``; one sentence per line, tokens separated by spaces, rare words already
  replaced by ``<unk>``, 10,000 word types.
* WikiText-2 (Merity et al. 2016): ``wiki.train.tokens``, ``wiki.valid.tokens``,
  ``wiki.test.tokens``; tokenised text with ``<unk>`` for rare words, ``= Heading =`` lines and
  blank lines, 33,278 word types.

Every line (blank ones included) becomes its whitespace-separated tokens followed by ``<eos>``.
The vocabulary is built from the training split in order of first appearance; a valid/test token
unseen in training maps to ``<unk>``. Ids are int64 tensors ``[N]``; :func:`batchify` cuts them
into ``B`` streams, time-first ``[N // B, B]``, and :func:`bptt_batches` yields
``(input [T, B], target [T, B])`` segments for truncated BPTT.

For an offline corpus (no download), :func:`corpus_from_text` accepts any text string or file,
lower-cases it, splits words and punctuation, keeps the ``max_vocab`` most frequent words
(the rest ``<unk>``) and splits the lines 80/10/10 into train/valid/test.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

UNK, EOS = "<unk>", "<eos>"
FILES = {
    "ptb": ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"),
    "wikitext2": ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"),
}


@dataclass
class Vocabulary:
    """Word <-> id maps: ``itos[i]`` is the word of id ``i``, ``stoi`` its inverse."""

    itos: list[str]

    def __post_init__(self) -> None:
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("Vocabulary: duplicate words")

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str]) -> Tensor:
        """Ids of ``tokens`` (unknown words -> ``<unk>``; ValueError if it has none)."""
        unk = self.stoi.get(UNK)
        ids = []
        for w in tokens:
            i = self.stoi.get(w, unk)
            if i is None:
                raise ValueError(f"Vocabulary: word {w!r} is not in the training vocabulary "
                                 f"and there is no {UNK} entry")
            ids.append(i)
        return torch.tensor(ids, dtype=torch.int64)

    def decode(self, ids: Sequence[int] | Tensor) -> list[str]:
        return [self.itos[int(i)] for i in ids]


@dataclass
class WordCorpus:
    """Three splits of word ids (``[N]`` int64) and the training vocabulary."""

    train: Tensor
    valid: Tensor
    test: Tensor
    vocab: Vocabulary
    name: str = "text"


def tokenize_lines(lines: Sequence[str]) -> list[str]:
    """Whitespace tokens of every line, each line closed by ``<eos>`` (the published recipe)."""
    out: list[str] = []
    for line in lines:
        out.extend(line.split())
        out.append(EOS)
    return out


def build_vocabulary(tokens: Sequence[str]) -> Vocabulary:
    """Words in order of first appearance in ``tokens`` (the training split)."""
    seen: dict[str, None] = {}
    for w in tokens:
        seen.setdefault(w, None)
    return Vocabulary(list(seen))


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise ValueError(f"word corpus: missing file {path}")
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"word corpus: {path} is not UTF-8 text ({exc.reason})") from None


def load_word_corpus(root: str | Path, kind: str | None = None) -> WordCorpus:
    """Read PTB (``kind="ptb"``) or WikiText-2 (``"wikitext2"``) from directory ``root``;
    ``kind=None`` detects which files are there."""
    root = Path(root)
    if kind is None:
        found = [k for k, names in FILES.items() if (root / names[0]).is_file()]
        if not found:
            raise ValueError(f"word corpus: {root} holds neither {FILES['ptb'][0]} nor "
                             f"{FILES['wikitext2'][0]}")
        kind = found[0]
    if kind not in FILES:
        raise ValueError(f"word corpus: kind must be one of {sorted(FILES)}, got {kind!r}")
    splits = [tokenize_lines(_read_lines(root / name)) for name in FILES[kind]]
    if len(splits[0]) <= len(_read_lines(root / FILES[kind][0])):
        raise ValueError(f"word corpus: {root / FILES[kind][0]} has no words")
    vocab = build_vocabulary(splits[0])
    train, valid, test = (vocab.encode(s) for s in splits)
    return WordCorpus(train, valid, test, vocab, kind)


def load_ptb(root: str | Path) -> WordCorpus:
    """Penn Treebank from ``root`` (``ptb.{train,valid,test}.txt``)."""
    return load_word_corpus(root, "ptb")


def load_wikitext2(root: str | Path) -> WordCorpus:
    """WikiText-2 from ``root`` (``wiki.{train,valid,test}.tokens``)."""
    return load_word_corpus(root, "wikitext2")


_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[.,!?;:]")


def corpus_from_text(text: str | Path, *, max_vocab: int = 10000,
                     split: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> WordCorpus:
    """A word-level corpus from any text (a string, or a path to a UTF-8 file): lower-cased
    words and punctuation per line + ``<eos>``, the ``max_vocab - 2`` most frequent training words
    kept (others ``<unk>``), lines split contiguously by ``split`` (train, valid, test)."""
    if isinstance(text, Path):
        text = "\n".join(_read_lines(text))
    if not isinstance(text, str):
        raise ValueError(f"corpus_from_text: text must be a str or a Path, got {type(text).__name__}")
    if len(split) != 3 or min(split) <= 0:
        raise ValueError(f"corpus_from_text: split must be three positive fractions, got {split}")
    if max_vocab < 3:
        raise ValueError(f"corpus_from_text: max_vocab must be >= 3, got {max_vocab}")
    lines = [" ".join(_WORD.findall(ln.lower())) for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    if len(lines) < 3:
        raise ValueError(f"corpus_from_text: need at least 3 non-empty lines, got {len(lines)}")
    total = sum(split)
    n1 = max(1, int(len(lines) * split[0] / total))
    n2 = max(n1 + 1, int(len(lines) * (split[0] + split[1]) / total))
    n2 = min(n2, len(lines) - 1)
    parts = [tokenize_lines(p) for p in (lines[:n1], lines[n1:n2], lines[n2:])]
    counts = Counter(parts[0])
    keep = {w for w, _ in counts.most_common(max_vocab - 2)} | {EOS}
    parts = [[w if w in keep else UNK for w in p] for p in parts]
    vocab = build_vocabulary(parts[0] + [UNK])
    train, valid, test = (vocab.encode(p) for p in parts)
    return WordCorpus(train, valid, test, vocab, "text")


def batchify(ids: Tensor, batch_size: int) -> Tensor:
    """Cut ``ids [N]`` into ``batch_size`` contiguous streams, time-first ``[N // B, B]``
    (the trailing ``N mod B`` ids are dropped)."""
    if ids.dim() != 1:
        raise ValueError(f"batchify: ids must be 1-D, got shape {tuple(ids.shape)}")
    if batch_size < 1 or ids.numel() < 2 * batch_size:
        raise ValueError(f"batchify: {ids.numel()} ids are too few for batch size {batch_size}")
    n = ids.numel() // batch_size
    return ids[: n * batch_size].view(batch_size, n).t().contiguous()


def bptt_batches(data: Tensor, bptt: int) -> Iterator[tuple[Tensor, Tensor]]:
    """``(input [T, B], target [T, B])`` segments of ``data [N, B]``, ``T <= bptt``, targets the
    next word."""
    if bptt < 1:
        raise ValueError(f"bptt_batches: bptt must be >= 1, got {bptt}")
    for i in range(0, data.shape[0] - 1, bptt):
        t = min(bptt, data.shape[0] - 1 - i)
        yield data[i : i + t], data[i + 1 : i + 1 + t]


__all__ = ["EOS", "FILES", "UNK", "Vocabulary", "WordCorpus", "batchify", "bptt_batches",
           "build_vocabulary", "corpus_from_text", "load_ptb", "load_wikitext2",
           "load_word_corpus", "tokenize_lines"]
