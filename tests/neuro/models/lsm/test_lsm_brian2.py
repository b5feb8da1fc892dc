"""Brian2 cross-check (oracle): the same reservoir simulated in Brian2 2.9 gives the same spikes.

The Brian2 network is written so that its update order equals neuro's ``Recurrent`` + ``LIF``
step (``h = beta v + W_in u[t] + W_rec s[t-1]``, spike ``h >= threshold``, reset to 0):

* the schedule is reordered to ``start, groups, synapses, thresholds, resets, end``;
* ``start``: a ``SpikeGeneratorGroup`` (``when="start"``) emits the input spikes ``u[t]``;
* ``groups``: ``v = beta * v`` (a ``run_regularly`` operation; the model has no ODE);
* ``synapses``: ``v_post += w`` for the input pathway (this step's input spikes, delay 0) and for
  the recurrent pathway. Its spike queue is filled from the group's spike space, which at this
  point still holds the spikes of the previous step (the thresholder of this step has not run):
  the recurrent input is ``W_rec s[t-1]``, neuro's one-step delay;
* ``thresholds``: ``v >= threshold``; ``resets``: ``v = 0``.

Refractoriness: neuro's ``refractory=R`` (the neuron ignores input, keeps its membrane and cannot
spike for the R steps after a spike) equals Brian2's ``refractory=(R + 1) * dt`` with the decay and
the synaptic input gated by ``not_refractory``.

Brian2 computes in float64 with one synaptic addition at a time; neuro in float32 with matrix
products, so a membrane within rounding of the threshold can rarely fire in one and not the
other. The contract: identical spike trains over the first 200 steps, >= 99.9 % agreement over
1000 steps, for a 200-neuron reservoir.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

with warnings.catch_warnings():  # Brian2 2.9 uses pyparsing names deprecated in pyparsing 3.3
    warnings.simplefilter("ignore", DeprecationWarning)
    import brian2 as b2

from neuro.layers import Recurrent
from neuro.models.lsm import LSM, LSMConfig
from neuro.neurons import LIF

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pyparsing names inside Brian2

b2.prefs.codegen.target = "numpy"
b2.BrianLogger.log_level_error()


def brian2_reservoir(w_in: np.ndarray, w_rec: np.ndarray, u: np.ndarray, *, beta: float,
                     threshold: float, refractory: int = 0, neuro_order: bool = True) -> np.ndarray:
    """Spikes ``[T, N]`` of the reservoir in Brian2 for input spikes ``u [T, n_in]`` (0/1)."""
    T = u.shape[0]
    n, n_in = w_in.shape
    dt = 1 * b2.ms
    gate = " * int(not_refractory_post)" if refractory else ""
    kw = {"refractory": (refractory + 1) * dt} if refractory else {}
    G = b2.NeuronGroup(n, "v : 1", threshold="v >= theta", reset="v = 0", dt=dt, **kw)
    G.run_regularly("v = beta * v * int(not_refractory) + v * int(not not_refractory)"
                    if refractory else "v = beta * v", when="groups")
    t_idx, i_idx = np.nonzero(u)
    P = b2.SpikeGeneratorGroup(n_in, i_idx, t_idx * dt, dt=dt, when="start")
    S_in = b2.Synapses(P, G, "w : 1", on_pre="v_post += w" + gate, dt=dt)
    post, pre = np.nonzero(w_in)
    S_in.connect(i=pre, j=post)
    S_in.w = w_in[post, pre].astype(np.float64)
    S_rec = b2.Synapses(G, G, "w : 1", on_pre="v_post += w" + gate, dt=dt)
    post, pre = np.nonzero(w_rec)
    S_rec.connect(i=pre, j=post)
    S_rec.w = w_rec[post, pre].astype(np.float64)
    mon = b2.SpikeMonitor(G)
    net = b2.Network(G, P, S_in, S_rec, mon)
    if neuro_order:
        net.schedule = ["start", "groups", "synapses", "thresholds", "resets", "end"]
    # beta as the float32 value neuro uses, converted exactly to float64
    net.run(T * dt, namespace={"beta": float(np.float32(beta)), "theta": float(threshold)})
    out = np.zeros((T, n), np.float32)
    out[np.round(np.asarray(mon.t / dt)).astype(int), np.asarray(mon.i)] = 1
    return out


def _input(T: int, n_in: int, rate: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((T, n_in)) < rate).astype(np.float32)


def _neuro_spikes(model: LSM, u: np.ndarray) -> np.ndarray:
    return model.reservoir_spikes(torch.from_numpy(u)[:, None])[:, 0].numpy()


def _compare(s_neuro: np.ndarray, s_brian: np.ndarray) -> tuple[int | None, float]:
    diff = np.nonzero((s_neuro != s_brian).any(1))[0]
    return (int(diff[0]) if len(diff) else None), float((s_neuro == s_brian).mean())


@pytest.mark.parametrize("kind", ["gaussian", "maass"])
def test_reservoir_matches_brian2(kind):
    T, n_in = 1000, 64
    cfg = LSMConfig(n_inputs=n_in, size=200, n_outputs=2, reservoir=kind, seed=3)
    model = LSM(cfg)
    u = _input(T, n_in, 0.08, seed=4)
    s = _neuro_spikes(model, u)
    rate = s.mean()
    assert 0.01 < rate < 0.4, f"reservoir rate {rate} is not in a useful range for the comparison"
    assert (s.sum(0) > 0).mean() > 0.9  # nearly every neuron takes part
    ref = brian2_reservoir(model.w_in.detach().numpy(), model.w_rec.numpy(), u,
                           beta=cfg.beta, threshold=cfg.threshold)
    first, agree = _compare(s, ref)
    assert first is None or first >= 200, f"spike trains differ from step {first}"
    assert agree >= 0.999, f"agreement {agree:.5f} over {T} steps"


def test_refractory_reservoir_matches_brian2():
    T, n_in, n, R = 400, 32, 200, 2
    rng = np.random.default_rng(5)
    w_in = (rng.standard_normal((n, n_in)) * 2.0).astype(np.float32)
    w_rec = (rng.standard_normal((n, n)) * (rng.random((n, n)) < 0.1)).astype(np.float32)
    u = _input(T, n_in, 0.1, seed=6)
    res = Recurrent(n_in, LIF(beta=0.9, threshold=5.0, reset="zero", refractory=R), size=n,
                    w_in=torch.from_numpy(w_in), w_rec=torch.from_numpy(w_rec), learn_recurrent=False)
    with torch.no_grad():
        s = res(torch.from_numpy(u)[:, None])[0][:, 0].numpy()
    assert s.mean() > 0.02
    ref = brian2_reservoir(w_in, w_rec, u, beta=0.9, threshold=5.0, refractory=R)
    first, agree = _compare(s, ref)
    assert first is None or first >= 200
    assert agree >= 0.999
    # the mapping refractory=(R + 1) dt matters: R dt in Brian2 gives other spikes
    wrong = brian2_reservoir(w_in, w_rec, u, beta=0.9, threshold=5.0, refractory=R - 1)
    assert _compare(s, wrong)[1] < 0.99


def test_update_order_matters():
    """The oracle is sensitive: Brian2's default schedule (threshold before synaptic input) gives
    different spikes, so agreement above is not a property of any two simulators."""
    T, n_in = 300, 64
    model = LSM(LSMConfig(n_inputs=n_in, size=200, n_outputs=2, seed=3))
    u = _input(T, n_in, 0.08, seed=4)
    s = _neuro_spikes(model, u)
    ref = brian2_reservoir(model.w_in.detach().numpy(), model.w_rec.numpy(), u, beta=0.9,
                           threshold=5.0, neuro_order=False)
    assert _compare(s, ref)[1] < 0.99
