"""The integer SpikeGPT (neuro.graph.spikegpt_int): table errors, closeness to the float graph,
registers and refusals."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neuro.graph import GraphError, simulate
from neuro.graph import spikegpt_int as SI
from neuro.models.spikegpt import SpikeGPT, SpikeGPTConfig
from neuro.models.spikegpt.graph import one_hot_tokens, to_graph
from neuro.models.spikegpt.wkv import wkv


def tiny(seed=0, spiking=True):
    torch.manual_seed(seed)
    m = SpikeGPT(SpikeGPTConfig(vocab_size=16, n_layer=2, n_embd=16, ctx_len=8,
                                spiking=spiking)).eval()
    with torch.no_grad():  # away from the initialisation's zero matrices
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return to_graph(m)


def tokens(T, B, V=16, seed=0):
    return one_hot_tokens(np.random.default_rng(seed).integers(0, V, (T, B)), V)


def test_exp_table_error():
    F, o = 14, SI.NumpyOps()
    z = np.arange(-(16 << F), 1, 7, dtype=np.int64)
    e = SI._exp(o, z, F, SI.exp_table()) / 2.0 ** SI.EXP_FRAC
    ref = np.exp(z / 2.0 ** F)
    assert np.abs(e - ref).max() < 4e-5  # interpolation h^2/8 = 3.1e-5 plus output rounding
    # relative interpolation error h^2/8 plus knot rounding (1/2 LSB) and the floor (1 LSB)
    assert (np.abs(e - ref) <= 3.2e-5 * ref + 1.5 * 2.0 ** -16).all()
    assert SI._exp(o, np.array([0]), F, SI.exp_table())[0] == 1 << SI.EXP_FRAC  # exactly one
    assert SI._exp(o, np.array([-(1 << 40)]), F, SI.exp_table())[0] == 0


def test_layer_norm_inverse_square_root_error():
    F, o = 12, SI.NumpyOps()
    rng = np.random.default_rng(0)
    C = 64
    for scale in (0.01, 1.0, 30.0):
        x = rng.normal(0, scale, (200, C)) + rng.normal(0, scale, (200, 1))
        xi = np.round(x * 2 ** F).astype(np.int64)
        one = np.full(C, 1 << F, np.int64)
        y = SI._layer_norm(o, xi, one, np.zeros(C, np.int64), max(1, round(1e-5 * 4.0 ** F)), C,
                           F, SI.rsqrt_table()) / 2.0 ** F
        xr = xi / 2.0 ** F  # the same input, in float64
        ref = (xr - xr.mean(1, keepdims=True)) / np.sqrt(xr.var(1, keepdims=True) + 1e-5)
        # measured: see the assertion message
        assert np.abs(y - ref).max() < 1.5e-3, scale


def test_wkv_follows_the_float_recurrence():
    F, o = 14, SI.NumpyOps()
    rng = np.random.default_rng(0)
    C, T = 8, 300
    td, tf = rng.normal(0, 1.5, C), rng.normal(0, 1, C)
    k, v = rng.normal(0, 2, (T, 1, C)), rng.normal(0, 1, (T, 1, C))
    ref = wkv(torch.tensor(td), torch.tensor(tf), torch.tensor(k), torch.tensor(v))[0].numpy()

    class R:
        pass

    R.F, R.exp = F, SI.exp_table()
    R.int_field = staticmethod(lambda n, f: np.round((-np.exp(td) if f == "time_decay" else tf)
                                                     * 2 ** F).astype(np.int64))
    st = {"w/a": np.zeros((1, C), np.int64), "w/b": np.zeros((1, C), np.int64),
          "w/p": np.full((1, C), SI.P_FRESH, np.int64)}
    ys = []
    for t in range(T):
        nxt: dict = {}
        ys.append(SI._wkv(o, R, "w", np.round(k[t] * 2 ** F).astype(np.int64),
                          np.round(v[t] * 2 ** F).astype(np.int64), st, nxt))
        st = nxt
    assert np.abs(np.stack(ys) / 2 ** F - ref).max() < 5e-4  # measured 1.5e-4


def test_integer_graph_follows_the_float_graph():
    g, x = tiny(), tokens(100, 2)
    q = SI.quantize_spikegpt(g, "int8", x)
    F = q.metadata["spikegpt_int"]["frac_bits"]
    assert F == 14  # the largest activation here is about 20 (6 bits): F_MAX
    ri = SI.simulate_spikegpt_int(q, {"input": x.astype(np.int64)}, record=True)
    rf = {k: v.numpy() for k, v in simulate(g, x, record=True).items()}
    # block 0's time mixing (before any spike can differ): the int8 weights dominate the error
    for n, bound in (("blocks.0.ln1", 2e-4), ("blocks.0.att.wkv", 0.015),
                     ("blocks.0.att.output", 0.03)):
        rel = np.abs(ri[n] / 2.0 ** F - rf[n]).max() / np.abs(rf[n]).max()
        assert rel < bound, (n, rel)  # measured 6.9e-5, 5.9e-3, see the message
    for n in ("blocks.0.lif1", "blocks.1.lif2"):
        assert (ri[n] == rf[n]).mean() > 0.98  # measured 0.9997, 0.9916
    logits_i, logits_f = ri["output"] / 2.0 ** F, rf["output"]
    assert (logits_i.argmax(-1) == logits_f.argmax(-1)).mean() >= 0.9  # measured 0.93
    # simulate() hands a quantized SpikeGPT graph to the integer executor (intsim hook)
    out = simulate(q, x)["output"].numpy()
    assert np.array_equal(out, ri["output"])


def test_registers_and_round_trip(tmp_path):
    from neuro.graph import Graph

    q = SI.quantize_spikegpt(tiny(), "int8", frac_bits=10)
    lin = q.metadata["spikegpt_int"]["linear"]["blocks.0.att.key"]
    w = np.asarray(q.nodes["blocks.0.att.key"].weight)
    assert np.abs(w).max() == 127 and (w == np.round(w)).all()  # per-channel: each row hits 127
    assert (np.abs(w).max(1) == 127).all() and max(lin["mult"]) < 2 ** 15
    lq = q.nodes["blocks.0.lif1"].q
    assert np.all(np.asarray(lq["vth"]) == 1 << 10) and np.all(np.asarray(lq["gain_m"]) == 2048)
    q.save(tmp_path / "g")
    q2 = Graph.load(tmp_path / "g")
    x = tokens(20, 1).astype(np.int64)
    a = SI.simulate_spikegpt_int(q, {"input": x})["output"]
    b = SI.simulate_spikegpt_int(q2, {"input": x})["output"]
    assert np.array_equal(a, b)


def test_refusals_name_the_problem():
    g = tiny()
    with pytest.raises(ValueError, match="pure-integer fixed format"):
        SI.quantize_spikegpt(g, "spinnaker")
    with pytest.raises(ValueError, match="frac_bits must lie in"):
        SI.quantize_spikegpt(g, "int8", frac_bits=20)
    q = SI.quantize_spikegpt(g, "int8")
    with pytest.raises(GraphError, match="already quantized"):
        SI.quantize_spikegpt(q, "int8")
    bad = tokens(5, 1).astype(np.int64)
    bad[2, 0, 3] = 1
    with pytest.raises(ValueError, match="one-hot tokens"):
        SI.simulate_spikegpt_int(q, {"input": bad})
    nl = tiny(spiking=False)  # the non-spiking baseline has an integer form too
    assert SI.problems(nl, "int8") == []


@pytest.mark.parametrize("s", (0, pytest.param(1, marks=pytest.mark.slow),
                               pytest.param(2, marks=pytest.mark.slow)))
def test_integer_form_of_the_golden_model_follows_the_authors_data(s):
    """The authors' golden data (tests/fixtures/spikegpt, 2 x 32, vocabulary 77) as the
    independent oracle: spikes, next-token decisions and loss of the int8 integer model."""
    from pathlib import Path

    from safetensors.torch import load_file

    from neuro.graph import from_module
    from neuro.models.spikegpt.reference import load_reference

    fix = Path(__file__).resolve().parents[2] / "fixtures" / "spikegpt"
    model = load_reference(fix / "weights.safetensors").eval()
    golden = {k: v.transpose(0, 1).numpy() for k, v in
              load_file(str(fix / "golden.safetensors")).items() if k.startswith(f"set{s}.")
              and v.dim() == 3 or k in (f"set{s}.idx", f"set{s}.targets")}
    loss = float(load_file(str(fix / "golden.safetensors"))[f"set{s}.loss"])
    x = one_hot_tokens(golden[f"set{s}.idx"], 77)
    q = SI.quantize_spikegpt(from_module(model), "int8", x)
    F = q.metadata["spikegpt_int"]["frac_bits"]
    r = SI.simulate_spikegpt_int(q, {"input": x.astype(np.int64)}, record=True)
    for i in range(2):
        for lif, name in (("lif1", "att"), ("lif2", "ffn")):
            agree = (r[f"blocks.{i}.{lif}"] == golden[f"set{s}.L{i}.{name}_spikes"]).mean()
            assert agree > 0.985, (i, name, agree)  # measured 0.991 .. 1.0
    logits = r["output"] / 2.0 ** F
    assert (logits.argmax(-1) == golden[f"set{s}.logits"].argmax(-1)).mean() >= 0.93  # 0.94 .. 0.97
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    ce = float(-np.take_along_axis(logp, golden[f"set{s}.targets"][..., None], -1).mean())
    assert abs(ce - loss) < 0.03, (ce, loss)  # nats; measured 0.022, 0.002, 0.001
