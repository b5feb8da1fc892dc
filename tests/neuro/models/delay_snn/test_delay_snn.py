"""DelaySNN: the reference network, its loss, lowering (exact), training and the delay task."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neuro.datasets import delay_pattern_task
from neuro.graph import from_module, simulate
from neuro.graph.quantize import quantize
from neuro.models import DelaySNN, DelaySNNConfig
from neuro.models.delay_snn import summed_softmax_loss, train_delay_snn


def test_shd_configuration_matches_reference_size_and_shapes():
    m = DelaySNN()  # SHD defaults: 140 -> 2 x 256 -> 20, K = 25
    assert sum(p.numel() for p in m.parameters()) == 214_016  # weights + positions + BN
    out, _ = m((torch.rand(100, 2, 140) < 0.05).float())
    assert out.shape == (100 + 3 * 12, 2, 20)


def test_summed_softmax_loss_is_the_reference_formula():
    out, y = torch.randn(7, 5, 4), torch.randint(0, 4, (5,))
    m = torch.softmax(out, -1).sum(0)
    torch.testing.assert_close(summed_softmax_loss(out, y), F.cross_entropy(m, y))


@pytest.mark.parametrize("mode", ["learned", "fixed", "none"])
def test_lowered_delay_snn_equals_module_and_quantizes(mode):
    torch.manual_seed(0)
    m = DelaySNN(DelaySNNConfig(n_inputs=12, n_hidden=24, n_layers=2, n_outputs=3, max_delay=7,
                                delays=mode, right_padding=0, tau=2.0))
    x = (torch.rand(40, 6, 12) < 0.2).float()
    m.train()
    m(x)  # BatchNorm running statistics
    m.eval()
    m.integer_delays()
    g = from_module(m)
    kinds = [n.kind for n in g.nodes.values()]
    assert kinds.count("DelayedAffine") == 3 and kinds.count("ChannelAffine") == 2
    rec = simulate(g, x, record=True)
    assert torch.equal(rec["output"], m(x)[0])
    assert rec["2"].sum() > 0
    q = quantize(g, "int16", calibration_inputs=x)
    assert "ChannelAffine" not in [n.kind for n in q.nodes.values()]  # folded into the synapse
    agree = (simulate(q, x, record=True)["2"].float() == rec["2"]).float().mean()
    assert agree > 0.97


def test_delay_task_classes_differ_only_in_timing():
    tr, _ = delay_pattern_task(400, 10, noise_rate=0.0)
    counts = tr.spikes.sum(1)  # [N, C]: every channel fires exactly once in every sample
    assert (counts == 1).all()
    # the interval between the channels of a pair is fixed per class and differs between classes
    a = tr.spikes[:, :, 0].argmax(1)
    b = tr.spikes[:, :, 1].argmax(1)
    per_class = [set((b - a)[tr.labels == c].tolist()) for c in range(tr.n_classes)]
    assert all(len(s) == 1 for s in per_class)


def test_training_learns_with_learned_delays():
    train, test = delay_pattern_task(2000, 300, seed=5)
    torch.manual_seed(0)
    m = DelaySNN(DelaySNNConfig(n_inputs=16, n_hidden=64, n_layers=1, n_outputs=4, max_delay=9,
                                dropout=0.1))
    P0 = m[0].P.detach().clone()
    r = train_delay_snn(m, train, test, epochs=6, batch_size=64, progress=False, log=lambda s: None)
    assert r.test_accuracy[-1] > 0.5  # chance 0.25
    assert not torch.equal(m[0].P, P0)  # positions moved
    assert float(m[0].sigma) < 4  # the schedule shrank sigma
    assert m[0].delays().max() <= 8 and not m[0].integer  # evaluation restored training mode


def test_integer_epochs_freeze_positions_and_train_with_rounded_delays():
    train, test = delay_pattern_task(300, 100, seed=5)
    torch.manual_seed(0)
    m = DelaySNN(DelaySNNConfig(n_inputs=16, n_hidden=16, n_layers=1, n_outputs=4, max_delay=9,
                                dropout=0.0))
    seen = []

    def record(module, args):
        if module.training:
            seen.append((module.integer, module.P.detach().clone(), module.weight.detach().clone()))

    m[0].register_forward_pre_hook(record)
    train_delay_snn(m, train, test, epochs=3, integer_epochs=1, batch_size=100, progress=False,
                    log=lambda s: None)
    assert [s[0] for s in seen] == [False] * 6 + [True] * 3  # 3 batches per epoch, last epoch integer
    assert not torch.equal(seen[0][1], seen[5][1])  # positions learn in the Gaussian epochs
    assert torch.equal(seen[6][1], seen[8][1]) and torch.equal(seen[6][1], m[0].P)  # then frozen
    assert not torch.equal(seen[6][2], seen[8][2])  # while the weights keep learning
    assert not m[0].integer  # the float checkpoint is left in training mode
    with pytest.raises(ValueError, match="integer_epochs"):
        train_delay_snn(m, train, test, epochs=2, integer_epochs=3, progress=False)


def test_bad_configs():
    with pytest.raises(ValueError, match="odd"):
        DelaySNNConfig(max_delay=24)
    with pytest.raises(ValueError, match="delays must be one of"):
        DelaySNNConfig(delays="random")
    with pytest.raises(ValueError, match="unknown keys"):
        DelaySNNConfig.from_dict({"hidden": 3})
    assert np.isfinite(DelaySNNConfig().tau)
