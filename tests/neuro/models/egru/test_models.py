"""EGRULanguageModel and EGRUGestureNet: shapes, tied decoder, dropouts, state carry, configs."""
from __future__ import annotations

import pytest
import torch

from neuro.models.egru.config import EGRUGestureConfig, EGRULMConfig
from neuro.models.egru.model import (
    EGRUGestureNet,
    EGRULanguageModel,
    embedding_dropout,
    variational_dropout,
)


def _lm(**kw):
    cfg = dict(vocab_size=50, emb_dim=12, hidden_sizes=[20, 12], thr_mean=0.2, backend="torch")
    cfg.update(kw)
    return EGRULanguageModel(EGRULMConfig(**cfg))


def test_lm_paper_defaults_and_config_round_trip():
    cfg = EGRULMConfig()
    assert cfg.hidden_sizes == [1350, 1350, 750] and cfg.emb_dim == 750
    assert (cfg.dropout_emb, cfg.dropout_words, cfg.dropout_forward, cfg.dropconnect) == \
        (0.6, 0.1, 0.25, 0.7)
    assert (cfg.dampening, cfg.support, cfg.thr_mean) == (3.6, 3.6, 0.01)
    assert EGRULMConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="emb_dim"):
        EGRULMConfig(emb_dim=10, hidden_sizes=[20, 11])
    with pytest.raises(ValueError, match="dropout_emb"):
        EGRULMConfig(dropout_emb=1.0)
    with pytest.raises(ValueError, match="unknown keys"):
        EGRULMConfig.from_dict({"hidden": 3})


def test_lm_forward_tied_decoder_trace_and_state():
    torch.manual_seed(0)
    m = _lm(gamma=0.1, alpha=0.01, thr_mean=0.05)
    with torch.no_grad():
        m.embedding.weight.mul_(30)  # larger inputs than the init: events in every layer
    tok = torch.randint(0, 50, (7, 3))
    logits, st = m(tok)
    assert logits.shape == (7, 3, 50) and len(st) == 2 and st[0].c.shape == (3, 20)
    aux = m.last_aux
    assert aux.trace.shape == (7, 3, 12) and len(aux.sparsity) == 2
    assert float(aux.reg.detach()) != 0.0 and all(0 < o.mean() < 1 for o in aux.o)
    (logits.logsumexp(-1).mean() + aux.reg).backward()
    assert m.embedding.weight.grad is not None
    assert not any(isinstance(p, torch.nn.Linear) for p in m.modules())  # decoder is E^T
    # the state carries over: a second segment from the state differs from a fresh start
    m.eval()
    with torch.no_grad():
        a, s1 = m(tok)
        b, _ = m(tok, s1)
        c, _ = m(tok)
    torch.testing.assert_close(a, c)
    assert not torch.equal(a, b)
    with pytest.raises(ValueError, match="token ids"):
        m(torch.full((2, 2), 50))
    with pytest.raises(ValueError, match=r"\[T, B\]"):
        m(torch.zeros(2, 2, 2, dtype=torch.long))


def test_dropouts_are_variational_and_word_level():
    torch.manual_seed(1)
    x = torch.ones(6, 4, 10)
    y = variational_dropout(x, 0.5, True)
    assert torch.equal(y[0], y[5])  # one mask over time
    assert set(y.unique().tolist()) <= {0.0, 2.0}
    assert torch.equal(variational_dropout(x, 0.5, False), x)
    w = torch.ones(100, 5)
    wd = embedding_dropout(w, 0.3, True)
    rows = wd[:, 0]
    assert ((wd == rows[:, None]).all())  # whole words dropped
    assert 0.15 < (rows == 0).float().mean() < 0.45


def test_gesture_net_shapes_and_paper_settings():
    cfg = EGRUGestureConfig()
    assert (cfg.features, cfg.hidden_size, cfg.dropout, cfg.dropconnect, cfg.zoneout,
            cfg.support) == (512, 795, 0.63, 0.08, 0.23, 1.7)
    torch.manual_seed(2)
    small = EGRUGestureConfig(frame_size=16, channels=[4, 8], features=32, hidden_size=24,
                              backend="torch")
    net = EGRUGestureNet(small)
    x = torch.rand(5, 2, 1, 16, 16)
    logits, st = net(x)
    assert logits.shape == (5, 2, 11) and st[0].c.shape == (2, 24)
    (logits.sum() + net.last_aux.reg).backward()
    assert net.rnn.recurrent_kernel.grad is not None
    assert net.predict(x).shape == (2,)
    assert type(net).from_config(small.to_dict()).config == small
    with pytest.raises(ValueError, match="frames"):
        net(torch.rand(5, 2, 1, 8, 8))
