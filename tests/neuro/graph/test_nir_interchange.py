"""NIR for the main model and for foreign files: the delay SNN's BatchNorm (ChannelAffine) exports
and round-trips, snnTorch's importer runs it, and `neuro import` asks for what a file does not say
(the step, the reset) instead of guessing. Oracles: snnTorch 1.0 and Norse 1.1 (their own NIR
exporters and importers), installed by ``make test``."""
import warnings

import nir
import norse.torch as norse
import numpy as np
import pytest
import snntorch as snn
import torch
from snntorch import utils as snn_utils
from snntorch.export_nir import export_to_nir
from snntorch.import_nir import import_from_nir

from neuro.checkpoint import save_checkpoint
from neuro.cli import main
from neuro.graph import from_module, from_nir, nodes, read_nir, simulate, to_nir, write_nir
from neuro.layers import BatchNormTime, Linear, Sequential
from neuro.models import DelaySNN, DelaySNNConfig
from neuro.neurons import LIF

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _delay_snn() -> DelaySNN:
    """The demo's network (BatchNorm, learned delays), with running statistics that are not 0/1."""
    torch.manual_seed(0)
    model = DelaySNN(DelaySNNConfig(n_inputs=16, n_hidden=24, n_outputs=4, max_delay=9,
                                    batchnorm=True, dt=0.01))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.1, 0.3)
    return model


def _lowered(model):
    with model.export_view() as m:
        return from_module(m)


def test_channel_affine_is_an_exact_diagonal_affine(tmp_path):
    g = _lowered(_delay_snn())
    cas = [k for k, n in g.nodes.items() if isinstance(n, nodes.ChannelAffine)]
    assert cas, "the demo network lowers its BatchNorm to a ChannelAffine"
    n = to_nir(g)
    ca = n.nodes[cas[0]]
    assert isinstance(ca, nir.Affine)  # what every NIR reader understands
    np.testing.assert_array_equal(np.diag(ca.weight), g.nodes[cas[0]].scale)
    np.testing.assert_array_equal(ca.weight - np.diag(np.diag(ca.weight)), 0)
    np.testing.assert_array_equal(ca.bias, g.nodes[cas[0]].shift)
    back = read_nir(write_nir(g, tmp_path / "m.nir"))
    assert back.equals(g) and isinstance(back.nodes[cas[0]], nodes.ChannelAffine)
    x = (torch.rand(30, 5, 16) < 0.3).float()
    a, b = simulate(g, x, record=True), simulate(back, x, record=True)
    spiking = [k for k, v in g.nodes.items() if v.spiking and v.role != "input"]
    assert all(a[k].sum() > 0 for k in spiking), "an inactive network would prove nothing"
    assert all(torch.equal(a[k], b[k]) for k in a)
    # edited by another tool (no longer diagonal): read by its NIR parameters, as an Affine
    ca.weight[0, 1] = 0.5
    assert isinstance(from_nir(n).nodes[cas[0]], nodes.Affine)


def test_cli_demo_network_roundtrips_neuro_nir_neuro(tmp_path, capsys):
    model = _delay_snn()
    ckpt = save_checkpoint(tmp_path / "m.safetensors", model, name=model.name,
                           config=model.config_dict())
    np.savez(tmp_path / "in.npz", spikes=(np.random.default_rng(0).random((30, 4, 16)) < 0.3)
             .astype(np.uint8))
    assert main(["export", str(ckpt), "--target", "nir", "--out", str(tmp_path / "n")]) == 0
    assert main(["import", str(tmp_path / "n" / "model.nir"), "--out",
                 str(tmp_path / "back.safetensors")]) == 0
    assert "warning" not in capsys.readouterr().err  # neuro's own file records dt and resets
    for name in ("m", "back"):
        assert main(["run", str(tmp_path / f"{name}.safetensors"), "--input",
                     str(tmp_path / "in.npz"), "--out", str(tmp_path / f"{name}.npz")]) == 0
    a, b = np.load(tmp_path / "m.npz"), np.load(tmp_path / "back.npz")
    assert a["spikes"].sum() > 0
    assert np.array_equal(a["spikes"], b["spikes"]) and np.array_equal(a["output"], b["output"])


def test_snntorch_importer_runs_a_batchnorm_network_like_neuro():
    """Linear -> BatchNorm -> LIF -> Linear -> LIF at snnTorch's step: its importer reads the
    ChannelAffine as a Linear layer and gives neuro's spikes."""
    torch.manual_seed(0)
    kw = dict(reset="zero", dt=1e-4)
    model = Sequential(Linear(10, 12), BatchNormTime(12), LIF(12, beta=0.9, **kw),
                       Linear(12, 5), LIF(5, beta=0.85, **kw))
    with torch.no_grad():
        model[0].weight.mul_(3)
        model[3].weight.mul_(3)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 2.0)
    model.eval()
    g = from_module(model)
    assert any(isinstance(n, nodes.ChannelAffine) for n in g.nodes.values())
    x = (torch.rand(60, 3, 10) < 0.3).float()
    ours = simulate(g, x, record=True)
    assert ours["2"].sum() > 0 and ours["output"].sum() > 0
    net = import_from_nir(to_nir(g))
    snn_utils.reset(net)
    outs, state = [], None
    with torch.no_grad():
        for t in range(x.shape[0]):
            out, state = net(x[t]) if state is None else net(x[t], state)
            outs.append(out)
    assert torch.equal(torch.stack(outs), ours["output"])


