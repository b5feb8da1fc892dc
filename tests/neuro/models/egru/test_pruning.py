"""Magnitude pruning to a target with fine-tuning, CSR storage, and the kernels skipping pruned
weights."""
from __future__ import annotations

import pytest
import torch

from neuro.models.egru import pruning
from neuro.models.egru.config import EGRULMConfig
from neuro.models.egru.kernels import available
from neuro.models.egru.model import EGRULanguageModel


def _lm(backend="torch"):
    torch.manual_seed(0)
    return EGRULanguageModel(EGRULMConfig(vocab_size=40, emb_dim=10, hidden_sizes=[24, 10],
                                          thr_mean=0.05, backend=backend, dropconnect=0.0))


def test_magnitude_prune_hits_target_and_keeps_largest():
    m = _lm()
    w = m.layers[0].recurrent_kernel.detach().clone()
    got = pruning.prune(m, 0.95)
    assert all(s == pytest.approx(0.95, abs=0.01) for s in got.values())
    kept = m.layers[0].effective_recurrent() != 0
    assert w.abs()[kept].min() >= w.abs()[~kept].max()
    assert pruning.weight_sparsity(m) == pytest.approx(0.95, abs=0.01)
    with pytest.raises(ValueError, match="sparsity"):
        pruning.prune(m, 1.0)


def test_gradual_schedule_and_fine_tuning_keep_pruned_weights_zero():
    m = _lm()
    assert pruning.schedule(0.9, 3)[-1] == pytest.approx(0.9)
    assert pruning.schedule(0.9, 3) == sorted(pruning.schedule(0.9, 3))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=0.1)
    tok = torch.randint(0, 40, (8, 4))

    def fine_tune(model, k):
        for _ in range(3):
            opt.zero_grad()
            logits, _ = model(tok[:-1])
            torch.nn.functional.cross_entropy(logits.flatten(0, 1), tok[1:].flatten()).backward()
            opt.step()

    hist = pruning.prune_and_fine_tune(m, 0.9, 3, fine_tune)
    assert len(hist) == 3 and max(hist[-1].values()) == pytest.approx(0.9, abs=0.01)
    assert pruning.weight_sparsity(m) >= 0.89


def test_csr_round_trip_and_checkpoint_masks():
    m = _lm()
    pruning.prune(m, 0.9)
    csr = pruning.to_csr(m)
    t = csr["layer0.recurrent_kernel"]
    assert t.layout == torch.sparse_csr
    assert t.values().numel() == int((m.layers[0].effective_recurrent() != 0).sum())
    fresh = _lm()
    torch.manual_seed(3)
    fresh.load_state_dict(m.state_dict())  # masks come back as buffers
    assert fresh.layers[1].recurrent_mask is not None
    other = _lm()
    pruning.from_csr(other, csr)
    torch.testing.assert_close(other.layers[0].effective_recurrent(),
                               m.layers[0].effective_recurrent())
    with pytest.raises(ValueError, match="unknown entry"):
        pruning.from_csr(other, {"layer9.kernel": t})


def test_pruned_model_fused_csr_equals_loop():
    assert available(), "the EGRU C++ extension must build (the set-up builds it)"
    m = _lm().double()
    pruning.prune(m, 0.8)
    tok = torch.randint(0, 40, (6, 3))
    m.eval()
    outs = []
    for backend in ("torch", "fused"):
        for layer in m.layers:
            layer.backend = backend
        m.zero_grad()
        logits, _ = m(tok)
        logits.sin().sum().backward()
        outs.append((logits.detach(), m.layers[0].recurrent_kernel.grad.clone()))
    torch.testing.assert_close(outs[1][0], outs[0][0], rtol=0, atol=1e-12)
    torch.testing.assert_close(outs[1][1], outs[0][1], rtol=0, atol=1e-12)
    assert (outs[1][1][m.layers[0].recurrent_mask == 0] == 0).all()
