"""EGRU speed benchmark (E3 and per-token inference): neuro's event-driven fused C++ kernels vs
``torch.nn.GRU`` and evnn-pytorch 0.2.0's C++ CPU kernels (the EGRU authors' package).

Workload ``E3_s<S>``: one training step of the LM's recurrent stack, 3 EGRU layers
750 -> 1350 -> 1350 -> 750 (the PTB model of Subramoney et al.; the embedding, the tied decoder and
the loss are the same dense work for every implementation and are left out), batch 64, bptt 70,
forward + backward (gradients of every weight and of the input), float32, 1 thread, at a stated
activity sparsity S = 50, 80, 95 % (fraction of ``y`` entries that are zero, every layer). The
activity is set by the thresholds: one scalar per layer found by bisection in [0, 1] on a 20-step
forward of the same weights and input (seed 0), shared by neuro and evnn through a file; the JSON
records the sparsity each timed run had per layer. Cell settings of the LM config (dampening 3.6,
support 3.6), no zoneout/DropConnect (neither implementation then draws masks).

* ``neuro``: ``neuro.models.egru.EGRULayer`` x 3, backend ``fused`` (csrc/egru.cpp).
* ``evnn``: ``evnn_pytorch.EGRU`` x 3 with ``use_custom_cuda=True`` on CPU tensors (its C++ CPU
  kernels), the same weights and thresholds; run by ``.venv-evnn/bin/python`` (or
  ``$NEURO_EVNN_PYTHON``), built with the recipe of ``shared/golden/egru/README.md``. Its forward
  ``y`` is compared with neuro's on the first steps (``evnn_max_abs_diff_y``).
* ``torch.nn.GRU``: three ``torch.nn.GRU`` layers of the same sizes (dense; activity plays no role).

Workload ``infer_token``: the same stack at the 80 % thresholds, batch 1, token by token (one call
per layer per token, ``torch.no_grad``, eval mode): microseconds per token, and multiply-adds per
token (neuro: ``I x 3H`` for the first layer's dense input, ``events x 3H`` for the event inputs
of the layers above and for the recurrent products; GRU: ``(I + H) x 3H``).

Method: every measurement runs in a fresh worker process; the implementations are interleaved
(the order rotates per round); each worker first does a short warm-up step (T = 5). Figures are
medians over rounds of the process CPU time of the timed step (1 thread, so CPU time = compute
time; the machine is shared and wall time is inflated by other processes' load, recorded too as
``wall_ms``). Goal (issue 16): evnn / neuro >= 2 at the trained activity.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/egru_speed.py            # 3 rounds, bptt 70
    PYTHONPATH=. python benchmarks/egru_speed.py --quick    # 1 round, bptt 10, 20 tokens
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import check_installed, machine_info, summary, write_results

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "benchmarks" / "results" / "egru_speed.json"
SIZES = (750, 1350, 1350, 750)
B, BPTT, SPARSITIES = 64, 70, (0.5, 0.8, 0.95)
DAMP, SUPP, SEED = 3.6, 3.6, 0
TOKENS = 200
GOAL = 2.0


def _stack(backend: str = "fused"):
    import torch

    from neuro.models.egru import EGRULayer

    torch.manual_seed(SEED)
    layers = [EGRULayer(i, h, thr_mean=0.3, dampening=DAMP, support=SUPP, backend=backend)
              for i, h in zip(SIZES[:-1], SIZES[1:])]
    return layers


def _input(T: int, batch: int = B):
    import torch

    g = torch.Generator().manual_seed(SEED + 1)
    return torch.randn(T, batch, SIZES[0], generator=g)


def calibrate(target: float, path: Path, T: int = 20) -> list[float]:
    """Per-layer scalar thresholds giving ``target`` zero fraction of y on a T-step forward."""
    import torch

    layers = _stack()
    x = _input(T)
    ths = []
    with torch.no_grad():
        for layer in layers:
            lo, hi = 0.0, 1.0
            for _ in range(12):
                mid = (lo + hi) / 2
                layer.threshold.fill_(mid)
                y, _ = layer(x)
                if float((y == 0).float().mean()) < target:
                    lo = mid
                else:
                    hi = mid
            layer.threshold.fill_((lo + hi) / 2)
            ths.append((lo + hi) / 2)
            x, _ = layer(x)
    torch.save({"thresholds": ths, "state": [m.state_dict() for m in layers]}, path)
    return ths


def _load_neuro(path: str):
    import torch

    layers = _stack()
    saved = torch.load(path)
    for m, sd in zip(layers, saved["state"]):
        m.load_state_dict(sd)
    return layers


def _timed(fn) -> tuple[float, float]:
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    return (time.process_time() - c0) * 1e3, (time.perf_counter() - w0) * 1e3


def _neuro_importable() -> None:
    """In evnn's interpreter neuro comes from PYTHONPATH, without the editable install's mapping
    of ``datasets/`` and ``hardware/`` to ``neuro.datasets`` / ``neuro.hardware``: add it."""
    import importlib.util

    import neuro

    if importlib.util.find_spec("neuro.datasets") is None:
        neuro.__path__.append(str(REPO))


def worker(impl: str, weights: str, T: int, tokens: int) -> dict:
    import torch

    _neuro_importable()

    torch.set_num_threads(1)
    torch.manual_seed(SEED + 2)
    out: dict = {}
    if impl in ("neuro", "evnn"):
        layers = _load_neuro(weights)
        if impl == "evnn":
            from evnn_pytorch import EGRU

            ev = []
            for m in layers:
                e = EGRU(m.input_size, m.hidden_size, dropout=0.0, zoneout=0.0,
                         dampening_factor=DAMP, pseudo_derivative_support=SUPP, thr_mean=0.3,
                         use_custom_cuda=True)
                with torch.no_grad():
                    e.kernel.copy_(m.kernel)
                    e.recurrent_kernel.copy_(m.recurrent_kernel)
                    e.bias.copy_(m.bias)
                    e.recurrent_bias.copy_(m.recurrent_bias)
                    e.thr.copy_(m.threshold.detach().reshape(e.thr.shape))
                ev.append(e)
            with torch.no_grad():  # same forward as neuro's on the first steps
                x = _input(5)
                a, b_ = x, x
                for m, e in zip(layers, ev):
                    a, _ = m(a)
                    b_, _ = e(b_)
                out["evnn_max_abs_diff_y"] = float((a - b_).abs().max())

            def run(x):
                for e in ev:
                    x, _ = e(x)
                return x
        else:
            def run(x):
                for m in layers:
                    x, _ = m(x)
                return x
    elif impl == "gru":
        torch.manual_seed(SEED)
        grus = [torch.nn.GRU(i, h) for i, h in zip(SIZES[:-1], SIZES[1:])]

        def run(x):
            for g in grus:
                x, _ = g(x)
            return x
    else:
        raise SystemExit(f"unknown impl {impl}")

    if tokens:  # per-token inference, batch 1
        x = _input(tokens, 1)
        with torch.no_grad():
            if impl == "gru":
                hs = [None] * 3

                def infer():
                    for t in range(tokens):
                        v = x[t:t + 1]
                        for k, g in enumerate(grus):
                            v, hs[k] = g(v, hs[k])
                infer()
                cpu, wall = _timed(infer)
                out["macs_per_token"] = sum((i + h) * 3 * h for i, h in zip(SIZES[:-1], SIZES[1:]))
            else:
                for m in layers:
                    m.eval()
                events = [0, 0, 0]  # recurrent: events of y[t-1] read by each layer
                outev = [0, 0, 0]   # events each layer emits (the next layer's input)

                def infer():
                    states = [None] * 3
                    for t in range(tokens):
                        v = x[t:t + 1]
                        for k, m in enumerate(layers):
                            if states[k] is not None:
                                events[k] += int((states[k].y != 0).sum())
                            v, states[k] = m(v, states[k])
                            outev[k] += int((v != 0).sum())
                infer()
                events[:] = [0, 0, 0]
                outev[:] = [0, 0, 0]
                cpu, wall = _timed(infer)
                n_tok = tokens
                # input projection: dense for layer 1 (the embedding), event rows of W above
                ins = [SIZES[0]] + [e / n_tok for e in outev[:-1]]
                out["macs_per_token"] = sum(
                    i * 3 * h + e / n_tok * 3 * h
                    for i, h, e in zip(ins, SIZES[1:], events))
                out["sparsity"] = [1 - e / (n_tok * h) for e, h in zip(events, SIZES[1:])]
        out["cpu_us"], out["wall_us"] = cpu / tokens * 1e3, wall / tokens * 1e3
        return out

    cot = torch.randn(T, B, SIZES[-1], generator=torch.Generator().manual_seed(SEED + 3))
    params = [p for m in (layers if impl == "neuro" else ev if impl == "evnn" else grus)
              for p in m.parameters()]

    def step(T_: int):
        for p in params:
            p.grad = None
        x = _input(T_).requires_grad_(True)
        y = run(x)
        (y * cot[:T_]).sum().backward()
        return x

    step(5)  # warm-up (allocations, the extension's first call)
    out["cpu_ms"], out["wall_ms"] = _timed(lambda: step(T))
    if impl == "neuro":
        out["sparsity_fwd"] = [m.last_stats.forward for m in layers]
        out["sparsity_bwd"] = [m.last_stats.backward for m in layers]
        out["dy_skipped"] = [m.last_stats.backward_dy_skipped for m in layers]
    return out


def _run_worker(python: str, args: list[str]) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run([python, __file__, *args], capture_output=True, text=True, env=env,
                          cwd=REPO)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"worker {' '.join(args)} failed with status {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--quick", action="store_true", help="1 round, bptt 10, 20 tokens")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output ({DEFAULT_OUT})")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--weights", help=argparse.SUPPRESS)
    p.add_argument("--T", type=int, default=BPTT, help=argparse.SUPPRESS)
    p.add_argument("--tokens", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.weights, args.T, args.tokens)))
        return 0
    versions = check_installed("egru_speed", {})
    machine = machine_info(versions, 1)
    from neuro.kernels import blas
    from neuro.models.egru import kernels

    # the dense products' BLAS (NEURO_BLAS: auto = numpy's OpenBLAS on AMD CPUs, else torch's MKL)
    machine["neuro_blas"] = blas.info()

    if not kernels.available():
        print(f"egru_speed: the fused EGRU kernels are not built ({kernels.build_error()})",
              file=sys.stderr)
        return 2
    rounds = args.rounds or (1 if args.quick else 3)
    T = 10 if args.quick else BPTT
    tokens = 20 if args.quick else TOKENS
    evnn_py = os.environ.get("NEURO_EVNN_PYTHON") or str(REPO / ".venv-evnn" / "bin" / "python")
    evnn_note = None
    if not Path(evnn_py).exists():
        evnn_note = f"evnn-pytorch not available ({evnn_py} missing); torch.nn.GRU is the peer"
    else:
        probe = subprocess.run([evnn_py, "-c", "import evnn_pytorch, importlib.metadata as m; "
                                "print(m.version('evnn-pytorch'))"], capture_output=True, text=True)
        if probe.returncode != 0:
            evnn_note = f"evnn-pytorch does not import: {probe.stderr.strip().splitlines()[-1:]}"
        else:
            machine["evnn_pytorch"] = probe.stdout.strip()
    if evnn_note:
        print(f"egru_speed: {evnn_note}", file=sys.stderr)
    print(f"EGRU speed benchmark: {machine['cpu']}, {machine['cores']} cores, 1 thread, "
          f"bptt {T}, batch {B}, {rounds} round(s)")
    impls = ["neuro", "gru"] + ([] if evnn_note else ["evnn"])
    per: dict[str, dict[str, list]] = {}
    info: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for s in SPARSITIES:
            files[s] = Path(tmp) / f"w{int(s * 100)}.pt"
            ths = calibrate(s, files[s])
            print(f"  thresholds for {s:.0%} sparsity: {[round(t, 4) for t in ths]}")
        jobs = [(f"E3_s{int(s * 100)}", impl, s) for s in SPARSITIES for impl in impls if impl != "gru"]
        jobs += [("E3_dense", "gru", SPARSITIES[0])]
        jobs += [("infer_token", impl, 0.8) for impl in ("neuro", "gru")]
        for r in range(rounds):
            order = jobs[r % len(jobs):] + jobs[:r % len(jobs)]
            if r % 2:
                order = order[::-1]
            for w, impl, s in order:
                py = evnn_py if impl == "evnn" else sys.executable
                toks = tokens if w == "infer_token" else 0
                res = _run_worker(py, ["--worker", impl, "--weights", str(files[s]), "--T", str(T),
                                       "--tokens", str(toks)])
                key = "cpu_us" if toks else "cpu_ms"
                per.setdefault(w, {}).setdefault(impl, []).append(res[key])
                per[w].setdefault(impl + ":wall", []).append(res["wall_us" if toks else "wall_ms"])
                info.setdefault(w, {})[impl] = {k: v for k, v in res.items()
                                                if k not in (key, "wall_us", "wall_ms")}
                print(f"  round {r + 1} {w:12s} {impl:6s} {res[key]:10.1f} "
                      f"{'us' if toks else 'ms'} cpu ({res['wall_us' if toks else 'wall_ms']:.1f} wall)"
                      + (f" sparsity {[round(v, 3) for v in res['sparsity_fwd']]}"
                         if "sparsity_fwd" in res else ""))
    gru_ms = statistics.median(per["E3_dense"]["gru"])
    workloads = {}
    print()
    print(f"{'workload':12s} {'unit':4s} {'neuro':>9s} {'evnn':>9s} {'nn.GRU':>9s} "
          f"{'evnn/neuro':>10s} {'GRU/neuro':>9s}")
    for s in SPARSITIES:
        w = f"E3_s{int(s * 100)}"
        res = {impl: statistics.median(v) for impl, v in per[w].items() if ":" not in impl}
        res["torch.nn.GRU"] = gru_ms
        ratios = {"torch.nn.GRU/neuro": gru_ms / res["neuro"]}
        if "evnn" in res:
            res["evnn-pytorch"] = res.pop("evnn")
            ratios["evnn-pytorch/neuro"] = res["evnn-pytorch"] / res["neuro"]
        workloads[w] = {
            "unit": "ms", "lower_is_better": True, "results": res, "ratios": ratios,
            "goal": ({"text": f"evnn-pytorch/neuro >= {GOAL:.0f}",
                      "met": ratios["evnn-pytorch/neuro"] >= GOAL}
                     if "evnn-pytorch/neuro" in ratios else
                     {"text": f"torch.nn.GRU/neuro >= {GOAL:.0f} (evnn not built)",
                      "met": ratios["torch.nn.GRU/neuro"] >= GOAL}),
            "stats": {k: summary(v) for k, v in per[w].items()},
            "stated_sparsity": s, "details": info[w], "rounds": per[w],
            "config": {"sizes": list(SIZES), "batch": B, "bptt": T, "dtype": "float32",
                       "threads": 1, "dampening": DAMP, "support": SUPP, "rounds": rounds,
                       "quick": args.quick, "measure": "process CPU time of one fwd+bwd step",
                       "evnn": evnn_note or "evnn_pytorch.EGRU(use_custom_cuda=True), CPU C++"}}
        ev = res.get("evnn-pytorch", float("nan"))
        print(f"{w:12s} {'ms':4s} {res['neuro']:9.0f} {ev:9.0f} {gru_ms:9.0f} "
              f"{ev / res['neuro']:10.2f} {gru_ms / res['neuro']:9.2f}")
    inf = {impl: statistics.median(v) for impl, v in per["infer_token"].items() if ":" not in impl}
    workloads["infer_token"] = {
        "unit": "us", "lower_is_better": True,
        "results": {"neuro": inf["neuro"], "torch.nn.GRU": inf["gru"]},
        "ratios": {"torch.nn.GRU/neuro": inf["gru"] / inf["neuro"]},
        "macs_per_token": {"neuro": info["infer_token"]["neuro"]["macs_per_token"],
                           "torch.nn.GRU": info["infer_token"]["gru"]["macs_per_token"]},
        "sparsity": info["infer_token"]["neuro"].get("sparsity"),
        "stats": {k: summary(v) for k, v in per["infer_token"].items()},
        "config": {"batch": 1, "tokens": tokens, "thresholds": "80 % calibration",
                   "measure": "process CPU time per token, no_grad, eval mode"}}
    print(f"{'infer_token':12s} {'us':4s} {inf['neuro']:9.0f} {'-':>9s} {inf['gru']:9.0f} "
          f"{'-':>10s} {inf['gru'] / inf['neuro']:9.2f}   MACs/token neuro "
          f"{workloads['infer_token']['macs_per_token']['neuro']:.3g} vs GRU "
          f"{workloads['infer_token']['macs_per_token']['torch.nn.GRU']:.3g}")
    write_results(args.out, {"machine": machine, "workloads": workloads})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
