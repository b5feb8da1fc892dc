"""The determinism guarantee stated in the README (issue 19).

* The integer path from a given checkpoint (quantize, then the integer reference executor and a
  bit-exact target) gives identical results with 1 and 2 torch threads.
* ``--deterministic`` gives the same weights for the same seed whatever the starting thread
  count (it runs on one thread with torch's deterministic algorithms), and every checkpoint
  records the thread count and the flag.
"""
import json

import numpy as np
import torch

from neuro.checkpoint import read_checkpoint, save_checkpoint
from neuro.cli import main
from neuro.graph import from_module
from neuro.graph.intsim import simulate_int
from neuro.graph.quantize import quantize
from neuro.hardware import get_backend
from neuro.hardware.base import as_int_spikes
from neuro.models import SpikingMLP, SpikingMLPConfig


def test_integer_path_is_identical_with_1_and_2_threads(tmp_path):
    torch.manual_seed(3)
    m = SpikingMLP(SpikingMLPConfig(layers=[40, 32, 5], reset="zero"))
    with torch.no_grad():
        m[0].weight.mul_(4)
    x = (np.random.default_rng(0).random((30, 4, 40)) < 0.2).astype(np.float32)
    runs = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        q = quantize(from_module(m), "spinnaker", calibration_inputs=x)
        ref = simulate_int(q, as_int_spikes(q, x), record=True)
        art = get_backend("spinnaker").compile(q, tmp_path / f"a{threads}")
        res = get_backend("spinnaker").run(art, x)
        runs.append((q.digest(), ref, res.spikes, q))
    (d1, r1, s1, q), (d2, r2, s2, _) = runs
    assert d1 == d2
    assert all(np.array_equal(r1[k], r2[k]) for k in r1)
    assert all(np.array_equal(s1[k], s2[k]) for k in s1)
    assert sum(int(v.sum()) for k, v in s1.items() if q.nodes[k].spiking) > 0  # not silence


def test_checkpoints_record_threads_and_the_flag(tmp_path):
    torch.set_num_threads(2)
    m = SpikingMLP(SpikingMLPConfig(layers=[3, 2]))
    _, meta = read_checkpoint(save_checkpoint(tmp_path / "m.safetensors", m, name=m.name,
                                              config=m.config_dict()))
    assert meta["info"]["torch_threads"] == 2 and meta["info"]["deterministic"] is False


def test_deterministic_training_ignores_the_thread_count(tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"n_hidden": 16}))
    weights = []
    try:
        for threads in (2, 1):
            torch.set_num_threads(threads)
            out = tmp_path / f"run{threads}"
            assert main(["train", "delay-snn", "--epochs", "1", "--config", str(cfg), "--out",
                         str(out), "--deterministic"]) == 0
            tensors, meta = read_checkpoint(out / "model.safetensors")
            assert meta["info"]["torch_threads"] == 1 and meta["info"]["deterministic"] is True
            weights.append(tensors)
    finally:
        torch.use_deterministic_algorithms(False)
        torch.set_num_threads(2)
    a, b = weights
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
