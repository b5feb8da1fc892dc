import math

import torch

from neuro.graph import from_module
from neuro.graph.mismatch import mismatch_report
from neuro.graph.quantize import quantize
from neuro.models import SpikingMLP, SpikingMLPConfig


def _graph():
    torch.manual_seed(0)
    m = SpikingMLP(SpikingMLPConfig(layers=[30, 24, 5], reset="zero"))
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(4)
    return from_module(m)


def test_report_per_layer_and_first_divergence():
    g = _graph()
    x = (torch.rand(60, 3, 30) < 0.1).float()
    q = quantize(g, "int8", calibration_inputs=x)
    rep = mismatch_report(g, "int8", x, quantized=q)
    lif = rep.layers[0]
    assert (rep.format, rep.steps, rep.batch) == ("int8", 60, 3)
    assert lif.name == "1" and lif.kind == "LIF" and lif.spikes_float > 0
    # recompute the figures independently
    from neuro.graph import simulate

    fa, qa = simulate(g, x, record=True)["1"], simulate(q, x, record=True)["1"].float()
    assert math.isclose(lif.agreement, (fa == qa).float().mean().item())
    diff = (fa != qa).flatten(1).any(1)
    assert lif.first_divergence == (int(diff.nonzero()[0]) if diff.any() else None)
    assert "first diff" in rep.table() and rep.as_dict()["layers"][0]["name"] == "1"


def test_exact_format_reports_full_agreement():
    # spinnaker's s16.15 is fine enough for this small network: no spike differs
    g = _graph()
    x = (torch.rand(60, 3, 30) < 0.1).float()
    rep = mismatch_report(g, "spinnaker", x)
    assert rep.layers[0].agreement == 1.0 and rep.layers[0].first_divergence is None
    assert rep.layers[0].membrane_rmse < 1e-3
    # the LI readout has no spikes: its row compares the decisions of its summed membrane
    assert rep.layers[1].measure == "decisions" and rep.layers[1].agreement == 1.0
    assert "readout decisions" in rep.table()
