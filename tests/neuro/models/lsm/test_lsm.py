"""Liquid state machines: reservoir builders, device model, the LSM module, lowering and the
integer reference executor."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neuro.checkpoint import load_checkpoint, save_checkpoint
from neuro.graph import from_module, simulate
from neuro.graph import nodes as N
from neuro.graph.formats import FORMATS
from neuro.graph.intsim import simulate_int
from neuro.graph.quantize import quantize
from neuro.models import BUILDERS
from neuro.models.lsm import (
    LSM,
    LSMConfig,
    build_weights,
    connection_probability,
    grid_positions,
    maass_column,
    scale_to_spectral_radius,
    spectral_radius,
)
from neuro.models.lsm.device_model import DeviceModel
from neuro.models.lsm.readout import fit_ridge, spike_features


def _spikes(T: int, B: int, n: int, rate: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, n, generator=g) < rate).float()


# ------------------------------------------------------------------------------ Maass column
def test_grid_positions_and_probability_formula():
    pos = grid_positions([3, 2, 2])
    assert pos.shape == (12, 3)
    assert pos[1].tolist() == [1, 0, 0] and pos[3].tolist() == [0, 1, 0] and pos[6].tolist() == [0, 0, 1]
    exc = torch.tensor([True] * 10 + [False] * 2)
    conn = {"EE": 0.3, "EI": 0.2, "IE": 0.4, "II": 0.1}
    p = connection_probability(pos, exc, conn, lam=2.0)
    # E(0) -> E(1), distance 1; E(0) -> I(11) at (2,1,1): D^2 = 6; I(10) -> I(11): D = 1
    assert p[1, 0] == pytest.approx(0.3 * math.exp(-0.25))
    assert p[11, 0] == pytest.approx(0.2 * math.exp(-6 / 4))
    assert p[0, 11] == pytest.approx(0.4 * math.exp(-6 / 4))
    assert p[11, 10] == pytest.approx(0.1 * math.exp(-0.25))
    assert bool((p.diagonal() == 0).all())


def test_maass_column_statistics_match_the_formula():
    col = maass_column((15, 3, 3), seed=1, weight_scale=1.0)  # Maass 2002: 135 neurons
    n = 135
    exc = col.excitatory
    assert int((~exc).sum()) == round(0.2 * n)  # 80/20 E/I
    w = col.w_rec
    assert bool((w.diagonal() == 0).all())
    # Dale's law: outgoing weights carry the presynaptic sign
    assert bool((w[:, exc] >= 0).all()) and bool((w[:, ~exc] <= 0).all())
    p = connection_probability(col.positions, exc, {"EE": 0.3, "EI": 0.2, "IE": 0.4, "II": 0.1}, 2.0)
    conn = (w != 0).double()
    # per connection type: realised count within 4 binomial sigmas of the expected count
    for pre_e in (True, False):
        for post_e in (True, False):
            sel = (exc[None, :] == pre_e) & (exc[:, None] == post_e)
            mean, var = float(p[sel].sum()), float((p[sel] * (1 - p[sel])).sum())
            assert abs(float(conn[sel].sum()) - mean) < 4 * math.sqrt(var) + 1
    # distance dependence: the connection rate falls with distance as exp(-(D/lam)^2)
    d = torch.cdist(col.positions, col.positions)
    for dist in (1.0, 2.0, 3.0):
        sel = (d == dist) & (exc[None, :]) & (exc[:, None])
        expected = 0.3 * math.exp(-(dist / 2) ** 2)
        k = int(sel.sum())
        assert abs(float(conn[sel].mean()) - expected) < 4 * math.sqrt(expected * (1 - expected) / k) + 1e-3
    # weight magnitudes: mean |A| (EE 30) times weight_scale
    ee = w[(exc[:, None] & exc[None, :]) & (w != 0)]
    assert float(ee.mean()) == pytest.approx(30.0, rel=0.15)


def test_maass_column_is_seeded():
    a, b, c = maass_column((5, 4, 3), seed=2), maass_column((5, 4, 3), seed=2), maass_column((5, 4, 3), seed=3)
    assert torch.equal(a.w_rec, b.w_rec) and torch.equal(a.excitatory, b.excitatory)
    assert not torch.equal(a.w_rec, c.w_rec)


@pytest.mark.parametrize("kwargs, words", [
    ({"connectivity": {"EE": 1.5, "EI": 0.2, "IE": 0.4, "II": 0.1}}, "connectivity['EE']"),
    ({"connectivity": {"EE": 0.3, "EI": -0.1, "IE": 0.4, "II": 0.1}}, "connectivity['EI']"),
    ({"connectivity": {"EE": 0.3}}, "missing 'EI'"),
    ({"lam": 0.0}, "lam"),
    ({"frac_inhibitory": 1.2}, "frac_inhibitory"),
    ({"grid": (3, 0, 2)}, "grid"),
])
def test_maass_bad_parameters(kwargs, words):
    kw = {"grid": (3, 3, 3), **kwargs}
    with pytest.raises(ValueError, match=f".*{words.replace('[', '.').replace(']', '.')}"):
        maass_column(**kw)


# ------------------------------------------------------------------------------ spectral radius
def test_spectral_radius_scaling():
    w = build_weights(LSMConfig(n_inputs=4, size=50, density=0.2, seed=0))[1]
    scaled = scale_to_spectral_radius(w, 0.9)
    assert spectral_radius(scaled) == pytest.approx(0.9, rel=1e-5)
    model = LSM(LSMConfig(n_inputs=4, size=50, spectral_radius=1.3))
    assert model.diagnostics()["spectral_radius"] == pytest.approx(1.3, rel=1e-5)
    # random Gaussian matrix: radius close to scale * sqrt(N * density) (circular law)
    assert spectral_radius(w) == pytest.approx(0.3 * math.sqrt(50 * 0.2), rel=0.3)


@pytest.mark.parametrize("rho", [0.0, -1.0, float("nan"), float("inf")])
def test_spectral_radius_out_of_range(rho):
    with pytest.raises(ValueError, match="spectral_radius"):
        LSMConfig(spectral_radius=rho)
    with pytest.raises(ValueError, match="spectral_radius"):
        scale_to_spectral_radius(torch.eye(3), rho)


def test_spectral_radius_of_loopless_matrix_cannot_be_scaled():
    with pytest.raises(ValueError, match="spectral radius 0"):
        scale_to_spectral_radius(torch.triu(torch.ones(4, 4), 1), 1.0)


@pytest.mark.parametrize("field, value", [
    ("density", 0.0), ("density", 1.5), ("input_density", -0.2), ("beta", 1.2), ("threshold", 0.0),
    ("reservoir", "esn"), ("size", 0), ("input_scale", -1.0), ("trace_beta", -0.1),
])
def test_lsm_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        LSMConfig(**{field: value})


def test_lsm_config_maass_size_must_match_grid():
    with pytest.raises(ValueError, match="prod"):
        LSMConfig(reservoir="maass", size=100, grid=[10, 5, 4])


def test_gaussian_weights_statistics():
    w_in, w_rec, exc = build_weights(LSMConfig(n_inputs=100, size=300, input_scale=0.07,
                                               recurrent_scale=0.5, density=0.25, seed=4))
    assert float(w_in.std()) == pytest.approx(0.07, rel=0.03)
    frac = float((w_rec != 0).float().mean())
    assert frac == pytest.approx(0.25, abs=0.01)
    assert float(w_rec[w_rec != 0].std()) == pytest.approx(0.5, rel=0.03)
    assert bool(exc.all())


# ------------------------------------------------------------------------------ device model
def test_device_model_ideal_is_identity():
    w = torch.randn(20, 30)
    assert torch.equal(DeviceModel().program(w), w)
    y = torch.randn(4, 20)
    assert torch.equal(DeviceModel().read(y, w, torch.ones(4, 30)), y)


def test_device_variability_and_stuck_at_statistics():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(400, 500)
    dev = DeviceModel(variability=0.3)
    wp = dev.program(w, g)
    ratio = (wp / w).log()
    assert float(ratio.std()) == pytest.approx(0.3, rel=0.02)
    assert float((wp / w).mean()) == pytest.approx(1.0, abs=0.01)  # mean-preserving log-normal
    dev = DeviceModel(stuck_off=0.05, stuck_on=0.02)
    wp = dev.program(w, g)
    w_max = float(w.abs().max())
    n = w.numel()
    off = float((wp == 0).float().mean())
    on = float((wp.abs() == w_max).float().mean())
    assert abs(off - 0.05) < 4 * math.sqrt(0.05 * 0.95 / n)
    assert abs(on - 0.02) < 4 * math.sqrt(0.02 * 0.98 / n) + 1 / n
    untouched = (wp != 0) & (wp.abs() != w_max)
    assert torch.equal(wp[untouched], w[untouched])
    assert 0.4 < float((wp[wp.abs() == w_max] > 0).float().mean()) < 0.6  # either device of the pair


def test_device_read_noise_has_the_per_device_variance():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(8, 40)
    x = (torch.rand(1, 40, generator=g) < 0.5).float().expand(20000, 40)
    y = x @ w.t()
    noisy = DeviceModel(read_noise=0.1).read(y, w, x, g)
    var = ((noisy - y) ** 2).mean(0)
    expected = 0.01 * ((x[:1] ** 2) @ (w ** 2).t())[0]
    assert torch.allclose(var, expected, rtol=0.05)


@pytest.mark.parametrize("kwargs, words", [
    ({"stuck_off": 1.2}, "stuck_off"), ({"stuck_on": -0.1}, "stuck_on"),
    ({"stuck_off": 0.7, "stuck_on": 0.5}, "stuck_off \\+ stuck_on"),
    ({"variability": -0.1}, "variability"), ({"read_noise": float("nan")}, "read_noise"),
])
def test_device_model_bad_values(kwargs, words):
    with pytest.raises(ValueError, match=words):
        DeviceModel(**kwargs)
    with pytest.raises(ValueError, match=words):
        LSMConfig(device=kwargs)


def test_lsm_device_programming_and_read_noise():
    cfg = dict(n_inputs=16, size=40, seed=2)
    ideal = LSM(LSMConfig(**cfg))
    chip = LSM(LSMConfig(**cfg, device={"variability": 0.2, "stuck_off": 0.01, "read_noise": 0.05}))
    assert not torch.equal(ideal.w_rec, chip.w_rec)
    # same seed -> the same chip
    assert torch.equal(chip.w_rec, LSM(LSMConfig(**cfg, device={"variability": 0.2, "stuck_off": 0.01,
                                                                 "read_noise": 0.05})).w_rec)
    x = _spikes(60, 3, 16, 0.3, 0)
    clean = chip.reservoir_spikes(x)
    assert torch.equal(clean, chip.reservoir(x)[0])
    g = torch.Generator().manual_seed(0)
    noisy = chip.reservoir_spikes(x, noisy=True, generator=g)
    assert not torch.equal(noisy, clean)
    assert float((noisy == clean).float().mean()) > 0.8
    # read noise 0: the noisy path is the exact path
    quiet = LSM(LSMConfig(**cfg, device={"variability": 0.2}))
    assert torch.equal(quiet.reservoir_spikes(x, noisy=True), quiet.reservoir_spikes(x))


# ------------------------------------------------------------------------------ the module
def _reference_reservoir(w_in: np.ndarray, w_rec: np.ndarray, u: np.ndarray, beta: float, thr: float,
                         reset: str) -> np.ndarray:
    """The equations of the module docstring, written out in numpy float32."""
    T, B, _ = u.shape
    n = w_in.shape[0]
    v = np.zeros((B, n), np.float32)
    s = np.zeros((B, n), np.float32)
    beta32, out = np.float32(beta), np.zeros((T, B, n), np.float32)
    for t in range(T):
        h = beta32 * v + (u[t] @ w_in.T + s @ w_rec.T)
        s = (h >= thr).astype(np.float32)
        v = h * (1 - s) if reset == "zero" else h - thr * s
        out[t] = s
    return out


@pytest.mark.parametrize("kind, reset", [("gaussian", "zero"), ("maass", "zero"), ("gaussian", "subtract")])
def test_reservoir_follows_the_equations(kind, reset):
    cfg = LSMConfig(n_inputs=20, size=60 if kind == "gaussian" else 60, reservoir=kind, reset=reset,
                    grid=[5, 4, 3], seed=5)
    model = LSM(cfg)
    x = _spikes(80, 4, 20, 0.2, 1)
    s = model.reservoir_spikes(x).numpy()
    ref = _reference_reservoir(model.w_in.detach().numpy(), model.w_rec.numpy(), x.numpy(),
                               cfg.beta, cfg.threshold, reset)
    assert 0.01 < s.mean() < 0.5
    # float32 sums in a different order may differ in the last bit near the threshold
    assert (s == ref).mean() > 0.999


def test_lsm_weights_are_fixed_and_seeded():
    a, b = LSM(LSMConfig(n_inputs=8, size=30, seed=1)), LSM(LSMConfig(n_inputs=8, size=30, seed=1))
    assert torch.equal(a.w_in, b.w_in) and torch.equal(a.w_rec, b.w_rec)
    assert not torch.equal(a.w_rec, LSM(LSMConfig(n_inputs=8, size=30, seed=2)).w_rec)
    trainable = [n for n, p in a.named_parameters() if p.requires_grad]
    assert trainable == ["readout.weight", "readout.bias"]


def test_set_readout_gives_ridge_logits():
    torch.manual_seed(0)
    for trace_beta in (1.0, 0.8):
        cfg = LSMConfig(n_inputs=12, size=40, n_outputs=3, trace_beta=trace_beta, n_steps=30, seed=1)
        model = LSM(cfg)
        x = _spikes(30, 50, 12, 0.25, 2)
        f = spike_features(model.reservoir_spikes(x), beta=trace_beta)
        labels = torch.randint(0, 3, (50,))
        r = fit_ridge(f, labels, 3, alpha=1.0)
        model.set_readout(r.weight, r.bias, n_steps=30)
        assert np.allclose(model.logits(x).detach().numpy(), r.logits(f), atol=1e-3)


def test_diagnostics_rates():
    model = LSM(LSMConfig(n_inputs=16, size=50, reservoir="maass", grid=[5, 5, 2], seed=0))
    d = model.diagnostics(_spikes(50, 4, 16, 0.2, 0))
    assert d["n_excitatory"] == 40 and d["n_inhibitory"] == 10
    assert 0 < d["mean_rate"] < 1 and 0 <= d["silent_fraction"] <= 1
    assert {"rate_excitatory", "rate_inhibitory", "spectral_radius"} <= set(d)


# ------------------------------------------------------------------------------ lowering + integer
def _trained(n_in=16, size=60, seed=0) -> tuple[LSM, torch.Tensor]:
    model = LSM(LSMConfig(n_inputs=n_in, size=size, n_outputs=3, n_steps=40, seed=seed))
    x = _spikes(40, 6, n_in, 0.2, seed + 1)
    f = spike_features(model.reservoir_spikes(x))
    r = fit_ridge(f, torch.arange(6) % 3, 3, alpha=10.0)
    model.set_readout(r.weight, r.bias, n_steps=40)
    return model, x


def test_lsm_lowers_to_a_recurrent_population():
    model, x = _trained()
    g = from_module(model)
    kinds = {n: node.kind for n, node in g.nodes.items()}
    assert kinds == {"input": "Input", "reservoir.input": "Linear", "reservoir.neuron": "LIF",
                     "reservoir.recurrent": "Linear", "readout": "Affine", "integrator": "LI",
                     "output": "Output"}
    assert ("reservoir.recurrent", "reservoir.neuron") in g.edges
    assert ("reservoir.neuron", "reservoir.recurrent") in g.edges
    assert np.array_equal(g.nodes["reservoir.recurrent"].weight, model.w_rec.numpy())
    rec = simulate(g, x, record=True)
    assert torch.equal(rec["reservoir.neuron"], model.reservoir_spikes(x))
    assert torch.allclose(rec["output"], model(x)[0], atol=1e-5)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_lsm_integer_graph_in_every_format(fmt):
    model, x = _trained()
    g = from_module(model)
    q = quantize(g, fmt)
    assert isinstance(q.nodes["reservoir.neuron"], N.LIF) and q.nodes["reservoir.neuron"].q
    ints = {"input": x.numpy().astype(np.int64)}
    fast = simulate_int(q, ints, record=True)
    loop = simulate_int(q, ints, record=True, compiled=False)
    assert np.array_equal(fast["reservoir.neuron"], loop["reservoir.neuron"])
    assert np.array_equal(fast["output"], loop["output"])
    s_float = model.reservoir_spikes(x).numpy()
    assert s_float.mean() > 0.02
    assert (fast["reservoir.neuron"] == s_float).mean() > 0.9  # quantised, not identical


def test_refractory_reservoir_is_not_exportable_yet():
    model = LSM(LSMConfig(n_inputs=8, size=20, refractory=2))
    g = from_module(model)
    with pytest.raises(ValueError, match="refractory"):
        quantize(g, "int16")


def test_checkpoint_roundtrip(tmp_path):
    model, x = _trained()
    path = save_checkpoint(tmp_path / "lsm.safetensors", model, name=model.name,
                           config=model.config_dict())
    loaded, meta = load_checkpoint(path)
    assert meta["model"] == "lsm" and "lsm" in BUILDERS
    assert torch.equal(loaded.reservoir_spikes(x), model.reservoir_spikes(x))
    assert torch.allclose(loaded.logits(x), model.logits(x))
