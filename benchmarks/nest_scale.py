"""NEST scale benchmark: the W3 liquid state machine (10,000 LIF) and a 100,000-neuron version on
NEST (1 and 2 threads) and on neuro's SpiNNaker simulator; build and simulate timed separately,
peak memory recorded.

Networks (``spinnaker_speed.py``'s W3 recipe: 100 Poisson inputs at 20 Hz, p_in = 0.1, 80/20 E/I,
delta synapses, zero reset, tau_m = 20 ms, 1000 ticks of 1 ms):

* ``W3``: 10,000 neurons, recurrent p = 0.01 (about 100 synapses per neuron, 1e6 in all);
* ``W3x10``: 100,000 neurons with the same in-degree (recurrent p = 0.001, 1e7 synapses; at
  p = 0.01 it would be 1e8 synapses, several GB in NEST: more than this 2-core machine holds).

NEST runs exactly what ``neuro run`` runs for a ``nest`` artifact: the backend's ``worker.py`` on
``nest/network.json`` + ``nest/network.npz`` (written here from sparse lists, because the graph
IR's dense 10k x 10k matrix would be 400 MB and the 100k one 40 GB). Figures: NEST's own
``build_seconds`` (create + connect) and ``simulate_seconds`` (``nest.Simulate``), wall time, and
the worker's peak RSS. The SpiNNaker simulator (s16.15, C++ engine) runs in a subprocess too:
``map_network + build_program`` is its build, ``simulate + make_stats`` its simulation. Spike
trains differ between the two (float64 vs s16.15), so spike counts are listed beside the times.
The 1- and 2-thread NEST runs must give identical spikes (checked; the script stops otherwise).

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/nest_scale.py            # 3 interleaved rounds
    PYTHONPATH=. python benchmarks/nest_scale.py --quick    # 1 round, W3 only
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import cpu_model, summary, write_results

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "benchmarks" / "results" / "nest_scale.json"
WORKER = REPO / "hardware" / "nest" / "worker.py"
N_IN, P_IN, RATE_HZ, T_TICKS, TAU_M_MS, THETA = 100, 0.1, 20.0, 1000, 20.0, 1.0
W_IN, W_E, G_INH, K_REC = 0.2, 0.05, 5.0, 100
SIZES = {"W3": 10_000, "W3x10": 100_000}


def make_data(n: int, seed: int = 0) -> dict[str, Any]:
    """``spinnaker_speed.make_data`` with recurrent p = K_REC / n (same in-degree at any n)."""
    rng = np.random.default_rng(seed)
    n_exc = int(0.8 * n)
    k = rng.binomial(n, K_REC / n, size=n)
    pre = np.repeat(np.arange(n), k)
    post = np.concatenate([rng.choice(n, size=kk, replace=False) for kk in k])
    keep = pre != post
    pre, post = pre[keep], post[keep]
    w = np.where(pre < n_exc, W_E, -G_INH * W_E)
    k_in = rng.binomial(n, P_IN, size=N_IN)
    ipre = np.repeat(np.arange(N_IN), k_in)
    ipost = np.concatenate([rng.choice(n, size=kk, replace=False) for kk in k_in])
    x = (rng.random((T_TICKS, N_IN)) < RATE_HZ * 1e-3).astype(np.int64)
    return {"n": n, "n_in": N_IN, "pre": pre, "post": post, "w": w, "ipre": ipre, "ipost": ipost,
            "w_in": np.full(ipre.size, W_IN), "x": x}


def write_nest_artifact(d: dict[str, Any], root: Path) -> None:
    """The ``nest/`` files the backend's ``compile`` writes (``hardware/nest/mapping.py``): input
    lag 1, reservoir lag 2; input connections delay 0 + 2 - 1 = 1 ms, recurrent 1 + 2 - 2 = 1 ms."""
    from neuro.hardware.nest.mapping import tau_for_beta

    tau, sim_beta = tau_for_beta(math.exp(-1.0 / TAU_M_MS))
    n = d["n"]
    (root / "nest").mkdir(parents=True)
    net = {"resolution_ms": 1.0, "neuron_model": "iaf_psc_delta",
           "inputs": [{"name": "input", "size": N_IN, "shape": [N_IN], "lag": 1}],
           "populations": [{"name": "reservoir", "kind": "LIF", "size": n, "shape": [n], "lag": 2,
                            "t_ref": 0, "has_bias": False, "beta_exact": True}],
           "projections": [{"key": "proj/0", "synapse": "w_in", "source": "input", "target": "reservoir",
                            "connections": int(d["ipre"].size), "max_delay": 1},
                           {"key": "proj/1", "synapse": "w_rec", "source": "reservoir",
                            "target": "reservoir", "connections": int(d["pre"].size), "max_delay": 1}],
           "host_readouts": [], "max_lag": 2}
    arrays = {"pop/reservoir/tau_m": np.full(n, tau), "pop/reservoir/beta_simulated": np.full(n, sim_beta),
              "pop/reservoir/v_th": np.full(n, THETA), "pop/reservoir/bias": np.zeros(n),
              "proj/0/pre": d["ipre"], "proj/0/post": d["ipost"], "proj/0/weight": d["w_in"],
              "proj/0/delay": np.ones(d["ipre"].size, np.int64),
              "proj/1/pre": d["pre"], "proj/1/post": d["post"], "proj/1/weight": d["w"].astype(np.float64),
              "proj/1/delay": np.ones(d["pre"].size, np.int64)}
    (root / "nest" / "network.json").write_text(json.dumps(net))
    np.savez(root / "nest" / "network.npz", **arrays)


def run_nest(art: Path, x: np.ndarray, threads: int, tmp: Path) -> tuple[dict[str, Any], np.ndarray]:
    opts = {"steps": int(x.shape[0]), "batch": 1, "threads": threads}
    np.savez(tmp / "in.npz", options=np.array(json.dumps(opts)), **{"in/input": x[None].astype(np.int8)})  # [B, T, N]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(WORKER), str(art), str(tmp / "in.npz"), str(tmp / "out.npz")],
                          capture_output=True, text=True, env={"OMP_NUM_THREADS": str(threads),
                                                               "PATH": "/usr/bin:/bin"})
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"NEST worker failed: {proc.stderr[-2000:]}")
    with np.load(tmp / "out.npz") as f:
        stats = json.loads(str(f["stats"]))
        order = np.lexsort((f["n/reservoir"], f["t/reservoir"]))
        spikes = np.stack([f["t/reservoir"][order], f["n/reservoir"][order]])
    return {"build_s": stats["build_seconds"], "simulate_s": stats["simulate_seconds"], "wall_s": wall,
            "max_rss_mib": stats["max_rss_bytes"] / 2**20, "spikes": int(spikes.shape[1]),
            "threads": stats["threads"], "connections": stats["connections"]}, spikes


def spinnaker_child(data: str) -> None:
    """Subprocess: the SpiNNaker simulator on the network in ``data``; prints JSON."""
    sys.path.insert(0, str(Path(__file__).parent))
    from spinnaker_speed import neuro_network

    from neuro.hardware.spinnaker import build_program, map_network
    from neuro.hardware.spinnaker.engine import make_stats, simulate

    with np.load(data) as f:
        d = {k: f[k] for k in f.files}
    d["n"], d["n_in"] = int(d["n"]), int(d["n_in"])
    t0 = time.perf_counter()
    mapping = map_network(neuro_network(d))
    program = build_program(mapping)
    t1 = time.perf_counter()
    sim = simulate(program, d["x"][:, None, :].astype(np.int64), engine="cpp")
    stats = make_stats(mapping, sim)
    t2 = time.perf_counter()
    print(json.dumps({"build_s": t1 - t0, "simulate_s": t2 - t1,
                      "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "spikes": int(stats["spikes"] if not isinstance(stats["spikes"], dict)
                                    else sum(stats["spikes"].values())),
                      "cores": len(mapping.vertices)}))


def run_spinnaker(data: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--spinnaker-child", str(data)], capture_output=True,
                          text=True, cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
                                                     "OMP_NUM_THREADS": "1"})
    if proc.returncode:
        raise SystemExit(f"SpiNNaker child failed: {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_s"] = time.perf_counter() - t0
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 round, W3 only")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--spinnaker-child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.spinnaker_child:
        spinnaker_child(args.spinnaker_child)
        return 0
    sizes = {"W3": SIZES["W3"]} if args.quick else SIZES
    rounds = 1 if args.quick else args.rounds
    impls = ("nest_1thread", "nest_2threads", "neuro_spinnaker")
    workloads: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="nest-scale-") as tmpd:
        tmp = Path(tmpd)
        for w, n in sizes.items():
            d = make_data(n)
            art = tmp / w
            write_nest_artifact(d, art)
            np.savez(tmp / f"{w}.npz", **d)
            runs: dict[str, list[dict[str, Any]]] = {i: [] for i in impls}
            for r in range(rounds):
                for impl in impls[r % 3:] + impls[:r % 3]:  # interleaved, order rotated
                    if impl == "neuro_spinnaker":
                        runs[impl].append(run_spinnaker(tmp / f"{w}.npz"))
                    else:
                        res, spikes = run_nest(art, d["x"], 1 if impl == "nest_1thread" else 2, tmp)
                        key = f"{w}_spikes"
                        if key in workloads:
                            if not np.array_equal(workloads[key], spikes):
                                raise SystemExit(f"{w}: NEST spikes differ between runs ({impl})")
                        else:
                            workloads[key] = spikes
                        runs[impl].append(res)
                    print(f"{w} round {r} {impl}: {json.dumps(runs[impl][-1])}", flush=True)
            workloads.pop(f"{w}_spikes")
            for metric, unit in (("build_s", "s"), ("simulate_s", "s"), ("max_rss_mib", "MiB")):
                workloads[f"{w}_{metric}"] = {
                    "unit": unit, "lower_is_better": True, "neurons": n,
                    "synapses": int(d["pre"].size + d["ipre"].size), "ticks": T_TICKS,
                    "results": {i: summary([x[metric] for x in runs[i]])["median"] for i in impls},
                    "spikes": {i: runs[i][-1]["spikes"] for i in impls}}
    import os

    report = {"machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": sys.version.split()[0],
                          "rounds": rounds},
              "note": "NEST times are nest's build (create+connect) and Simulate seconds in the backend's "
                      "worker; neuro_spinnaker: map_network+build_program and simulate+make_stats (C++ "
                      "engine, s16.15). NEST 1- and 2-thread spikes are identical (checked).",
              "workloads": workloads}
    write_results(args.out, report)
    print(f"\n{'workload':22s} " + " ".join(f"{i:>16s}" for i in impls))
    for k, v in workloads.items():
        print(f"{k:22s} " + " ".join(f"{v['results'][i]:16.3f}" for i in impls) + f"  {v['unit']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
