"""LIF training across shapes: neuro vs SpikingJelly 2.0 (and snnTorch at the small shapes).

The network of ``lif_speed.py`` (``benchmarks/_lif_nets.py``) at other shapes::

    700 -> Linear -> h LIF -> ... (depth d hidden layers of width h) -> Linear -> n_out LI

Same initial weights in every library (``nn.Linear`` init, seed 0, weights x 4 as in
``lif_speed.py``: the hidden layers fire at a few percent, the printed spike rates), the same
Bernoulli(0.05) input ``[T, B, 700]`` (SHD-like density) and labels; loss = cross-entropy of the
readout summed over time, Adam (lr 1e-3).

Per point of :data:`POINTS` (widths 128/256/768/1024, depths 2/4, T 100/500/1000, B 1/32/128,
outputs 20/35; every value of every axis is covered, not the full grid):

* ``train``: one training step (forward + backward + Adam step), ms;
* ``infer`` (B = 1 points): one forward under ``torch.no_grad()``, ms;
* ``memory``: peak RSS of one training step above the resident baseline, MiB (as ``W1_long`` of
  ``lif_speed.py``: fresh process, warm-up step at T=10, ``gc.collect()``, baseline RSS, one step,
  ``ru_maxrss - baseline``, with ``MALLOC_MMAP_THRESHOLD_=1 MiB`` so the peak follows live memory).

Method: every measurement in a fresh process with ``torch.set_num_threads(2)``; one warm-up step
(two when it is short), then a block of steps sized to about ``BLOCK_S`` seconds (2 to 10 steps)
reduced to its median; rounds are interleaved (each round measures every point and library, the
library order rotated per round); the figure is the median over rounds. The first training loss
of every library is checked against neuro's at every point (same weights, same data, so the same
loss up to float32 summation order). Each timed block records the CPU share used by other
processes meanwhile (``foreign_load``).

Goals (issue 21): SpikingJelly / neuro >= 2.5 for training with B >= 32, >= 10 at B = 1 (training
and inference), neuro's peak memory <= 0.5 x SpikingJelly's at T = 1000.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/lif_sweep.py             # 3 rounds, ~1 h on 2 busy cores
    PYTHONPATH=. python benchmarks/lif_sweep.py --quick     # 1 round, shorter blocks
    PYTHONPATH=. python benchmarks/lif_sweep.py --points h1024-d2-T100-B32 --rounds 2
    PYTHONPATH=. python benchmarks/lif_sweep.py --threads 1   # on an oversubscribed machine
    PYTHONPATH=. python benchmarks/lif_sweep.py --fused-adam  # Adam(fused=True) in every library

Exit status 2 when snnTorch, SpikingJelly or neuro is not importable.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from _common import (
    check_installed,
    machine_info,
    maxrss_bytes,
    own_cpu_s,
    rss_bytes,
    run_worker,
    summary,
    system_busy_s,
    write_results,
)
from _lif_nets import BUILDERS, neuro_spike_rates

NUM_THREADS = 2
#: ``--fused-adam``: ``torch.optim.Adam(fused=True)`` in every library (one vectorised pass over
#: all parameters; torch's default CPU Adam runs ~10 element-wise ops per tensor). Same optimizer
#: for all libraries either way; the default is torch's default.
FUSED_ADAM = False
SEED = 0
N_IN = 700
INPUT_RATE = 0.05
WEIGHT_SCALE = 4.0
#: seconds of steps per timed block (``--quick``: half)
BLOCK_S = 2.0
MEM_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 20)}
REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "benchmarks" / "results" / "lif_sweep.json"
#: snnTorch (a Python loop over time steps) is measured at the small shapes only
SNNTORCH_MAX_WIDTH = 256
SNNTORCH_MAX_T = 100


@dataclass(frozen=True)
class Point:
    """One shape of the sweep."""

    width: int
    depth: int
    T: int
    B: int
    n_out: int

    @property
    def name(self) -> str:
        return f"h{self.width}-d{self.depth}-T{self.T}-B{self.B}"

    @property
    def layers(self) -> list[int]:
        return [N_IN] + [self.width] * self.depth + [self.n_out]

    @property
    def impls(self) -> tuple[str, ...]:
        small = self.width <= SNNTORCH_MAX_WIDTH and self.T <= SNNTORCH_MAX_T
        return ("neuro", "spikingjelly", "snntorch") if small else ("neuro", "spikingjelly")

    @property
    def kinds(self) -> tuple[str, ...]:
        return ("train", "infer", "memory") if self.B == 1 else ("train", "memory")


POINTS: tuple[Point, ...] = (
    Point(128, 2, 100, 32, 20),
    Point(256, 2, 100, 128, 20),
    Point(768, 2, 100, 32, 35),
    Point(1024, 2, 100, 32, 20),
    Point(1024, 4, 100, 128, 35),
    Point(256, 4, 500, 32, 20),
    Point(768, 4, 500, 32, 35),
    Point(128, 4, 500, 128, 20),
    Point(256, 2, 1000, 32, 20),
    Point(768, 2, 1000, 32, 35),
    Point(128, 4, 1000, 32, 35),
    Point(128, 2, 1000, 1, 20),
    Point(256, 4, 500, 1, 35),
    Point(768, 4, 100, 1, 20),
    Point(1024, 2, 1000, 1, 35),
)
BY_NAME = {p.name: p for p in POINTS}


def goal(point: Point, kind: str) -> tuple[str, float] | None:
    """(text, minimum SpikingJelly / neuro ratio) of the issue's goal for this measurement."""
    if kind == "memory":
        return ("neuro <= 0.5 x spikingjelly", 2.0) if point.T == 1000 else None
    if point.B == 1:
        return ("spikingjelly/neuro >= 10", 10.0)
    if kind == "train" and point.B >= 32:
        return ("spikingjelly/neuro >= 2.5", 2.5)
    return None