def _norse_file(tmp_path):
    """A Norse LIFBox network exported by Norse's own to_nir (dt = 1e-3 s), and its spikes."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(10, 8)
    with torch.no_grad():
        lin.weight.mul_(12)
    n = 8  # per-neuron parameters: nir.write cannot store Norse's default scalar tensors
    cell = norse.LIFBoxCell(norse.LIFBoxParameters(
        tau_mem_inv=torch.full((n,), 100.0), v_leak=torch.zeros(n), v_th=torch.ones(n),
        v_reset=torch.zeros(n)))
    x = (torch.rand(100, 2, 10) < 0.3).float()
    state, outs = None, []
    with torch.no_grad():
        for t in range(x.shape[0]):
            z, state = cell(lin(x[t]), state)
            outs.append(z)
    nir.write(tmp_path / "norse.nir", norse.to_nir(norse.SequentialState(lin, cell), x[0, 0],
                                                   dt=1e-3))
    np.savez(tmp_path / "x.npz", spikes=x.numpy().astype(np.uint8))
    return tmp_path / "norse.nir", torch.stack(outs)


def test_norse_file_without_a_step_is_refused_then_imports_exactly_with_dt(tmp_path, capsys):
    path, ref = _norse_file(tmp_path)
    assert nir.read(path).metadata == {}  # Norse records no step
    out = str(tmp_path / "n.safetensors")
    assert main(["import", str(path), "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "records no time step" in err and "--dt" in err
    assert not (tmp_path / "n.safetensors").exists()
    # Norse 1.1 writes tau = dt / tau_mem_inv (dt times the time constant, norse#411), so the
    # step that reproduces a run at dt = 1e-3 s is 1e-6 s: beta = 1 - 1e-6 / 1e-5 = 0.9
    assert main(["import", str(path), "--out", out, "--dt", "1e-6"]) == 0
    assert "does not record the reset of 1" in capsys.readouterr().err  # NIR's rule, said aloud
    assert main(["run", out, "--input", str(tmp_path / "x.npz"), "--out",
                 str(tmp_path / "o.npz")]) == 0
    spikes = np.load(tmp_path / "o.npz")["spikes"]
    assert ref.sum() > 50 and np.array_equal(spikes, ref.numpy())


def test_snntorch_leaky_reset_warning_and_options(tmp_path, capsys):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(10, 6),
                              snn.Leaky(beta=torch.full((6,), 0.9), threshold=torch.ones(6),
                                        init_hidden=True, output=True))
    with torch.no_grad():
        net[0].weight.mul_(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nir.write(tmp_path / "s.nir", export_to_nir(net, torch.zeros(1, 10), ignore_dims=[0]))
    out = str(tmp_path / "s.safetensors")
    assert main(["import", str(tmp_path / "s.nir"), "--out", out, "--dt", "1e-4"]) == 0
    err = capsys.readouterr().err
    assert "does not record the reset" in err and "--reset subtract --reset-timing deferred" in err
    assert main(["import", str(tmp_path / "s.nir"), "--out", out, "--dt", "1e-4",
                 "--reset", "subtract", "--reset-timing", "deferred"]) == 0
    assert "warning" not in capsys.readouterr().err
    g = read_nir(tmp_path / "s.nir", 1e-4, reset="subtract", reset_timing="deferred")
    lif = next(n for n in g.nodes.values() if isinstance(n, nodes.LIF))
    assert (lif.reset, lif.reset_timing) == ("subtract", "deferred")
    with pytest.raises(SystemExit) as exc:
        main(["import", str(tmp_path / "s.nir"), "--out", out, "--dt", "-1"])
    assert exc.value.code == 2 and "--dt" in capsys.readouterr().err


def test_dt_option_overrides_a_recorded_step_with_a_warning(tmp_path, capsys):
    g = from_module(Sequential(Linear(4, 3), LIF(3, beta=0.9, dt=0.01)))
    write_nir(g, tmp_path / "m.nir")
    assert main(["import", str(tmp_path / "m.nir"), "--out", str(tmp_path / "a.safetensors"),
                 "--dt", "0.001"]) == 0
    assert "records dt=0.01 s; using --dt 0.001" in capsys.readouterr().err
