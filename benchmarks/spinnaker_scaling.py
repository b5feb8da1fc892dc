"""SpiNNaker simulator scaling: run time vs synaptic events (3 sizes x 3 input rates), and one
100,000-neuron run with its memory.

The W3 network of ``spinnaker_speed.py`` (LIF, 80 % excitatory / 20 % inhibitory, same weights,
tau_m and threshold, 100 Poisson inputs with p_in = 0.1, 1000 ticks of 1 ms), at
``n`` = 2,500 / 10,000 / 40,000 neurons and input rates 10 / 20 / 40 Hz, and 0 Hz (no events:
the clock-driven neuron update alone). The recurrent fan-out
is held at 100 synapses per neuron (p = 100 / n; at 10,000 neurons this is W3's 1 %), so the
synapse count grows with n and the 100,000-neuron network has 10 M synapses.

Each configuration runs in a fresh process (the backend's own path: ``map_network`` ->
``build_program`` -> ``simulate`` with the C++ engine, all statistics); the figure is the median
CPU time (``time.process_time``, 1 thread) of ``RUNS`` runs after a warm-up. A least-squares fit
``time = a * events + b * neuron_updates + c`` over the 12 points says what the cost follows
(synaptic events, or neurons x ticks); the 100,000-neuron run reports its peak RSS (``ru_maxrss``
of the process: network, mapping, program and simulation).

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/spinnaker_scaling.py            # 9 points + 100k, ~10 min
    PYTHONPATH=. python benchmarks/spinnaker_scaling.py --no-100k
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import cpu_model, maxrss_bytes, run_worker, write_results

SIZES = (2_500, 10_000, 40_000)
RATES_HZ = (10.0, 20.0, 40.0)
#: Each size also runs without input (no synaptic event: the neuron updates alone), which pins
#: the per-update term of the fit instead of leaving it to be inferred from the event points.
SILENT_HZ = 0.0
BIG = 100_000
FAN_OUT = 100
RUNS = 3
REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "benchmarks" / "results" / "spinnaker_scaling.json"


def make_data(n: int, rate_hz: float, seed: int = 0) -> dict[str, Any]:
    """W3's network at ``n`` neurons with ``FAN_OUT`` recurrent synapses per neuron (binomial)."""
    import spinnaker_speed as W3

    rng = np.random.default_rng(seed)
    n_exc = int(0.8 * n)
    k = rng.binomial(n, FAN_OUT / n, size=n)
    pre = np.repeat(np.arange(n), k)
    post = np.concatenate([rng.choice(n, size=kk, replace=False) for kk in k])
    keep = pre != post
    pre, post = pre[keep], post[keep]
    w = np.where(pre < n_exc, W3.W_E, -W3.G_INH * W3.W_E)
    k_in = rng.binomial(n, W3.P_IN, size=W3.N_IN)
    ipre = np.repeat(np.arange(W3.N_IN), k_in)
    ipost = np.concatenate([rng.choice(n, size=kk, replace=False) for kk in k_in])
    x = (rng.random((W3.T_TICKS, W3.N_IN)) < rate_hz * W3.DT).astype(np.int64)
    return {"n": n, "n_in": W3.N_IN, "pre": pre, "post": post, "w": w, "ipre": ipre,
            "ipost": ipost, "w_in": np.full(ipre.size, W3.W_IN), "x": x}


def worker(n: int, rate_hz: float, runs: int) -> dict[str, Any]:
    """Build, map and simulate one configuration; CPU times of ``runs`` runs after a warm-up."""
    import spinnaker_speed as W3

    from neuro.hardware.spinnaker import build_program, engine, map_network
    from neuro.hardware.spinnaker.engine import make_stats, simulate

    if not engine.cpp_available():
        raise SystemExit(f"the C++ engine is not available ({engine.cpp_error()})")
    d = make_data(n, rate_hz)
    t0 = time.perf_counter()
    mapping = map_network(W3.neuro_network(d))
    program = build_program(mapping)
    compile_s = time.perf_counter() - t0
    x = d["x"][:, None, :].astype(np.int64)
    simulate(program, x, engine="cpp")  # warm-up
    times, stats = [], {}
    for _ in range(runs):
        c0 = time.process_time()
        sim = simulate(program, x, engine="cpp")
        stats = make_stats(mapping, sim)
        times.append(time.process_time() - c0)
    program_mib = sum(a.nbytes for a in program.arrays()) / 2**20
    return {"n": n, "rate_hz": rate_hz, "synapses": int(d["pre"].size + d["ipre"].size),
            "time_s": statistics.median(times), "times_s": times, "compile_s": compile_s,
            "spikes": int(stats["spikes"]), "synaptic_events": int(stats["synaptic_events"]),
            "neuron_updates": int(stats["neuron_updates"]), "program_mib": program_mib,
            "peak_rss_mib": maxrss_bytes() / 2**20}