# ---------------------------------------------------------------------------------------------
# Worker: one measurement in this (fresh) process
# ---------------------------------------------------------------------------------------------


def _make_data(point: Point) -> tuple[Any, Any]:
    import torch

    g = torch.Generator().manual_seed(SEED + 1)
    x = torch.bernoulli(torch.full((point.T, point.B, N_IN), INPUT_RATE), generator=g)
    y = torch.randint(0, point.n_out, (point.B,), generator=g)
    return x, y


def _train_step_fn(model: Any, forward: Any) -> Any:
    import torch
    import torch.nn.functional as F

    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=FUSED_ADAM or None)

    def step(x: Any, y: Any) -> float:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(forward(x).sum(0), y)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def worker(impl: str, point: Point, kind: str, quick: bool) -> dict[str, Any]:
    """Measure ``kind`` (train / infer / memory) of ``impl`` at ``point``; a JSON-able dict."""
    import torch

    torch.set_num_threads(NUM_THREADS)
    model, forward = BUILDERS[impl](point.layers, SEED, WEIGHT_SCALE)
    x, y = _make_data(point)
    res: dict[str, Any] = {"impl": impl, "point": point.name, "kind": kind,
                           "threads": torch.get_num_threads()}
    if kind == "memory":
        step = _train_step_fn(model, forward)
        step(x[:10], y)  # libraries, kernels and the Adam state initialised at a small T
        gc.collect()
        baseline, before = rss_bytes(), maxrss_bytes()
        step(x, y)
        after = maxrss_bytes()
        res.update(value=(after - baseline) / 2**20, peak_reached=after > before)
        if impl == "neuro":
            res["spike_rates"] = neuro_spike_rates(model, x)
        return res
    if kind == "train":
        step = _train_step_fn(model, forward)
        first_loss = step(x, y)  # also the first warm-up step

        def run() -> None:
            step(x, y)

        res["first_loss"] = first_loss
        t0 = time.perf_counter()
        run()
        est = time.perf_counter() - t0
    else:
        model.eval()

        def run() -> None:
            with torch.no_grad():
                forward(x)

        t0 = time.perf_counter()
        run()
        est = time.perf_counter() - t0
    if est < 0.5:
        run()
    budget = BLOCK_S / (2 if quick else 1)
    steps = max(2, min(10, math.ceil(budget / max(est, 1e-6))))
    times = []
    busy0, own0, wall0 = system_busy_s(), own_cpu_s(), time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1e3)
    wall = time.perf_counter() - wall0
    foreign = (system_busy_s() - busy0) - (own_cpu_s() - own0)
    res.update(value=statistics.median(times), times_ms=times,
               foreign_load=max(0.0, foreign / (wall * (os.cpu_count() or 1))))
    return res


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def _spawn(impl: str, point: Point, kind: str, quick: bool) -> dict[str, Any]:
    args = ["--worker", impl, point.name, kind, "--threads", str(NUM_THREADS)] + (
        ["--quick"] if quick else []) + (["--fused-adam"] if FUSED_ADAM else [])
    return run_worker(str(Path(__file__).resolve()), args, str(REPO),
                      MEM_ENV if kind == "memory" else None)


