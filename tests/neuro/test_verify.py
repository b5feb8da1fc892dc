"""`neuro verify` runs every requested target, prints a row for each, compares with the float model
as well as the integer reference, and exits with a documented status (0 / 1 differs / 3 not run)."""
import json

import numpy as np
import pytest
import torch

from neuro.checkpoint import save_checkpoint
from neuro.cli import main
from neuro.graph import from_module
from neuro.hardware import agreement
from neuro.hardware.agreement import SPIKE_LOSS_WARNING, choose_format, compare_with_float
from neuro.models import SpikingMLP, SpikingMLPConfig


def _ckpt(tmp_path, reset, **cfg):
    torch.manual_seed(0)
    m = SpikingMLP(SpikingMLPConfig(layers=[12, 10, 3], reset=reset, **cfg))
    with torch.no_grad():
        m[0].weight.mul_(5)
    return save_checkpoint(tmp_path / "m.safetensors", m, name=m.name, config=m.config_dict())


def test_a_target_that_cannot_run_does_not_stop_the_others(tmp_path, capsys):
    ckpt = _ckpt(tmp_path, "subtract")  # Lava's LIF cannot subtract: loihi cannot run it
    code = main(["verify", str(ckpt), "--formats", "int8", "--targets", "loihi,fpga",
                 "--out", str(tmp_path / "v.json")])
    out, err = capsys.readouterr()
    assert code == 3
    assert "loihi      -         NOT RUN: cannot run this model" in out
    assert "fpga" in out and "IDENTICAL to its reference" in out  # tried after loihi failed
    assert "vs the float model: spike agreement" in out
    assert "could not run on loihi (exit 3)" in err
    rep = json.loads((tmp_path / "v.json").read_text())
    assert [t["target"] for t in rep["targets"]] == ["fpga"]
    assert rep["not_run"][0]["target"] == "loihi"
    assert 0 < rep["targets"][0]["float"]["agreement"] <= 1


def test_all_targets_ok_exits_0_and_a_difference_exits_1(tmp_path, capsys, monkeypatch):
    ckpt = _ckpt(tmp_path, "zero")
    assert main(["verify", str(ckpt), "--formats", "", "--targets", "spinnaker,fpga"]) == 0
    from neuro.hardware import spinnaker

    real_run = spinnaker.run

    def flipped(*a, **kw):  # a target that gets one spike wrong
        res = real_run(*a, **kw)
        name = next(iter(res.spikes))
        res.spikes[name] = res.spikes[name].copy()
        res.spikes[name][0, 0, 0] = 1 - res.spikes[name][0, 0, 0]
        return res

    monkeypatch.setattr(spinnaker, "run", flipped)
    capsys.readouterr()
    assert main(["verify", str(ckpt), "--formats", "", "--targets", "spinnaker,fpga"]) == 1
    out, err = capsys.readouterr()
    assert "spinnaker  spinnaker DIFFERS" in out and "fpga" in out
    assert "values differ from the reference executor on spinnaker (exit 1)" in err


def test_float_agreement_counts_lost_spikes_and_compares_readouts():
    from neuro.graph import Graph, nodes

    g = Graph({"in": nodes.Input(shape=(4,)), "a": nodes.Linear(weight=np.eye(4, dtype=np.float32)),
               "l": nodes.LIF(beta=np.float32(0.5)), "b": nodes.Linear(weight=np.eye(4, dtype=np.float32)),
               "r": nodes.LI(beta=np.float32(0.5)), "out": nodes.Output()},
              [("in", "a"), ("a", "l"), ("l", "b"), ("b", "r"), ("r", "out")])
    rng = np.random.default_rng(0)
    ref = (rng.random((50, 2, 4)) < 0.4).astype(np.float32)
    got = ref.copy()
    ones = np.argwhere(got == 1)
    for t, b, n in ones[: int(0.2 * len(ones))]:  # the target loses 20 % of the spikes
        got[t, b, n] = 0
    mem = rng.random((50, 2, 4))
    agr = compare_with_float(g, {"l": got}, {"out": mem * 64}, {"l": ref, "out": mem})
    assert agr.spikes_kept == pytest.approx(got.sum() / ref.sum())
    assert 0.75 < agr.spikes_kept < 1 - SPIKE_LOSS_WARNING and agr.lost_too_many
    assert "loses 20 %" in agr.warning("fpga", "int8")
    assert agr.readout == {"node": "out", "samples": 2, "same_decisions": 2, "correlation": 1.0}
    same = compare_with_float(g, {"l": ref}, {}, {"l": ref})
    assert same.agreement == 1.0 and not same.lost_too_many and same.warning("x", "y") is None


def test_choose_format_prefers_the_cheapest_format_that_follows_the_float_model():
    torch.manual_seed(0)
    from neuro.layers import Linear, Sequential
    from neuro.neurons import LI, LIF

    net = Sequential(Linear(20, 16), LIF(beta=0.9), Linear(16, 4), LI(beta=0.9))
    with torch.no_grad():
        net[0].weight.mul_(3)
    g = from_module(net)
    x = (torch.rand(80, 8, 20) < 0.2).float().numpy()
    fmt, scores = choose_format(g, ("int16-m12", "int8", "int16", "int8-m12"), x)
    assert set(scores) == {"int8", "int16", "int8-m12", "int16-m12"}
    # the shift leak cannot make 0.9 (it gives 1 - 2^-k: 0.875, 0.9375); a 12-bit mantissa can
    assert scores["int8"] < agreement.GOOD_AGREEMENT <= scores[fmt]
    assert fmt == "int8-m12"


