"""SpiNNaker simulator speed benchmark (W3): a liquid state machine, neuro vs Brian2.

The network (identical in both simulators, same synapses, weights and input spikes)::

    100 Poisson inputs (20 Hz) --p_in=0.1--> 10,000 LIF (80 % excitatory, 20 % inhibitory)
                                              recurrent, fixed probability p=0.01, no autapses

LIF: ``v <- exp(-dt / 20 ms) v + input``, spike when ``v >= 1``, reset to 0; weights: input
0.2, excitatory 0.05, inhibitory -0.25 (threshold units), delta synapses. dt = 1 ms, 1000 ticks
(one simulated second). The input spikes are drawn once (Bernoulli(0.02) per tick and channel)
and replayed by both simulators (neuro: the input array; Brian2: a ``SpikeGeneratorGroup``).

Implementations:

* ``neuro``: ``neuro.hardware.spinnaker`` (the backend's own code: ``Network`` ->
  ``map_network`` -> ``build_program`` -> ``simulate`` with the C++ engine -> ``make_stats``,
  exactly what ``run`` does for an artifact), all statistics on (packets, hops, rows, events,
  drops, per-core load) and every neuron's spikes recorded. The 10k x 10k weight matrix would be
  400 MB dense in the graph IR, so the network is built as sparse projections with the same
  s16.15 quantisation rules as ``neuro.graph.quantize`` (checked at a small scale against the
  graph path and the reference executor on every run, see ``verify``). Weights in neuro are the
  integer s16.15 ones; Brian2 gets the same values as floats.
* ``brian2_cython``: Brian2 runtime mode, cython code generation, ``SpikeMonitor`` on;
  the CPU time of ``Network.run(1 s)`` after ``restore()`` (code compiled in a warm-up run).
* ``brian2_cpp_standalone``: Brian2's C++ standalone device (single thread, no OpenMP),
  ``SpikeMonitor`` on; the figure is the binary's own network run time (Brian2's
  ``last_run_info``: CPU time of ``Network::run``), i.e. without process start and array
  loading; the binary's wall time is stored too, and the wall time of ``Network::run`` alone
  (``run_wall_s``: ``clock_gettime(CLOCK_MONOTONIC)`` around the run, code inserted with
  ``device.insert_code``).
* ``brian2_cpp_standalone_2t`` (only with ``--two-threads``): the same with
  ``openmp_threads = 2``. ``std::clock()`` then sums both threads' CPU time, so the 2-thread
  comparison is by wall time of the run (``run_wall_s`` vs neuro's ``wall_s``; neuro's engine is
  single-threaded), on a machine with two idle cores.

Brian2 applies a spike's weight in the same step after the threshold (then resets), SpiNNaker
one tick later into the ring buffer, and neuro's state is s16.15 fixed point, so spike trains
differ; the activity (spike counts, synaptic events) is reported for both so the work compared is
visibly the same.

Method: every implementation runs in its own long-lived worker process (set-up once, then one
timed run per request); rounds are interleaved (each round asks every worker once, the order
rotated), the figure is the median over rounds in seconds per simulated second. Time is the CPU
time of the simulating process, single-threaded: Brian2's standalone binary times its run with
``std::clock()`` (process CPU time, its ``last_run_info``), so neuro's run and Brian2 cython's
``Network.run`` are timed with ``time.process_time()`` alike; on a shared machine CPU time is
what is comparable (wall times are stored too, with the share of the machine's CPU that other
processes used during each run). Compile/set-up times (neuro: mapping + program build; Brian2
cpp_standalone: code generation + compilation; cython: the warm-up run that compiles) are
reported separately from run time.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/spinnaker_speed.py            # full: 9 rounds
    PYTHONPATH=. python benchmarks/spinnaker_speed.py --quick    # 3 rounds
    PYTHONPATH=. python benchmarks/spinnaker_speed.py --out /tmp/x.json
    PYTHONPATH=. python benchmarks/spinnaker_speed.py --quick --two-threads  # + Brian2 OpenMP x 2

Exit status 2 when Brian2, Cython or neuro is missing.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import check_installed, cpu_model, own_cpu_s, summary, system_busy_s, write_results

IMPLS = ("neuro", "brian2_cython", "brian2_cpp_standalone")
#: Brian2's C++ standalone with OpenMP on 2 threads (``--two-threads``): timed by wall clock, as
#: ``std::clock()`` adds the threads' CPU times; neuro's engine is single-threaded.
IMPL_2T = "brian2_cpp_standalone_2t"
N, N_IN, P_REC, P_IN = 10_000, 100, 0.01, 0.1
RATE_HZ, T_TICKS, DT = 20.0, 1000, 1e-3
TAU_M, THETA = 20e-3, 1.0
W_IN, W_E, G_INH = 0.2, 0.05, 5.0
SEED = 0
REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "benchmarks" / "results" / "spinnaker_speed.json"
GOAL = "brian2_cpp_standalone / neuro >= 2 (s per simulated second, 1 thread; issue 21)"
GOAL_RATIO = 2.0


# ---------------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------------
def make_data(n: int = N, n_in: int = N_IN, T: int = T_TICKS, seed: int = SEED) -> dict[str, Any]:
    """Float network and input spikes: recurrent (pre, post, w), input (ipre, ipost, w_in), x."""
    rng = np.random.default_rng(seed)
    n_exc = int(0.8 * n)
    k = rng.binomial(n, P_REC, size=n)
    pre = np.repeat(np.arange(n), k)
    post = np.concatenate([rng.choice(n, size=kk, replace=False) for kk in k])
    keep = pre != post
    pre, post = pre[keep], post[keep]
    w = np.where(pre < n_exc, W_E, -G_INH * W_E)
    k_in = rng.binomial(n, P_IN, size=n_in)
    ipre = np.repeat(np.arange(n_in), k_in)
    ipost = np.concatenate([rng.choice(n, size=kk, replace=False) for kk in k_in])
    x = (rng.random((T, n_in)) < RATE_HZ * DT).astype(np.int64)
    return {"n": n, "n_in": n_in, "pre": pre, "post": post, "w": w, "ipre": ipre, "ipost": ipost,
            "w_in": np.full(ipre.size, W_IN), "x": x}


def quantized(d: dict[str, Any]) -> dict[str, Any]:
    """s16.15 integers by ``neuro.graph.quantize``'s rules for the ``spinnaker`` format: scale
    2^15, one weight shift for the population (its largest weight must fit 16 bits), decay and
    threshold rounded to the nearest integer."""
    from neuro.graph.formats import get_format

    fmt = get_format("spinnaker")
    S = float(1 << fmt.frac_bits)
    wmax = max(float(np.abs(d["w"]).max()), float(np.abs(d["w_in"]).max()))
    wexp = max(0, math.ceil(math.log2(wmax * S / fmt.weight_max))) if wmax * S > fmt.weight_max else 0

    def q(a: np.ndarray) -> np.ndarray:
        return np.clip(np.round(a * S / (1 << wexp)), fmt.weight_min, fmt.weight_max).astype(np.int64)

    return {"w": q(d["w"]), "w_in": q(d["w_in"]), "wexp": wexp,
            "beta_m": int(round(math.exp(-DT / TAU_M) * (1 << fmt.decay_bits))),
            "vth": int(round(THETA * S)), "S": S}


def neuro_network(d: dict[str, Any]) -> Any:
    from neuro.hardware.spinnaker import Network, Population, Projection

    qd = quantized(d)
    pops = [Population("input", d["n_in"], "source"),
            Population("reservoir", d["n"], "LIF", reset="zero", beta_m=qd["beta_m"], vth=qd["vth"])]
    projs = [Projection("w_in", "input", "reservoir", d["ipre"], d["ipost"], qd["w_in"], 0, qd["wexp"]),
             # a recurrent edge delivers the previous step's spikes: reference delay 1
             Projection("w_rec", "reservoir", "reservoir", d["pre"], d["post"], qd["w"], 1, qd["wexp"])]
    return Network(pops, projs, outputs={"output": "reservoir"})


def verify(n: int = 400) -> dict[str, Any]:
    """At ``n`` neurons: the sparse builder gives the same integer network as the graph path
    (dense float graph -> ``quantize`` -> ``from_graph``) and the backend's spikes equal the
    reference executor's over 1000 ticks."""
    import shutil

    from neuro.graph import Graph
    from neuro.graph import nodes as Nd
    from neuro.graph.quantize import quantize
    from neuro.hardware import spinnaker
    from neuro.hardware.base import as_int_spikes, compare, reference

    d = make_data(n=n, seed=SEED + 7)
    w_rec = np.zeros((n, n), np.float32)
    w_rec[d["post"], d["pre"]] = d["w"]
    w_in = np.zeros((n, N_IN), np.float32)
    w_in[d["ipost"], d["ipre"]] = d["w_in"]
    g = Graph({"input": Nd.Input(shape=(N_IN,)), "w_in": Nd.Linear(weight=w_in),
               "reservoir": Nd.LIF(shape=(n,), beta=math.exp(-DT / TAU_M), threshold=THETA,
                                   reset="zero"),
               "w_rec": Nd.Linear(weight=w_rec), "output": Nd.Output()},
              [("input", "w_in"), ("w_in", "reservoir"), ("reservoir", "w_rec"),
               ("w_rec", "reservoir"), ("reservoir", "output")], dt=DT).validate()
    qg = quantize(g, "spinnaker")
    from_graph = spinnaker.from_graph(qg)
    sparse = neuro_network(d)
    same = all(
        np.array_equal(np.sort(a.pre_idx * n + a.post_idx), np.sort(b.pre_idx * n + b.post_idx))
        and np.array_equal(a.weight[np.lexsort((a.post_idx, a.pre_idx))],
                           b.weight[np.lexsort((b.post_idx, b.pre_idx))])
        and a.weight_exp == b.weight_exp and np.array_equal(a.delay, b.delay)
        for a, b in zip(from_graph.projections, sparse.projections))
    pg, ps = from_graph.populations["reservoir"], sparse.populations["reservoir"]
    same = same and np.array_equal(pg.beta_m, ps.beta_m) and np.array_equal(pg.vth, ps.vth)
    tmp = Path(tempfile.mkdtemp(prefix="spinnaker-verify-"))
    try:
        art = spinnaker.compile(qg, tmp / "art")
        x = d["x"][:, None, :]
        res = spinnaker.run(art, x, engine="cpp")
        comp = compare("spinnaker", qg, res, reference(qg, as_int_spikes(qg, x)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"neurons": n, "ticks": int(d["x"].shape[0]), "sparse_equals_graph_path": bool(same),
            "identical_to_reference": comp.identical, "spikes": int(res.stats["spikes"])}


# ---------------------------------------------------------------------------------------------
# Workers (one long-lived process per implementation)
# ---------------------------------------------------------------------------------------------
def _load(data: str) -> dict[str, Any]:
    with np.load(data, allow_pickle=False) as f:
        d = {k: f[k] for k in f.files}
    d["n"], d["n_in"] = int(d["n"]), int(d["n_in"])
    return d


class NeuroWorker:
    def __init__(self, d: dict[str, Any]) -> None:
        from neuro.hardware.spinnaker import build_program, engine, map_network

        if not engine.cpp_available():
            raise SystemExit(f"neuro: the C++ engine is not available ({engine.cpp_error()})")
        t0 = time.perf_counter()
        net = neuro_network(d)
        t1 = time.perf_counter()
        self.mapping = map_network(net)
        self.program = build_program(self.mapping)
        t2 = time.perf_counter()
        self.x = d["x"][:, None, :].astype(np.int64)
        self.info = {"network_build_s": t1 - t0, "compile_s": t2 - t1,
                     "cores": len(self.mapping.vertices),
                     "router_entries": int(sum(len(t) for t in self.mapping.tables.values()))}
        self.run()  # warm-up (page faults, caches)

    def run(self) -> dict[str, Any]:
        from neuro.hardware.spinnaker.engine import make_stats, simulate

        c0, t0 = time.process_time(), time.perf_counter()
        sim = simulate(self.program, self.x, engine="cpp")
        stats = make_stats(self.mapping, sim)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        return {"time_s": cpu, "wall_s": wall, "spikes": stats["spikes"], "synaptic_events": stats["synaptic_events"],
                "packets_sent": stats["packets_sent"], "router_hops": stats["router_hops"],
                "synaptic_rows_fetched": stats["synaptic_rows_fetched"],
                "dropped_packets": stats["dropped_packets"]}


class Brian2Worker:
    def __init__(self, d: dict[str, Any], target: str, build_dir: str) -> None:
        import brian2 as b2

        self.b2, self.target = b2, target
        b2.prefs.logging.console_log_level = "WARNING"
        t0 = time.perf_counter()
        threads = 2 if target.endswith("_2t") else 0
        target = target.removesuffix("_2t")
        self.target = target
        if target == "cpp_standalone":
            self.dir = build_dir
            b2.set_device("cpp_standalone", directory=self.dir, build_on_run=False)
            b2.prefs.devices.cpp_standalone.openmp_threads = threads
            # wall time of Network::run alone (std::clock() would add the OpenMP threads' times)
            b2.device.insert_code("before_network_run", "struct timespec _w0, _w1; "
                                  "clock_gettime(CLOCK_MONOTONIC, &_w0);")
            b2.device.insert_code("after_network_run", (
                "clock_gettime(CLOCK_MONOTONIC, &_w1); { std::ofstream _f(\"results/run_wall_s\"); "
                "_f.precision(9); _f << (_w1.tv_sec - _w0.tv_sec) + 1e-9 * (_w1.tv_nsec - "
                "_w0.tv_nsec); }"))
        else:
            b2.prefs.codegen.target = "cython"
        b2.defaultclock.dt = DT * b2.second
        qd = quantized(d)
        scale = (1 << qd["wexp"]) / qd["S"]  # the integer weights as floats
        tau = TAU_M * b2.second
        G = b2.NeuronGroup(d["n"], "dv/dt = -v / tau : 1", threshold=f"v >= {qd['vth'] / qd['S']!r}",
                           reset="v = 0", method="exact", namespace={"tau": tau})
        t_idx, ch = np.nonzero(d["x"])
        inp = b2.SpikeGeneratorGroup(d["n_in"], ch, t_idx * DT * b2.second)
        s_in = b2.Synapses(inp, G, "w : 1", on_pre="v += w")
        s_in.connect(i=d["ipre"], j=d["ipost"])
        s_in.w = qd["w_in"] * scale
        s_rec = b2.Synapses(G, G, "w : 1", on_pre="v += w")
        s_rec.connect(i=d["pre"], j=d["post"])
        s_rec.w = qd["w"] * scale
        self.mon = b2.SpikeMonitor(G)
        self.net = b2.Network(G, inp, s_in, s_rec, self.mon)
        self.out_degree = np.bincount(d["pre"], minlength=d["n"])
        self.input_events = int(np.bincount(d["ipre"], minlength=d["n_in"])[ch].sum())
        self.duration = d["x"].shape[0] * DT * b2.second
        if target == "cpp_standalone":
            self.net.run(self.duration)
            t1 = time.perf_counter()
            b2.device.build(directory=self.dir, compile=True, run=False)
            self.info = {"network_build_s": t1 - t0, "compile_s": time.perf_counter() - t1}
        else:
            self.net.store()
            t1 = time.perf_counter()
            self.net.run(self.duration)  # warm-up: generates and compiles the cython code
            self.info = {"network_build_s": t1 - t0, "compile_s": time.perf_counter() - t1}
        self.run()

    def run(self) -> dict[str, Any]:
        b2 = self.b2
        if self.target == "cpp_standalone":
            b2.device.run(directory=self.dir, with_output=False)
            res = {"time_s": float(b2.device._last_run_time),
                   "binary_wall_s": float(b2.device.timers["run_binary"]),
                   "run_wall_s": float((Path(self.dir) / "results" / "run_wall_s").read_text())}
        else:
            self.net.restore()
            c0, t0 = time.process_time(), time.perf_counter()
            self.net.run(self.duration)
            res = {"time_s": time.process_time() - c0, "wall_s": time.perf_counter() - t0}
        counts = np.asarray(self.mon.count[:])
        res["spikes"] = int(counts.sum())
        res["synaptic_events"] = int(counts @ self.out_degree) + self.input_events
        return res


def _cpu_with_children() -> float:
    """CPU seconds of this worker and its finished children (the standalone binary)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own_cpu_s() + ru.ru_utime + ru.ru_stime


def serve(impl: str, data: str) -> int:
    """Worker loop: set up, print a JSON line, then answer each 'run' line with a JSON line."""
    d = _load(data)
    if impl == "neuro":
        w: Any = NeuroWorker(d)
    else:
        w = Brian2Worker(d, impl.removeprefix("brian2_"), str(Path(data).parent / f"standalone_{impl}"))
    print(json.dumps({"ready": impl, **w.info}), flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        busy0, own0, wall0 = system_busy_s(), _cpu_with_children(), time.perf_counter()
        res = w.run()
        wall = time.perf_counter() - wall0
        foreign = (system_busy_s() - busy0) - (_cpu_with_children() - own0)
        res["foreign_load"] = max(0.0, foreign / (wall * (os.cpu_count() or 1)))
        print(json.dumps(res), flush=True)
    return 0


class Worker:
    def __init__(self, impl: str, data: str) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
        env["OMP_NUM_THREADS"] = "1"
        self.impl = impl
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve", impl,
                                      "--data", data], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, cwd=str(REPO))
        self.info = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("{"):
                return json.loads(line)
        raise SystemExit(f"worker {self.impl} failed (status {self.proc.wait()})")

    def run(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=120)


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--quick", action="store_true", help="3 rounds instead of 9")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output ({DEFAULT_OUT})")
    p.add_argument("--two-threads", action="store_true",
                   help="also run Brian2 cpp_standalone with OpenMP on 2 threads (wall time)")
    p.add_argument("--serve", choices=IMPLS + (IMPL_2T,), help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        return serve(args.serve, args.data)

    t_start = time.perf_counter()
    versions = check_installed("spinnaker_speed", {"brian2": "brian2", "Cython": "cython"})
    import datetime
    import platform

    machine = {"cpu": cpu_model(), "cores": os.cpu_count(),
               "cores_available": len(os.sched_getaffinity(0)), "platform": platform.platform(),
               "python": platform.python_version(), "threads": 1, **versions,
               "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    print(f"SpiNNaker simulator benchmark (W3): {machine['cpu']}, {machine['cores']} cores, "
          f"1 thread per simulator, neuro {versions['neuro']}, brian2 {versions['brian2']}")
    check = verify()
    print(f"verify ({check['neurons']} neurons, {check['ticks']} ticks): sparse network equals the "
          f"graph path: {check['sparse_equals_graph_path']}; spikes identical to the reference "
          f"executor: {check['identical_to_reference']}")
    if not (check["sparse_equals_graph_path"] and check["identical_to_reference"]):
        print("spinnaker_speed: verification failed", file=sys.stderr)
        return 1

    d = make_data()
    tmp = Path(tempfile.mkdtemp(prefix="spinnaker-speed-"))
    data = tmp / "network.npz"
    np.savez(data, **d)
    print(f"network: {d['n']} LIF, {d['pre'].size} recurrent + {d['ipre'].size} input synapses, "
          f"{int(d['x'].sum())} input spikes over {T_TICKS} ticks")
    workers = {}
    impls = IMPLS + ((IMPL_2T,) if args.two_threads else ())
    for impl in impls:
        t0 = time.perf_counter()
        workers[impl] = Worker(impl, str(data))
        print(f"  {impl:22s} set up in {time.perf_counter() - t0:6.1f} s: {workers[impl].info}")
    rounds = args.rounds or (3 if args.quick else 9)
    per_round: dict[str, list[dict[str, Any]]] = {i: [] for i in impls}
    try:
        for r in range(rounds):
            order = impls[r % len(impls):] + impls[:r % len(impls)]
            for impl in order:
                per_round[impl].append(workers[impl].run())
            print(f"  round {r + 1}/{rounds}: " + ", ".join(
                f"{i} {per_round[i][-1]['time_s']:.3f} s" for i in impls))
    finally:
        for w in workers.values():
            w.close()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    sim_seconds = T_TICKS * DT
    results = {i: statistics.median(x["time_s"] for x in per_round[i]) / sim_seconds for i in IMPLS}
    activity = {i: {"spikes": per_round[i][-1]["spikes"],
                    "synaptic_events": per_round[i][-1]["synaptic_events"]} for i in IMPLS}
    events_per_s = {i: activity[i]["synaptic_events"] / (results[i] * sim_seconds) for i in IMPLS}
    ratios = {f"{peer}/neuro": results[peer] / results["neuro"] for peer in IMPLS[1:]}
    met = results["brian2_cpp_standalone"] / results["neuro"] >= GOAL_RATIO
    print(f"\n{'implementation':24s} {'s / sim. s':>11s} {'ratio':>8s} {'spikes':>9s} "
          f"{'syn. events':>12s} {'events/s':>12s} {'compile s':>10s}")
    for i in IMPLS:
        ratio = results[i] / results["neuro"]
        print(f"{i:24s} {results[i]:11.4f} {ratio:8.2f} {activity[i]['spikes']:9d} "
              f"{activity[i]['synaptic_events']:12d} {events_per_s[i]:12.3g} "
              f"{workers[i].info['compile_s']:10.2f}")
    print(f"goal: {GOAL}: {'met' if met else 'NOT met'}")
    two_threads = None
    if args.two_threads:
        wall = {"neuro (1 thread)": [x["wall_s"] for x in per_round["neuro"]],
                "brian2_cpp_standalone (1 thread)": [x["run_wall_s"] for x in
                                                     per_round["brian2_cpp_standalone"]],
                "brian2_cpp_standalone (OpenMP, 2 threads)": [x["run_wall_s"] for x in
                                                              per_round[IMPL_2T]]}
        med = {k: statistics.median(v) / sim_seconds for k, v in wall.items()}
        two_threads = {
            "unit": "s of wall time per simulated s", "results": med,
            "ratio_brian2_2t/neuro": med["brian2_cpp_standalone (OpenMP, 2 threads)"]
            / med["neuro (1 thread)"],
            "brian2_2t_spikes": per_round[IMPL_2T][-1]["spikes"],
            "stats": {k: summary([t / sim_seconds for t in v]) for k, v in wall.items()},
            "rounds": per_round[IMPL_2T],
            "note": "wall time of the run only (neuro: simulate()+make_stats(); Brian2: "
                    "Network::run by clock_gettime); neuro's engine is single-threaded",
        }
        print("\n2 threads (wall s per simulated s): " + ", ".join(
            f"{k} {v:.4f}" for k, v in med.items())
              + f"; Brian2 2 threads / neuro = {two_threads['ratio_brian2_2t/neuro']:.2f}")
    elapsed = time.perf_counter() - t_start
    report = {
        "machine": machine,
        "workloads": {"W3": {
            "unit": "s", "lower_is_better": True, "results": results, "ratios": ratios,
            "goal": {"text": GOAL, "met": met},
            "stats": {i: summary([x["time_s"] / sim_seconds for x in per_round[i]]) for i in IMPLS},
            "synaptic_events_per_s": events_per_s, "activity": activity,
            "compile_s": {i: workers[i].info["compile_s"] for i in IMPLS},
            "setup": {i: workers[i].info for i in IMPLS},
            "rounds": {i: per_round[i] for i in IMPLS},
            **({"two_threads": two_threads} if two_threads else {}),
        }},
        "method": {"rounds": rounds, "quick": args.quick, "elapsed_s": round(elapsed, 1),
                   "figure": "median over interleaved rounds of the run's CPU time (single thread), "
                             "divided by the simulated time (1 s); compile/set-up reported "
                             "separately",
                   "foreign_load": "share of the machine's CPU used by other processes during "
                                   "each run (/proc/stat minus the worker's own and its "
                                   "children's rusage), in rounds"},
        "verify": check,
        "notes": (f"LSM: {N} LIF (80/20 E/I), p={P_REC} recurrent, {N_IN} Poisson inputs at "
                  f"{RATE_HZ:g} Hz with p_in={P_IN}, tau_m {TAU_M * 1e3:g} ms, threshold {THETA}, "
                  f"weights in {W_IN}, exc {W_E}, inh {-G_INH * W_E}; {T_TICKS} ticks of 1 ms. "
                  "neuro: s16.15 integer arithmetic, SpiNNaker timing (1-tick synaptic delay); "
                  "Brian2: float64, same-step delivery; activity differs accordingly. "
                  "Times are CPU seconds of the simulating process: neuro simulate()+make_stats(); "
                  "brian2_cpp_standalone the binary's Network::run (std::clock); brian2_cython "
                  "Network.run()."),
    }
    write_results(args.out, report)
    print(f"wrote {args.out} ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
