"""Dense GRU/LSTM baselines of matched size, fit's time budget, and the MAC count per token
(checked against a per-token loop over the layers' own outputs)."""
from __future__ import annotations

import time

import pytest
import torch

from neuro.datasets.wordlm import corpus_from_text
from neuro.models.egru import EGRULanguageModel, EGRULMConfig, evaluate, fit
from neuro.models.egru.baselines import RNNLanguageModel, matched, rnn_layer_params
from neuro.models.egru.macs import dense_macs_per_token, macs_per_token
from neuro.models.egru.pruning import prune
from neuro.models.egru.training import offline_text


def _cfg(**over) -> EGRULMConfig:
    base = {"vocab_size": 50, "emb_dim": 12, "hidden_sizes": [20, 20, 12], "thr_mean": 0.05,
            "dropout_emb": 0.0, "dropout_words": 0.0, "dropout_forward": 0.0,
            "dropout_output": 0.0, "dropconnect": 0.0}
    return EGRULMConfig.from_dict({**base, **over})


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_matched_baselines_have_the_egru_parameter_count():
    cfg = _cfg()
    egru = EGRULanguageModel(cfg)
    assert _count(egru) == cfg.n_elements()
    gru = matched("gru", cfg)
    # nn.GRU layer = EGRU layer less its H thresholds: the same widths are the closest match
    assert gru.hidden_sizes == [20, 20, 12]
    assert _count(egru) - _count(gru) == sum(cfg.hidden_sizes)
    lstm = matched("lstm", cfg)
    h = lstm.hidden_sizes[0]
    assert lstm.hidden_sizes == [h, h, 12] and h < 20

    def lstm_count(w: int) -> int:
        sizes = [12, w, w, 12]
        return 50 * 13 + sum(rnn_layer_params("lstm", a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    assert _count(lstm) == lstm_count(h)
    gap = abs(lstm_count(h) - cfg.n_elements())
    assert gap <= abs(lstm_count(h - 1) - cfg.n_elements())
    assert gap <= abs(lstm_count(h + 1) - cfg.n_elements())
    assert lstm.embedding.weight.shape == egru.embedding.weight.shape
    with pytest.raises(ValueError, match="kind"):
        matched("rnn", cfg)
    with pytest.raises(ValueError, match="emb_dim"):
        RNNLanguageModel("gru", 50, 12, [20, 16])


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_baseline_carries_state_and_trains_under_a_time_budget(kind):
    corpus = corpus_from_text(offline_text(300), max_vocab=60)
    cfg = _cfg(vocab_size=len(corpus.vocab))
    model = matched(kind, cfg)
    x = corpus.train[:40].view(8, 5)
    full, _ = model(x)
    a, st = model(x[:3])
    b, _ = model(x[3:], st)
    torch.testing.assert_close(torch.cat([a, b]), full)  # the state carries across segments
    before = evaluate(model, corpus.valid, bptt=10)
    assert before["activity_sparsity"] == 0.0 and before["layers"] == []
    out = fit(model, corpus.train, None, epochs=1000, batch_size=4, bptt=10, lr=1e-2, clip=1.0,
              time_budget=0.3, clock="wall", progress=False, log=lambda s: None)
    assert 0.3 <= out["seconds"] < 5 and out["batches"] >= 1
    assert out["tokens"] == out["batches"] * 4 * 10 or out["tokens"] < out["batches"] * 40
    assert evaluate(model, corpus.valid, bptt=10)["ppl"] < before["ppl"]


def test_time_budget_stops_the_egru_and_is_checked():
    corpus = corpus_from_text(offline_text(300), max_vocab=60)
    model = EGRULanguageModel(_cfg(vocab_size=len(corpus.vocab)))
    t0 = time.process_time()
    out = fit(model, corpus.train, None, epochs=1000, batch_size=4, bptt=10, time_budget=0.2,
              progress=False, log=lambda s: None)
    assert out["clock"] == "cpu" and 0.2 <= out["seconds"] <= time.process_time() - t0
    with pytest.raises(ValueError, match="time_budget"):
        fit(model, corpus.train, time_budget=0.0)
    with pytest.raises(ValueError, match="clock"):
        fit(model, corpus.train, time_budget=1.0, clock="gpu")


def _loop_count(model: EGRULanguageModel, tokens: torch.Tensor) -> tuple[float, float]:
    """Per-token MACs (layers, decoder) by visiting every token, input and unit (one sequence
    ``tokens [T, 1]`` from a zero state), from the layers' own outputs."""
    layers = list(model.layers)
    x = model.embedding.weight[tokens]  # [T, 1, E]
    layer_macs = 0.0
    dec = 0.0
    for layer in layers:
        y, st = layer(x, None, record=True)
        W, R = layer.effective_kernel(), layer.effective_recurrent()
        for t in range(tokens.shape[0]):
            for i in range(W.shape[0]):
                if x[t, 0, i] != 0:
                    layer_macs += int((W[i] != 0).sum())
            if t > 0:
                for j in range(R.shape[0]):
                    if st.o[t - 1, 0, j] == 1:
                        layer_macs += int((R[j] != 0).sum())
        x = y
    for t in range(tokens.shape[0]):
        dec += int((x[t, 0] != 0).sum()) * model.config.vocab_size
    n = tokens.shape[0]
    return layer_macs / n, dec / n


@torch.no_grad()
def test_macs_per_token_equals_a_per_token_loop_dense_and_pruned():
    torch.manual_seed(0)
    cfg = _cfg(hidden_sizes=[10, 12], thr_mean=0.3)
    model = EGRULanguageModel(cfg).eval()
    ids = torch.randint(0, cfg.vocab_size, (30,))
    for sparsity in (None, 0.6):
        if sparsity is not None:
            prune(model, sparsity)
        got = macs_per_token(model, ids, batch_size=1, bptt=30)
        layers, dec = _loop_count(model, ids[:-1].view(-1, 1))
        assert got["tokens"] == 29
        assert sum(p["events_csr"] for p in got["layers"]) == pytest.approx(layers)
        assert got["decoder"]["events"] == pytest.approx(dec)
        assert 0 < got["total"]["events_csr"] < got["total"]["dense"]
        dense = dense_macs_per_token("egru", 12, [10, 12], 50)
        assert got["total"]["dense"] == dense["total"] == 3 * 10 * 22 + 3 * 12 * 22 + 50 * 12
        if sparsity:
            assert got["weight_sparsity"] == pytest.approx(0.6, abs=0.01)
            assert got["total"]["weights_only"] < 0.45 * dense["total"] + 50 * 12
    # the state carried across segments: two segments count as one sequence
    whole = macs_per_token(model, ids, batch_size=1, bptt=30)["total"]["events_csr"]
    split = macs_per_token(model, ids, batch_size=1, bptt=7)["total"]["events_csr"]
    assert split == pytest.approx(whole)
    assert dense_macs_per_token("lstm", 12, [10, 12], 50)["layers"] == [4 * 10 * 22, 4 * 12 * 22]
    with pytest.raises(ValueError, match="kind"):
        dense_macs_per_token("rnn", 12, [12], 50)
