"""Where OpenBLAS beats torch's MKL for float32 GEMMs on this CPU: the table behind
``neuro.kernels.blas`` (its ``NEURO_BLAS_MIN_DIM`` default of 256).

Every shape is timed through ``neuro.kernels.blas.gemm`` with ``NEURO_BLAS=torch`` (``at::mm_out``,
MKL) and ``NEURO_BLAS=openblas`` (numpy's OpenBLAS, routed whatever the size:
``NEURO_BLAS_MIN_DIM=1``), alternating in one process, 1 thread; medians of process CPU time over
``--reps`` calls after one warm-up call each. The shapes: the EGRU E3 step's products (B = 64 rows
per step; 4480 = bptt 70 x B 64 rows for the whole sequence) and a sweep of the row count.

Usage: ``PYTHONPATH=. python benchmarks/blas_crossover.py [--reps 5] [--out F.json]``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from _common import machine_info, write_results

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "benchmarks" / "results" / "blas_crossover.json"

#: (label, M, K, N, A transposed, B transposed)
SHAPES = [
    ("E3 recurrent step y R", 64, 1350, 4050, False, False),
    ("E3 dL/dy per step dhb R^T", 64, 4050, 1350, False, True),
    ("E3 input projection x W (layer 1)", 4480, 750, 4050, False, False),
    ("E3 input projection x W (dense layer 2)", 4480, 1350, 4050, False, False),
    ("E3 dx = g W^T", 4480, 4050, 1350, False, True),
    ("E3 dR / dW = x^T g", 1350, 4480, 4050, True, False),
    ("E3 dW = x^T g (layer 1)", 750, 4480, 4050, True, False),
] + [(f"rows {m}", m, 1350, 4050, False, False) for m in (128, 192, 256, 512, 1024)] + [
    ("square 128", 128, 128, 128, False, False),
    ("square 256", 256, 256, 256, False, False),
    ("square 512", 512, 512, 512, False, False),
]


def _median_cpu(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        c0 = time.process_time()
        fn()
        times.append(time.process_time() - c0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    os.environ["NEURO_BLAS_MIN_DIM"] = "1"
    import torch

    from neuro.kernels import blas

    torch.set_num_threads(1)
    info = blas.info()
    rows = []
    for label, m, k, n, ta, tb in SHAPES:
        g = torch.Generator().manual_seed(0)
        a = torch.randn(k, m, generator=g).t() if ta else torch.randn(m, k, generator=g)
        b = torch.randn(n, k, generator=g).t() if tb else torch.randn(k, n, generator=g)
        out = torch.empty(m, n)
        t = {}
        for mode in ("torch", "openblas", "torch", "openblas"):  # alternate, keep the better
            os.environ["NEURO_BLAS"] = mode
            s = _median_cpu(lambda a=a, b=b, out=out: blas.gemm(a, b, out), args.reps)
            t[mode] = min(t.get(mode, s), s)
        gf = 2 * m * k * n / 1e9
        row = {"shape": label, "M": m, "K": k, "N": n, "a_t": ta, "b_t": tb,
               "torch_ms": t["torch"] * 1e3, "openblas_ms": t["openblas"] * 1e3,
               "torch_gflops": gf / t["torch"], "openblas_gflops": gf / t["openblas"],
               "speedup": t["torch"] / t["openblas"]}
        rows.append(row)
        print(f"{label:42s} {m:5d} x {k:5d} x {n:5d}  MKL {row['torch_ms']:9.2f} ms "
              f"({row['torch_gflops']:5.1f} GFLOP/s)  OpenBLAS {row['openblas_ms']:9.2f} ms "
              f"({row['openblas_gflops']:5.1f})  x{row['speedup']:.2f}", flush=True)
    report = {"benchmark": "blas_crossover", "openblas": info["path"],
              "machine": machine_info({"torch": torch.__version__}, 1),
              "load_average": os.getloadavg(), "rows": rows}
    write_results(args.out, report)
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
