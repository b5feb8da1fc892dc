"""Loihi speed benchmark (W4): neuro's integer reference executor vs Lava's bit-accurate simulator.

The network, quantized once to the ``loihi2`` format and run by both on the same spikes::

    700 -> Linear -> 256 LIF (beta 0.9, threshold 1, zero reset) -> Linear -> 20 LI (beta 0.9)

Weights: ``neuro.layers.Linear`` init (seed 0) times 4, no biases; input Bernoulli(0.05) spikes
``[T=1000, B=1, 700]`` (seed 1); quantized with ``neuro.hardware.loihi.compile`` (calibrated on
that input).

Workload ``W4``: batch 1, T = 1000 steps; ms per 1000 steps.

Implementations:

* ``neuro``: ``neuro.graph.intsim.simulate_int(q, spikes)``: the integer reference executor on
  the quantized graph (the path every backend is checked against; C++ integer LIF kernel, exact
  integer matmuls), ``torch.set_num_threads(2)``, in this process; each round times ``reps``
  calls and keeps their median.
* ``lava``: ``neuro.hardware.loihi.run(artifact, spikes)``: lava-nc 0.10.0
  ``Loihi2SimCfg(select_tag="fixed_pt")`` in the worker process (RingBuffer -> Dense -> LIF ->
  Dense -> LIF, a sink for the hidden spikes and a Monitor for the readout: 7 Lava processes, each
  an OS process). The figure is the run phase only: Lava executes T + 2 steps (the two Dense
  latencies are removed afterwards), timed inside the worker around ``Process.run``, scaled to
  1000 steps. Interpreter start, Lava import, compilation and process start-up are excluded
  (reported separately as ``lava_startup_s``).

Check (every round): Lava's hidden spikes and readout membranes equal ``simulate_int``'s bit for
bit; a mismatch stops the benchmark.

Method: rounds interleaved (the order alternates per round), medians over rounds; the machine's
CPU load from other processes during each round is recorded. Goal: lava/neuro >= 200.

Usage (from the repository root; Lava from ``$NEURO_LAVA_PYTHON``, else ``.venv-lava`` made by
``make lava``)::

    PYTHONPATH=. python benchmarks/loihi_speed.py            # 7 rounds
    PYTHONPATH=. python benchmarks/loihi_speed.py --quick    # 2 rounds, 2 reps (same workload)
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import check_installed, machine_info, own_cpu_s, summary, system_busy_s, write_results

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "benchmarks" / "results" / "loihi_speed.json"
NUM_THREADS = 2
SIZES = (700, 256, 20)
T, RATE, WEIGHT_SCALE, SEED = 1000, 0.05, 4.0, 0
GOAL = 200.0


def own_and_children_cpu_s() -> float:
    """CPU seconds of this process and its finished children (the Lava workers and their
    processes), so the load of *other* processes can be told apart."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own_cpu_s() + ru.ru_utime + ru.ru_stime


