"""Readouts: spike features, ridge regression (checked against scikit-learn), trained projection
heads, the CLIP-style contrastive loss and zero-shot evaluation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import Ridge

from neuro.models.lsm.readout import (
    ProjectionHead,
    clip_loss,
    fit_ridge,
    head_accuracy,
    select_alpha,
    spike_features,
    train_cross_modal,
    train_head,
    zero_shot_accuracy,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny heads train faster on one thread (and do not fight the other tests for cores)."""
    torch.set_num_threads(1)
    yield


def test_spike_features_counts_traces_and_bins():
    s = (torch.rand(10, 3, 5) < 0.4).float()
    assert torch.equal(spike_features(s), s.sum(0))
    beta = 0.7
    trace = torch.zeros(3, 5)
    for t in range(10):
        trace = beta * trace + s[t]
    assert torch.allclose(spike_features(s, beta=beta), trace, atol=1e-6)
    binned = spike_features(s, bins=2)
    assert torch.equal(binned, torch.cat([s[:5].sum(0), s[5:].sum(0)], -1))
    with pytest.raises(ValueError, match="bins"):
        spike_features(s, bins=11)
    with pytest.raises(ValueError, match="beta"):
        spike_features(s, beta=1.5)


def test_ridge_equals_sklearn_on_standardised_features():
    rng = np.random.default_rng(0)
    f = rng.standard_normal((200, 12))
    f = (f - f.mean(0)) / f.std(0)  # unit scale: our standardisation is then the identity
    y = rng.integers(0, 4, 200)
    mine = fit_ridge(f, y, 4, alpha=3.0)
    ref = Ridge(alpha=3.0, fit_intercept=True).fit(f, np.eye(4)[y])
    assert np.allclose(mine.weight, ref.coef_, atol=1e-10)
    assert np.allclose(mine.bias, ref.intercept_, atol=1e-10)


def test_ridge_is_scale_free_and_unpenalised_bias():
    rng = np.random.default_rng(1)
    f = rng.standard_normal((150, 6))
    y = rng.integers(0, 3, 150)
    a = fit_ridge(f, y, 3, alpha=5.0)
    b = fit_ridge(f * 1000 + 7, y, 3, alpha=5.0)  # standardised internally
    assert np.allclose(a.logits(f), b.logits(f * 1000 + 7), atol=1e-8)
    huge = fit_ridge(f, y, 3, alpha=1e12)  # everything shrunk: predicts the class frequencies
    assert np.allclose(huge.logits(f)[0], np.bincount(y, minlength=3) / 150, atol=1e-6)


def test_select_alpha_and_bad_input():
    rng = np.random.default_rng(2)
    centers = rng.standard_normal((3, 10)) * 3
    y = rng.integers(0, 3, 300)
    f = centers[y] + rng.standard_normal((300, 10))
    r = select_alpha(f, y, 3, alphas=(0.01, 1.0, 100.0))
    assert r.alpha in (0.01, 1.0, 100.0)
    assert r.accuracy(f, y) > 0.95
    with pytest.raises(ValueError, match="labels must lie"):
        fit_ridge(f, y + 5, 3)
    with pytest.raises(ValueError, match="NaN"):
        fit_ridge(np.full((3, 2), np.nan), np.zeros(3, int), 2)
    with pytest.raises(ValueError, match="alpha"):
        fit_ridge(f, y, 3, alpha=-1.0)


def test_clip_loss_reduces_to_clip_for_distinct_labels():
    torch.manual_seed(0)
    za, zb = F.normalize(torch.randn(6, 4), dim=1), F.normalize(torch.randn(6, 4), dim=1)
    labels = torch.arange(6)
    s = za @ zb.t() / 0.1
    ref = (F.cross_entropy(s, labels) + F.cross_entropy(s.t(), labels)) / 2
    assert torch.allclose(clip_loss(za, zb, labels, labels, 0.1), ref)
    # repeated labels: both same-class entries are positives with weight 1/2
    lab = torch.tensor([0, 0, 1])
    s = za[:3] @ zb[:3].t() / 0.5
    rows = -(torch.log_softmax(s, 1)[0, :2].mean() + torch.log_softmax(s, 1)[1, :2].mean()
             + torch.log_softmax(s, 1)[2, 2]) / 3
    cols = -(torch.log_softmax(s, 0)[:2, 0].mean() + torch.log_softmax(s, 0)[:2, 1].mean()
             + torch.log_softmax(s, 0)[2, 2]) / 3
    assert torch.allclose(clip_loss(za[:3], zb[:3], lab, lab, 0.5), (rows + cols) / 2)


def _clusters(n=600, d=20, c=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(c, d, generator=g) * 2
    y = torch.randint(0, c, (n,), generator=g)
    return centers[y] + torch.randn(n, d, generator=g), y


@pytest.mark.parametrize("loss", ["ce", "contrastive"])
def test_projection_heads_learn(loss):
    f, y = _clusters()
    dims = [20, 32, 5 if loss == "ce" else 16]
    head = ProjectionHead(dims, loss=loss, n_classes=5)
    log = train_head(head, f[:400], y[:400], epochs=10, lr=3e-3, batch_size=50)
    assert log.loss[-1] < log.loss[0]
    assert head_accuracy(head, f[400:], y[400:]) > 0.9
    with pytest.raises(ValueError, match="input size"):
        train_head(head, f[:, :3], y)


def test_cross_modal_zero_shot_beats_chance():
    """Two modalities share a class code z_c: A = M_a z_c + noise, B = M_b z_c + noise. Heads
    trained on classes 0..6 must map unseen classes 7..9 of both modalities close together."""
    g = torch.Generator().manual_seed(0)
    codes = torch.randn(10, 8, generator=g)
    ma, mb = torch.randn(30, 8, generator=g), torch.randn(25, 8, generator=g)
    ya, yb = torch.randint(0, 10, (1000,), generator=g), torch.randint(0, 10, (1000,), generator=g)
    fa = codes[ya] @ ma.t() + 0.3 * torch.randn(1000, 30, generator=g)
    fb = codes[yb] @ mb.t() + 0.3 * torch.randn(1000, 25, generator=g)
    ha = ProjectionHead([30, 16], loss="contrastive", n_classes=10)
    hb = ProjectionHead([25, 16], loss="contrastive", n_classes=10)
    seen_a, seen_b = ya < 7, yb < 7
    train_cross_modal(ha, hb, fa[seen_a], ya[seen_a], fb[seen_b], yb[seen_b], epochs=15, lr=5e-3)
    acc = zero_shot_accuracy(ha, hb, fa[~seen_a], ya[~seen_a], fb[~seen_b], yb[~seen_b], [7, 8, 9])
    assert acc > 0.7  # chance is 1/3
    with pytest.raises(ValueError, match="no sample in B"):
        zero_shot_accuracy(ha, hb, fa, ya, fb[seen_b], yb[seen_b], [7, 8])