def _table(workloads: dict[str, Any]) -> list[str]:
    """Printable lines: one per point and kind, with the SpikingJelly / neuro ratio and goal."""
    lines = [f"{'point':22s} {'kind':6s} {'unit':4s} {'neuro':>9s} {'sjelly':>9s} "
             f"{'snntorch':>9s} {'sj/neuro':>9s} {'snn/neuro':>9s}  goal"]
    for key, w in workloads.items():
        name, kind = key.rsplit("/", 1)
        r = w["results"]
        snn = r.get("snntorch")
        g = w.get("goal")
        snn_t = f"{snn:9.1f}" if snn is not None else "        -"
        snn_r = f"{w['ratios']['snntorch/neuro']:8.2f}x" if snn is not None else "        -"
        goal_t = f"{g['text']}: {'met' if g['met'] else 'NOT met'}" if g else ""
        lines.append(
            f"{name:22s} {kind:6s} {w['unit']:4s} {r['neuro']:9.1f} {r['spikingjelly']:9.1f} "
            f"{snn_t} {w['ratios']['spikingjelly/neuro']:8.2f}x {snn_r}  {goal_t}")
    return lines


def main(argv: list[str] | None = None) -> int:
    global NUM_THREADS, FUSED_ADAM
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--quick", action="store_true", help="1 round, half-length timed blocks")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3)")
    p.add_argument("--mem-repeats", type=int, default=None,
                   help="fresh processes per library and point for the memory figure (default 1)")
    p.add_argument("--points", nargs="*", default=None, help="subset of point names")
    p.add_argument("--threads", type=int, default=NUM_THREADS,
                   help=f"torch threads per process (default {NUM_THREADS})")
    p.add_argument("--fused-adam", action="store_true",
                   help="torch.optim.Adam(fused=True) for every library (default: torch's default)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output ({DEFAULT_OUT})")
    p.add_argument("--worker", nargs=3, metavar=("IMPL", "POINT", "KIND"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    NUM_THREADS = args.threads
    FUSED_ADAM = args.fused_adam

    if args.worker:
        impl, name, kind = args.worker
        try:
            res = worker(impl, BY_NAME[name], kind, args.quick)
        except ImportError as e:
            print(f"lif_sweep worker: {e}", file=sys.stderr)
            return 2
        print(json.dumps(res))
        return 0

    t_start = time.perf_counter()
    versions = check_installed("lif_sweep", {"snntorch": "snntorch",
                                             "spikingjelly": "spikingjelly"})
    machine = machine_info(versions, NUM_THREADS)
    points = [BY_NAME[n] for n in args.points] if args.points else list(POINTS)
    rounds = args.rounds or (1 if args.quick else 3)
    mem_repeats = args.mem_repeats or 1
    print(f"LIF sweep: {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']} "
          f"({NUM_THREADS} threads) [{machine['neuro_backend']}], spikingjelly "
          f"{machine['spikingjelly']}, snntorch {machine['snntorch']}; {len(points)} points, "
          f"{rounds} rounds")

    values: dict[str, dict[str, list[float]]] = {}
    loads: dict[str, dict[str, list[float]]] = {}
    first_loss: dict[str, dict[str, float]] = {}
    rates: dict[str, list[float]] = {}
    for r in range(max(rounds, mem_repeats)):
        for point in points:
            impls = point.impls
            order = impls[r % len(impls):] + impls[: r % len(impls)]
            for kind in point.kinds:
                if (kind == "memory" and r >= mem_repeats) or (kind != "memory" and r >= rounds):
                    continue
                key = f"{point.name}/{kind}"
                for impl in order:
                    res = _spawn(impl, point, kind, args.quick)
                    values.setdefault(key, {}).setdefault(impl, []).append(res["value"])
                    if "foreign_load" in res:
                        loads.setdefault(key, {}).setdefault(impl, []).append(res["foreign_load"])
                    if "first_loss" in res:
                        first_loss.setdefault(point.name, {})[impl] = res["first_loss"]
                    if "spike_rates" in res:
                        rates[point.name] = res["spike_rates"]
                got = values[key]
                print(f"  round {r + 1} {key:28s} "
                      + " ".join(f"{i}={got[i][-1]:.1f}" for i in impls), flush=True)

    workloads: dict[str, Any] = {}
    loss_check: dict[str, Any] = {}
    for point in points:
        losses = first_loss.get(point.name, {})
        ref = losses.get("neuro")
        diffs = {i: abs(v - ref) / max(abs(ref), 1e-12) for i, v in losses.items() if ref}
        loss_check[point.name] = {"first_loss": losses, "max_rel_diff_vs_neuro": max(
            diffs.values(), default=float("nan"))}
        for kind in point.kinds:
            key = f"{point.name}/{kind}"
            results = {i: statistics.median(v) for i, v in values[key].items()}
            ratios = {f"{i}/neuro": results[i] / results["neuro"] for i in results if i != "neuro"}
            entry: dict[str, Any] = {
                "unit": "MiB" if kind == "memory" else "ms", "lower_is_better": True,
                "results": results, "ratios": ratios, "point": asdict(point),
                "layers": point.layers, "stats": {i: summary(v) for i, v in values[key].items()},
                "rounds": values[key],
            }
            g = goal(point, kind)
            if g:
                entry["goal"] = {"text": g[0], "met": ratios["spikingjelly/neuro"] >= g[1]}
            if key in loads:
                entry["foreign_load"] = loads[key]
            workloads[key] = entry
    print()
    for line in _table(workloads):
        print(line)
    worst = max(c["max_rel_diff_vs_neuro"] for c in loss_check.values())
    print(f"first-loss check: max relative difference to neuro over all points {worst:.2e}")
    elapsed = time.perf_counter() - t_start
    report = {
        "machine": machine,
        "workloads": workloads,
        "method": {
            "rounds": rounds, "mem_repeats": mem_repeats, "quick": args.quick,
            "block_s": BLOCK_S / (2 if args.quick else 1), "weight_scale": WEIGHT_SCALE,
            "input_rate": INPUT_RATE, "threads": NUM_THREADS,
            "optimizer": "torch.optim.Adam(lr=1e-3, fused=True)" if FUSED_ADAM
            else "torch.optim.Adam(lr=1e-3)",
            "figure": "median over interleaved rounds (fresh process each) of the per-block "
                      "median step time; memory: ru_maxrss - resident baseline of one step "
                      "with MALLOC_MMAP_THRESHOLD_=1 MiB",
            "elapsed_s": round(elapsed, 1),
        },
        "first_loss_check": loss_check,
        "hidden_spike_rates_neuro": rates,
        "notes": "train = forward + backward + Adam step; infer = no_grad forward (B=1 points). "
                 "snnTorch (reset_delay=False) only at widths <= 256 and T = 100. Goals: spikingjelly/neuro "
                 ">= 2.5 (train, B >= 32), >= 10 (B = 1), memory ratio >= 2 at T = 1000.",
    }
    write_results(args.out, report)
    print(f"\nwrote {args.out} ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