def fit(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Least squares ``time = a * events + b * updates + c``, and ``time = a * events + c``."""
    ev = np.array([p["synaptic_events"] for p in points], float)
    up = np.array([p["neuron_updates"] for p in points], float)
    t = np.array([p["time_s"] for p in points], float)
    out: dict[str, Any] = {}
    for name, cols in (("events", [ev]), ("events+updates", [ev, up])):
        A = np.stack(cols + [np.ones_like(t)], 1)
        coef, *_ = np.linalg.lstsq(A, t, rcond=None)
        pred = A @ coef
        r2 = 1 - float(((t - pred) ** 2).sum()) / float(((t - t.mean()) ** 2).sum())
        out[name] = {"ns_per_event": coef[0] * 1e9, "intercept_s": float(coef[-1]), "r2": r2}
        if len(cols) == 2:
            out[name]["ns_per_neuron_update"] = coef[1] * 1e9
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--no-100k", action="store_true", help="skip the 100,000-neuron run")
    p.add_argument("--runs", type=int, default=RUNS)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--worker", nargs=2, metavar=("N", "RATE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(int(args.worker[0]), float(args.worker[1]), args.runs)))
        return 0

    import platform

    t_start = time.perf_counter()
    env = {"OMP_NUM_THREADS": "1"}
    script = str(Path(__file__).resolve())
    points = []
    for n in SIZES:
        for rate in (SILENT_HZ,) + RATES_HZ:
            r = run_worker(script, ["--worker", str(n), str(rate), "--runs", str(args.runs)],
                           str(REPO), env)
            points.append(r)
            print(f"  n={n:6d} rate={rate:4.0f} Hz: {r['time_s']:.4f} s, {r['synaptic_events']:>10d} "
                  f"events, {r['spikes']:>8d} spikes, " + (
                      f"{r['time_s'] / r['synaptic_events'] * 1e9:.2f} ns/event" if r["synaptic_events"]
                      else f"{r['time_s'] / r['neuron_updates'] * 1e9:.2f} ns/neuron update"),
                  flush=True)
    f = fit(points)
    print(f"fit time = a*events + c: a = {f['events']['ns_per_event']:.2f} ns/event, "
          f"c = {f['events']['intercept_s'] * 1e3:.1f} ms, R^2 = {f['events']['r2']:.4f}")
    g = f["events+updates"]
    print(f"fit time = a*events + b*updates + c: a = {g['ns_per_event']:.2f} ns/event, "
          f"b = {g['ns_per_neuron_update']:.2f} ns/update, R^2 = {g['r2']:.4f}")
    big = None
    if not args.no_100k:
        big = run_worker(script, ["--worker", str(BIG), "20", "--runs", "1"], str(REPO), env)
        print(f"  n={BIG}: {big['time_s']:.3f} s per simulated s, {big['synaptic_events']} events, "
              f"peak RSS {big['peak_rss_mib']:.0f} MiB (program {big['program_mib']:.0f} MiB), "
              f"mapping + program build {big['compile_s']:.0f} s")
    workloads: dict[str, Any] = {
        f"n{p['n']}_r{int(p['rate_hz'])}": {"unit": "s", "lower_is_better": True,
                                            "results": {"neuro": p["time_s"]}, "detail": p}
        for p in points}
    if big:
        workloads[f"n{BIG}_r20"] = {"unit": "s", "lower_is_better": True,
                                    "results": {"neuro": big["time_s"]}, "detail": big}
        workloads[f"n{BIG}_r20_memory"] = {"unit": "MiB", "lower_is_better": True,
                                           "results": {"neuro": big["peak_rss_mib"]}}
    report = {
        "machine": {"cpu": cpu_model(), "platform": platform.platform(), "threads": 1},
        "workloads": workloads,
        "fit": f,
        "method": {"runs": args.runs, "fan_out": FAN_OUT, "figure": "median process CPU time "
                   "of simulate()+make_stats() per simulated second (1000 ticks), fresh process "
                   "per configuration", "elapsed_s": round(time.perf_counter() - t_start, 1)},
    }
    write_results(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
