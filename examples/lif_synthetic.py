"""Train a feed-forward LIF network on the offline spike-pattern task and save a checkpoint.

    python examples/lif_synthetic.py --epochs 8 --hidden 128 --out runs/lif

The same as ``neuro demo``, with the knobs exposed: hidden width, surrogate, reset mode.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from neuro.checkpoint import save_checkpoint
from neuro.datasets import spike_pattern_task
from neuro.models import SpikingMLP, SpikingMLPConfig
from neuro.training import train_classifier


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--hidden", type=int, nargs="+", default=[128])
    p.add_argument("--reset", choices=["subtract", "zero"], default="subtract")
    p.add_argument("--alpha", type=float, default=2.0, help="ATan surrogate sharpness")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/lif_synthetic")
    args = p.parse_args()

    torch.manual_seed(args.seed)
    train, test = spike_pattern_task(seed=args.seed + 1)
    config = SpikingMLPConfig(layers=[train.n_channels, *args.hidden, train.n_classes],
                              reset=args.reset, surrogate={"kind": "ATan", "alpha": args.alpha})
    model = SpikingMLP(config)
    result = train_classifier(model, train, test, epochs=args.epochs, seed=args.seed)
    path = save_checkpoint(Path(args.out) / "model.safetensors", model, name=model.name,
                           config=model.config_dict(), info=result.as_dict())
    print(f"test accuracy {result.test_accuracy[-1]:.3f}; checkpoint {path}")


if __name__ == "__main__":
    main()
