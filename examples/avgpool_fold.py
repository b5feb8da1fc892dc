"""How close the integer form of an ``AvgPool2d`` with a non-power-of-two window comes to the
float model (issue 22).

    PYTHONPATH=. python examples/avgpool_fold.py

The network is the one of ``tests/neuro/graph/test_conv_int.py`` with its pool an
``AvgPool2d((3, 2))`` (mean over 6 cells): ``Conv2d -> IF -> AvgPool2d -> Conv2d -> IF ->
Flatten -> Linear -> LIF``, on Bernoulli(0.3) input frames ``[200, 8, 2, 9, 9]``. ``quantize``
keeps a ``SumPool2d`` and folds ``1/6`` into the next convolution's float kernel
(``neuro.graph.populations.fold_avg_pools``). Printed: the folded float graph against the
original (the fold is exact in real arithmetic; float32 rounding could flip a spike), then each
format's integer reference executor against the float model, spike agreement per IF/LIF layer.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "neuro" / "graph"))

from test_conv_int import _net, _spikes  # noqa: E402

from neuro.graph import nodes as N  # noqa: E402
from neuro.graph import quantize, simulate  # noqa: E402
from neuro.graph.populations import fold_avg_pools  # noqa: E402

LAYERS = ("n0", "n1", "n2")


def main() -> None:
    g = _net(N.AvgPool2d)
    x = torch.from_numpy(_spikes(T=200, B=8, seed=5))
    ref = simulate(g, x, record=True)
    folded = copy.deepcopy(g)
    fold_avg_pools(folded)
    rf = simulate(folded, x, record=True)
    print("spikes per layer (float):", [int(ref[n].sum()) for n in LAYERS])
    print("folded float vs float:   ", [round(float((rf[n] == ref[n]).float().mean()), 5) for n in LAYERS])
    for fmt in ("spinnaker", "int16-m12", "int16", "int8"):
        out = simulate(quantize(g, fmt, calibration_inputs=x), x, record=True)
        print(f"{fmt:10s} vs float:    ",
              [round(float((out[n].numpy() == ref[n].numpy()).mean()), 4) for n in LAYERS])


if __name__ == "__main__":
    main()