def test_labels_give_each_target_its_task_accuracy_next_to_the_float_model(tmp_path, capsys,
                                                                           monkeypatch):
    """A spike file with ``labels`` [B]: every target row shows the accuracy of *its* decisions
    on the labels next to the float model's. The expected numbers are computed here on another
    path: the float model's own ``predict``, and argmax over the target's raw outputs."""
    ckpt = _ckpt(tmp_path, "zero")
    from neuro.checkpoint import load_checkpoint

    model, _ = load_checkpoint(ckpt)
    x = (np.random.default_rng(3).random((40, 12, 12)) < 0.3).astype(np.uint8)
    pred = model.predict(torch.from_numpy(x).float()).numpy()
    labels = pred.copy()
    labels[:4] = (labels[:4] + 1) % 3  # 8 of 12 labels are what the float model decides
    np.savez(tmp_path / "in.npz", spikes=x, labels=labels)
    from neuro.hardware import fpga

    real_run, seen = fpga.run, {}

    def rolled(*a, **kw):  # a target whose readout is shifted by one class: wrong decisions
        res = real_run(*a, **kw)
        name = next(iter(res.outputs))
        res.outputs[name] = np.roll(res.outputs[name], 1, axis=-1)
        seen["out"] = res.outputs[name]
        return res

    monkeypatch.setattr(fpga, "run", rolled)
    code = main(["verify", str(ckpt), "--formats", "", "--targets", "spinnaker,fpga",
                 "--input", str(tmp_path / "in.npz"), "--out", str(tmp_path / "v.json")])
    out = capsys.readouterr().out
    assert code == 1  # the rolled readout differs from its reference
    assert "labels: 12 from" in out
    rep = {t["target"]: t for t in json.loads((tmp_path / "v.json").read_text())["targets"]}
    assert rep["spinnaker"]["float_accuracy"] == rep["fpga"]["float_accuracy"] == 8 / 12
    want = float(np.mean(seen["out"].sum(0).argmax(-1) == labels))
    assert rep["fpga"]["accuracy"] == want and want < 8 / 12
    assert f"task accuracy {rep['spinnaker']['accuracy']:.3f} (float model 0.667)" in out


def test_bad_labels_are_one_line_errors(tmp_path, capsys):
    ckpt = _ckpt(tmp_path, "zero")
    np.savez(tmp_path / "in.npz", spikes=np.zeros((5, 4, 12), np.uint8), labels=np.zeros(3, np.int64))
    assert main(["verify", str(ckpt), "--formats", "int8", "--input", str(tmp_path / "in.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("neuro: error: ") and "'labels' must be [B] = [4]" in err
    assert len(err.strip().splitlines()) == 1


def test_decisions_rescale_a_quantized_readout_to_the_model_rule():
    """DelaySNN decides by the summed softmax (not scale-free): on the s16.15 integer readout,
    rescaled by the population's scale, it decides as the float model's ``predict``."""
    from neuro.graph import quantize, simulate
    from neuro.models import DelaySNN, DelaySNNConfig
    from neuro.verify import decisions

    torch.manual_seed(0)
    m = DelaySNN(DelaySNNConfig(n_inputs=12, n_hidden=16, n_layers=2, n_outputs=4, max_delay=5,
                                dropout=0.0, tau=2.0, right_padding=0))
    with torch.no_grad():
        for layer in m.delayed_layers():
            layer.weight.mul_(2.0)
    m.eval().integer_delays()
    x = (torch.rand(40, 16, 12) < 0.2).float()
    g = from_module(m)
    want = m.predict(x).numpy()
    assert len(set(want.tolist())) > 1  # not one class for every sample
    assert np.array_equal(decisions(m.decide, g, {k: v.numpy() for k, v in simulate(g, x).items()}), want)
    q = quantize(g, "spinnaker", calibration_inputs=x)
    out = {k: v.numpy() for k, v in simulate(q, x.numpy().astype(np.int64)).items()}
    assert np.abs(out[q.outputs()[0]]).max() > 100  # integer units, far from float ones
    assert np.array_equal(decisions(m.decide, q, out), want)


def test_export_chooses_the_fpga_format_by_agreement_unless_given(tmp_path, capsys):
    """``neuro export --target fpga`` without ``--format`` applies verify's rule on ``--input``
    and says so; ``--format`` is kept as given."""
    from neuro.checkpoint import load_checkpoint
    from neuro.hardware.base import read_manifest

    ckpt = _ckpt(tmp_path, "zero", beta=0.6)  # int8's shift leak makes 0.6 into 0.5
    x = (np.random.default_rng(5).random((40, 6, 12)) < 0.3).astype(np.uint8)
    np.savez(tmp_path / "in.npz", spikes=x)
    model, _ = load_checkpoint(ckpt)
    want, scores = choose_format(from_module(model), ("int8", "int16", "int8-m12", "int16-m12"), x)
    assert want == "int8-m12" and scores["int8"] < 0.99  # not the old fixed default
    assert main(["export", str(ckpt), "--target", "fpga", "--out", str(tmp_path / "a"),
                 "--input", str(tmp_path / "in.npz")]) == 0
    out = capsys.readouterr().out
    assert f"format {want}: the cheapest of" in out and "--format NAME chooses by hand" in out
    assert read_manifest(tmp_path / "a")["number_format"] == want
    assert main(["export", str(ckpt), "--target", "fpga", "--format", "int8", "--out",
                 str(tmp_path / "b"), "--input", str(tmp_path / "in.npz")]) == 0
    assert "the cheapest of" not in capsys.readouterr().out
    assert read_manifest(tmp_path / "b")["number_format"] == "int8"