def build() -> tuple[Any, Any]:
    """The float graph and the input spikes ``[T, 1, 700]``."""
    import numpy as np
    import torch

    from neuro.graph import from_module
    from neuro.layers import Linear, Sequential
    from neuro.neurons import LI, LIF

    torch.manual_seed(SEED)
    l1, l2 = Linear(SIZES[0], SIZES[1], bias=False), Linear(SIZES[1], SIZES[2], bias=False)
    with torch.no_grad():
        l1.weight.mul_(WEIGHT_SCALE)
        l2.weight.mul_(WEIGHT_SCALE)
    g = from_module(Sequential(l1, LIF(beta=0.9, threshold=1.0, reset="zero"), l2, LI(beta=0.9)))
    x = (np.random.default_rng(SEED + 1).random((T, 1, SIZES[0])) < RATE).astype(np.float32)
    return g, x


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--quick", action="store_true", help="2 rounds of 2 reps (same workload)")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output ({DEFAULT_OUT})")
    args = p.parse_args(argv)
    versions = check_installed("loihi_speed", {"numpy": "numpy"})
    machine = machine_info(versions, NUM_THREADS)

    import numpy as np

    from neuro.graph.intsim import simulate_int
    from neuro.hardware import loihi
    from neuro.hardware.base import as_int_spikes, load_artifact_graph

    repo_lava = REPO / ".venv-lava" / "bin" / "python"  # made by `make lava`
    if not os.environ.get("NEURO_LAVA_PYTHON") and repo_lava.exists():
        os.environ["NEURO_LAVA_PYTHON"] = str(repo_lava)
    try:
        lava_info = loihi.probe()
    except loihi.LavaWorkerError as exc:
        print(f"loihi_speed: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    machine.update({"lava_nc": lava_info["lava"], "lava_python": lava_info["python"],
                    "lava_numpy": lava_info["numpy"]})
    rounds = args.rounds or (2 if args.quick else 7)
    reps = 2 if args.quick else 5
    print(f"Loihi speed benchmark (W4): {machine['cpu']}, {machine['cores']} cores, neuro "
          f"{machine['neuro']} [{machine['neuro_backend']}, {NUM_THREADS} threads], lava-nc "
          f"{lava_info['lava']} (Python {lava_info['python']}, numpy {lava_info['numpy']})")

    g, x = build()
    with tempfile.TemporaryDirectory() as tmp:
        art = loihi.compile(g, Path(tmp) / "art", calibration_inputs=x)
        q = load_artifact_graph(art)
        spikes = as_int_spikes(q, x)
        hidden = [n for n, node in q.nodes.items() if node.kind == "LIF"][0]
        simulate_int(q, spikes)  # warm-up: loads the C++ kernels
        per = {"neuro": [], "lava": []}
        extra: dict[str, list[float]] = {"lava_startup_s": [], "foreign_load": []}
        for r in range(rounds):
            busy0, own0, t0 = system_busy_s(), own_and_children_cpu_s(), time.perf_counter()
            order = ("neuro", "lava") if r % 2 == 0 else ("lava", "neuro")
            for impl in order:
                if impl == "neuro":
                    times = []
                    for _ in range(reps):
                        s = time.perf_counter()
                        ref = simulate_int(q, spikes, record=True)
                        times.append(time.perf_counter() - s)
                    per["neuro"].append(statistics.median(times) * 1e3)
                else:
                    s = time.perf_counter()
                    res = loihi.run(art, x)
                    wall = time.perf_counter() - s
                    st = res.stats
                    run_s = st["lava_run_seconds"]
                    per["lava"].append(run_s / st["lava_steps_per_sample"] * T * 1e3)
                    extra["lava_startup_s"].append(wall - run_s)
            same = (np.array_equal(res.spikes[hidden], ref[hidden])
                    and np.array_equal(res.outputs["output"], ref["output"]))
            if not same:
                print("loihi_speed: Lava's spikes differ from simulate_int's", file=sys.stderr)
                return 1
            elapsed = time.perf_counter() - t0
            load = max(0.0, (system_busy_s() - busy0 - (own_and_children_cpu_s() - own0)) / (elapsed * (os.cpu_count() or 1)))
            extra["foreign_load"].append(load)
            print(f"  round {r + 1}: neuro {per['neuro'][-1]:.2f} ms, lava {per['lava'][-1]:.0f} ms "
                  f"(+{extra['lava_startup_s'][-1]:.1f} s start-up), spikes identical "
                  f"({int(ref[hidden].sum())} hidden spikes), load of other processes "
                  f"<= {load:.0%}")
    results = {k: statistics.median(v) for k, v in per.items()}
    ratio = results["lava"] / results["neuro"]
    print()
    print(f"{'workload':9s} {'unit':4s} {'neuro':>10s} {'lava':>10s} {'lava/neuro':>11s}  goal")
    print(f"{'W4':9s} {'ms':4s} {results['neuro']:10.2f} {results['lava']:10.1f} {ratio:11.1f}  "
          f">= {GOAL:.0f}x: {'met' if ratio >= GOAL else 'NOT met'}")
    print(f"  per step: neuro {results['neuro'] / T * 1e3:.2f} us, lava {results['lava'] / T:.3f} ms")
    data = {"machine": machine, "workloads": {"W4": {
        "unit": "ms", "lower_is_better": True, "results": results,
        "ratios": {"lava/neuro": ratio},
        "goal": {"text": f"lava/neuro >= {GOAL:.0f}", "met": ratio >= GOAL},
        "stats": {k: summary(v) for k, v in per.items()},
        "rounds": per, "lava_startup_s": summary(extra["lava_startup_s"]),
        "foreign_load": extra["foreign_load"],
        "config": {"sizes": list(SIZES), "steps": T, "batch": 1, "input_rate": RATE,
                   "weight_scale": WEIGHT_SCALE, "reps_per_round": reps, "rounds": rounds,
                   "quick": args.quick, "threads": NUM_THREADS,
                   "lava": "Loihi2SimCfg(select_tag='fixed_pt'), run phase only, per 1000 steps"},
        "spikes_identical": True}}}
    write_results(args.out, data)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
