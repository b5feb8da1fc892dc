"""Learned vs fixed random vs no synaptic delays on the offline delay task (3 seeds).

    python examples/delay_ablation.py --epochs 15 --seeds 0 1 2 --out examples/results/delay_ablation.json

The paper's qualitative claim (Hammouamri et al. 2024): learned delays > fixed random delays > no
delays. Network: DelaySNN with one hidden layer of 64 LIF neurons (tau 1.005 steps, as for SHD),
max_delay 9 steps, dropout 0.1; task: ``neuro.datasets.delay_pattern_task`` (4 classes that
differ only in the intervals between paired channels; 2000 train / 1000 held-out samples).
Reported: held-out accuracy after the last epoch, integer delays.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from neuro.datasets import delay_pattern_task

from neuro.models import DelaySNN, DelaySNNConfig
from neuro.training import train_delay_snn

MODES = ("learned", "fixed", "none")


def run(mode: str, seed: int, epochs: int, n_train: int = 2000, dropout: float = 0.1,
        hidden: int = 64) -> dict:
    train, test = delay_pattern_task(n_train, 1000, seed=seed + 1)
    torch.manual_seed(seed)
    model = DelaySNN(DelaySNNConfig(n_inputs=16, n_hidden=hidden, n_layers=1, n_outputs=4,
                                    max_delay=9, delays=mode, dropout=dropout))
    t0 = time.perf_counter()
    r = train_delay_snn(model, train, test, epochs=epochs, batch_size=64, seed=seed,
                        progress=False, log=lambda s: None)
    return {"mode": mode, "seed": seed, "test_accuracy": r.test_accuracy[-1],
            "train_accuracy": r.train_accuracy[-1], "seconds": time.perf_counter() - t0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--train", type=int, default=2000, help="training samples")
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--hidden", type=int, default=64, help="hidden LIF neurons")
    p.add_argument("--out", type=Path, default=Path("examples/results/delay_ablation.json"))
    args = p.parse_args()
    torch.set_num_threads(2)
    rows = []
    for seed in args.seeds:
        for mode in MODES:
            rows.append(run(mode, seed, args.epochs, args.train, args.dropout, args.hidden))
            r = rows[-1]
            print(f"seed {seed} {mode:8s} test {r['test_accuracy']:.3f} train {r['train_accuracy']:.3f} "
                  f"({r['seconds']:.0f} s)", flush=True)
    summary = {}
    for mode in MODES:
        accs = [r["test_accuracy"] for r in rows if r["mode"] == mode]
        summary[mode] = {"mean": statistics.mean(accs), "min": min(accs), "max": max(accs),
                         "per_seed": accs}
    print(f"\n{'delays':8s} {'mean':>6s} {'min':>6s} {'max':>6s}  per seed")
    for mode in MODES:
        s = summary[mode]
        print(f"{mode:8s} {s['mean']:6.3f} {s['min']:6.3f} {s['max']:6.3f}  "
              + " ".join(f"{a:.3f}" for a in s["per_seed"]))
    gaps = {"learned-fixed": summary["learned"]["mean"] - summary["fixed"]["mean"],
            "fixed-none": summary["fixed"]["mean"] - summary["none"]["mean"]}
    print("gaps (accuracy points): " + ", ".join(f"{k} {100 * v:.1f}" for k, v in gaps.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"epochs": args.epochs, "seeds": args.seeds, "n_train": args.train,
                                    "dropout": args.dropout, "hidden": args.hidden, "runs": rows,
                                    "summary": summary, "gaps": gaps,
                                    "machine": {"python": platform.python_version(),
                                                "torch": torch.__version__}}, indent=1))


if __name__ == "__main__":
    main()
