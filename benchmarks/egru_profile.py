"""Where the E3 training step of ``benchmarks/egru_speed.py`` spends its time: per layer and phase.

The step (3 EGRU layers 750 -> 1350 -> 1350 -> 750, batch 64, bptt 70, float32, 1 thread, the
thresholds calibrated to a stated activity sparsity) is run layer by layer with the autograd
graph cut between the phases, so that every phase is timed on its own (process CPU time):

* ``in_fwd``: ``ax = x W + b`` (one GEMM for layer 1's dense input, the event product above);
* ``rec_fwd``: the fused forward (``egru_forward``), split by the kernel's own timers
  (``NEURO_EGRU_PROFILE=1``) into packing, event lists, the sparse / GEMM recurrent product, the
  gates and the state update;
* ``rec_bwd``: the fused backward (``egru_backward``): element-wise work, bias, the per-step
  ``dL/dy[t-1] = dhb R^T`` (GEMM or sparse dot products) and ``dR``;
* ``dx_dW``: ``dx = dax W^T`` (GEMM) and ``dW = x^T dax`` (GEMM for layer 1, over the non-zeros
  of x above: ``lin_wgrad``).

Usage: ``PYTHONPATH=. python benchmarks/egru_profile.py [--sparsity 0.95] [--T 70]``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NEURO_EGRU_PROFILE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

PHASES = ["fwd_pack", "fwd_events", "fwd_sparse", "fwd_gemm", "fwd_gates", "fwd_state",
          "bwd_elem", "bwd_bias", "bwd_need", "bwd_dy_gemm", "bwd_dy_sparse", "bwd_dR",
          "bwd_other", "lin_fwd", "lin_wgrad"]


def profile_step(weights: str, T: int) -> list[dict[str, float]]:
    """Per layer: seconds of process CPU time per phase (and the kernel's own phase timers)."""
    import egru_speed as E
    import torch

    from neuro.models.egru.kernels import egru_sequence, input_projection, load

    torch.set_num_threads(1)
    if not load():
        raise SystemExit("egru_profile: the fused EGRU kernels are not built")
    ops = torch.ops.neuro_egru
    layers = E._load_neuro(weights)
    x = E._input(T)
    cot = torch.randn(T, E.B, E.SIZES[-1], generator=torch.Generator().manual_seed(E.SEED + 3))
    rows: list[dict[str, float]] = []
    saved = []

    def timed(row, key, fn, *args, **kwargs):
        ops.egru_profile()
        c0 = time.process_time()
        out = fn(*args, **kwargs)
        row[key] = time.process_time() - c0
        for name, v in zip(PHASES, ops.egru_profile().tolist()):
            if v:
                row[name] = row.get(name, 0.0) + v
        return out

    for m in layers:
        row: dict[str, float] = {}
        xi = x.detach().requires_grad_(True)
        W = m.kernel.detach().requires_grad_(True)
        b = m.bias.detach().requires_grad_(True)
        ax = timed(row, "in_fwd", input_projection, xi, W, b)
        axd = ax.detach().requires_grad_(True)
        R = m.recurrent_kernel.detach().requires_grad_(True)
        st = m.initial_state(E.B) if hasattr(m, "initial_state") else None
        c0 = torch.zeros(E.B, m.hidden_size) if st is None else st.c
        y0 = torch.zeros(E.B, m.hidden_size) if st is None else st.y
        theta = m._theta().detach()
        y, c, o = timed(row, "rec_fwd", egru_sequence, axd, R, m.recurrent_bias.detach(), theta,
                        c0, y0, 1.0, dampening=E.DAMP, support=E.SUPP, backend="fused")
        row["sparsity_fwd"] = float((y == 0).float().mean())
        saved.append((xi, W, ax, axd, y))
        rows.append(row)
        x = y.detach()
    g = cot
    for row, (xi, W, ax, axd, y) in zip(reversed(rows), reversed(saved)):
        (dax,) = timed(row, "rec_bwd", torch.autograd.grad, y, axd, g)
        dx, _ = timed(row, "dx_dW", torch.autograd.grad, ax, [xi, W], dax)
        g = dx
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--sparsity", type=float, nargs="+", default=[0.5, 0.8, 0.95])
    p.add_argument("--T", type=int, default=70)
    p.add_argument("--cache", type=Path, help="folder keeping the calibrated weights between runs")
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import egru_speed as E

    for s in args.sparsity:
        with tempfile.TemporaryDirectory() as tmp:
            w = (args.cache or Path(tmp)) / f"w{round(s * 100)}.pt"
            if not w.exists():
                E.calibrate(s, w)
            profile_step(str(w), 5)  # warm-up
            rows = profile_step(str(w), args.T)
        total = sum(r[k] for r in rows for k in ("in_fwd", "rec_fwd", "rec_bwd", "dx_dW"))
        print(f"sparsity {s:.0%}: step {total:.2f} s CPU (phases summed)")
        for i, r in enumerate(rows):
            main_k = ["in_fwd", "rec_fwd", "rec_bwd", "dx_dW"]
            inner = {k: v for k, v in r.items() if k in PHASES}
            print(f"  layer {i + 1} (sparsity {r['sparsity_fwd']:.3f}): "
                  + " ".join(f"{k} {r[k]:.2f}" for k in main_k))
            print("     kernel: " + " ".join(f"{k} {v:.2f}" for k, v in inner.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
