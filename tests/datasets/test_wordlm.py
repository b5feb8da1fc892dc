"""Word-level PTB / WikiText-2 readers on tiny files written in the published formats."""
from __future__ import annotations

import pytest
import torch

from neuro.datasets.wordlm import (
    EOS,
    UNK,
    batchify,
    bptt_batches,
    corpus_from_text,
    load_ptb,
    load_wikitext2,
    load_word_corpus,
)


def _write(root, names, texts):
    root.mkdir(parents=True, exist_ok=True)
    for n, t in zip(names, texts):
        (root / n).write_text(t, encoding="utf-8")


def test_ptb_vocabulary_from_train_and_eos(tmp_path):
    _write(tmp_path, ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"),
           (" the cat sat <unk> \n the dog $ N \n", " the bird sat \n", " dog N \n"))
    c = load_ptb(tmp_path)
    assert c.vocab.itos == ["the", "cat", "sat", UNK, EOS, "dog", "$", "N"]
    assert c.vocab.decode(c.train) == "the cat sat <unk> <eos> the dog $ N <eos>".split()
    assert c.vocab.decode(c.valid) == ["the", UNK, "sat", EOS]  # unseen word -> <unk>
    assert c.test.tolist() == [5, 7, 4]
    assert load_word_corpus(tmp_path).name == "ptb"


def test_wikitext2_blank_and_heading_lines(tmp_path):
    _write(tmp_path, ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"),
           (" \n = Valkyria = \n \n Senjō no <unk> 3 @-@ 1 . \n", " = A = \n", " . \n"))
    c = load_wikitext2(tmp_path)
    words = c.vocab.decode(c.train)
    assert words[:5] == [EOS, "=", "Valkyria", "=", EOS]
    assert words.count(EOS) == 4 and "@-@" in c.vocab.stoi
    assert c.vocab.decode(c.valid) == ["=", UNK, "=", EOS]


def test_missing_or_empty_files_raise(tmp_path):
    with pytest.raises(ValueError, match="neither"):
        load_word_corpus(tmp_path)
    _write(tmp_path, ("ptb.train.txt",), ("a b\n",))
    with pytest.raises(ValueError, match="ptb.valid.txt"):
        load_ptb(tmp_path)
    with pytest.raises(ValueError, match="kind"):
        load_word_corpus(tmp_path, "ptb2")


def test_text_corpus_batchify_and_bptt():
    text = "\n".join(f"The king said {w}, and the queen spoke!" for w in
                     ["yes", "no", "maybe", "never", "always", "now", "then", "here", "there", "so"])
    c = corpus_from_text(text, max_vocab=8)
    assert len(c.vocab) <= 8 and UNK in c.vocab.stoi and "," in c.vocab.stoi
    assert c.train.numel() > c.valid.numel() > 0 and c.test.numel() > 0
    data = batchify(torch.arange(23), 4)
    assert data.shape == (5, 4) and data[:, 1].tolist() == [5, 6, 7, 8, 9]
    segs = list(bptt_batches(data, 3))
    assert [s[0].shape[0] for s in segs] == [3, 1]
    assert torch.equal(segs[0][1], data[1:4])
    with pytest.raises(ValueError, match="too few"):
        batchify(torch.arange(5), 4)
    with pytest.raises(ValueError, match="lines"):
        corpus_from_text("one line only")
